"""One batch command across processes, GPUs and nodes under ``torchrun`` (``--launcher pytorch``).

torchrun (or ``srun`` with the same variables) starts the processes and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` and the rendezvous address; :func:`launch`
joins the group (env://; NCCL on CUDA, gloo on the CPU). Every process lists the same inputs and
takes its share (:meth:`Launch.shard`: balanced by pixel count, the same split on every rank);
results are gathered at the end. With ``--launcher none`` a :class:`Launch` of one process does
nothing, so callers need no second code path.

CPU and GPU kernels pick their algorithm by batch size, so a face's result can differ in the last
bit with the faces that share its batch: :func:`pad_batch` runs every call at one fixed size. With it,
outputs were byte-identical whatever the number of processes or the resume point at batch sizes 8
and 10; at 5 they still differed in the last bits (README, "Archive scale").
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

LAUNCHERS = ("none", "pytorch")
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class DistError(Exception):
    """A distributed run that cannot go on; the message is one line."""


@dataclass(frozen=True)
class Launch:
    """This process's place in the run: rank, number of processes, device and CPU threads."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    threads: int = 0  # CPU threads of this process; 0: left as torch chose

    @property
    def main(self) -> bool:
        """Rank 0: the process that prints and writes the merged summary."""
        return self.rank == 0

    def shard(self, items: Sequence, weight: Callable[[object], float], key: Callable = lambda item: item) -> list:
        """This rank's share of ``items``, in their order. Items are weighed (pixel count) in
        parallel, then assigned greedily (heaviest first, to the least loaded rank; ties by index),
        so the split is the same on every rank. Items with the same ``key`` (e.g. the same output
        file) go to the same rank. Raises :class:`DistError` when the ranks list different inputs."""
        if self.world_size == 1:
            return list(items)
        listing = hashlib.sha256("\n".join(map(str, items)).encode()).hexdigest()
        parts = self.all_gather((listing, {i: weight(items[i]) for i in range(self.rank, len(items), self.world_size)}))
        if len({listing for listing, _ in parts}) > 1:
            raise DistError("the processes list different inputs (is the input folder the same path on every node?)")
        weights = {i: w for _, part in parts for i, w in part.items()}
        ranks = split([weights[i] for i in range(len(items))], [key(item) for item in items], self.world_size)
        return [item for item, rank in zip(items, ranks) if rank == self.rank]

    def all_gather(self, obj) -> list:
        """``obj`` of every rank, in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        _collective(torch.distributed.all_gather_object, out, obj)
        return out

    def gather(self, obj) -> list | None:
        """``obj`` of every rank, in rank order, on rank 0 (None elsewhere)."""
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size if self.main else None
        _collective(torch.distributed.gather_object, obj, out)
        return out

    def barrier(self) -> None:
        if self.world_size > 1:
            _collective(torch.distributed.barrier)


def split(weights: Sequence[float], keys: Sequence, world_size: int) -> list[int]:
    """The rank of each item: items with the same key form a group; groups, heaviest first (ties:
    the earlier), each go to the least loaded rank so far (ties: the lower rank). Deterministic."""
    groups: dict[object, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    load, ranks = [0.0] * world_size, [0] * len(weights)
    for group in sorted(groups.values(), key=lambda g: (-sum(weights[i] for i in g), g[0])):
        rank = min(range(world_size), key=lambda r: (load[r], r))
        load[rank] += sum(weights[i] for i in group)
        for i in group:
            ranks[i] = rank
    return ranks


def _collective(fn, *args) -> None:
    try:
        fn(*args)
    except RuntimeError as exc:  # a peer died (kill -9, out of memory): its connection closed
        raise DistError(f"another process stopped before the end ({str(exc).splitlines()[0][:120]}); finished "
                        "outputs are kept: rerun with --skip-existing") from exc


def launch(launcher: str, device: str) -> Launch:
    """Join the process group for ``--launcher pytorch`` (``launcher`` ``none``: one process).

    Each process takes ``cuda:LOCAL_RANK`` on CUDA (one process per GPU); on the CPU it runs ``OMP_NUM_THREADS`` threads
    (torchrun sets 1 when unset and several processes run per node), else an equal share of the
    cores (cores ÷ ``LOCAL_WORLD_SIZE``). Raises :class:`DistError` outside torchrun."""
    if launcher not in LAUNCHERS:
        raise DistError(f"--launcher must be one of {', '.join(LAUNCHERS)}, not '{launcher}'")
    if launcher == "none":
        return Launch(device=device)
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise DistError(f"--launcher pytorch runs under torchrun (or srun with torchrun's variables): {', '.join(missing)} "
                        "not set; e.g. torchrun --nproc-per-node 2 $(which mpcnet) restore … --launcher pytorch")
    from mpcnet.compat import init_dist

    cuda = device.startswith("cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda and local_rank >= torch.cuda.device_count():
        raise DistError(f"process {local_rank} of this node has no GPU of its own ({torch.cuda.device_count()} "
                        "here): start at most one process per GPU (--nproc-per-node)")
    init_dist("nccl" if cuda else "gloo")
    threads = 0
    if cuda:
        device = f"cuda:{local_rank}"
    else:
        share = len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, share)
        torch.set_num_threads(threads)
        import cv2

        cv2.setNumThreads(threads)
    return Launch(torch.distributed.get_rank(), torch.distributed.get_world_size(), device, threads)


def pad_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (B, …) with zero rows appended up to ``size`` rows, so every network call has one shape
    (the caller drops the padding)."""
    if len(x) >= size:
        return x
    return torch.cat([x, x.new_zeros((size - len(x), *x.shape[1:]))])
