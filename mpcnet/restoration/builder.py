"""The one place a restore pipeline is put together, for ``mpcnet restore``, ``mpcnet benchmark
restore`` and ``mpcnet eval``: the device, the face network (MPCNet or a peer), the detector, the
paste mask and the batch rule. Callers check their output folder against the inputs themselves,
once (:func:`~mpcnet.utils.safe_output.check_output_location`)."""
from __future__ import annotations

from dataclasses import dataclass

from mpcnet.restoration import DETECTORS
from mpcnet.restoration.detectors import make_detector
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.paste import load_parsenet
from mpcnet.restoration.peers import build_peer
from mpcnet.restoration.restorer import FaceRestorer, check_backend
from mpcnet.restoration.scheduler import RestorePipeline
from mpcnet.utils.device import resolve_device
from mpcnet.utils.dist import Launch, launch as join


@dataclass
class BuiltPipeline:
    """A ready pipeline, this process's place in the run, and what was chosen (``setup``, as
    ``mpcnet restore`` reports it)."""

    pipeline: RestorePipeline
    launch: Launch
    setup: dict


def build_pipeline(weights: str | None = None, device: str = "auto", detector: str | None = None,
                   options: RestoreOptions | None = None, *, method: str = "mpcnet", backend: str = "torch",
                   amp: bool = False, batch_size: int = 8, fixed_batch: bool | None = None,
                   launcher: str = "none") -> BuiltPipeline:
    """Build the restore pipeline; the request is checked before any model is loaded.

    * device: ``auto`` is CUDA, else MPS, else the CPU (:func:`~mpcnet.utils.device.resolve_device`);
      under ``launcher`` ``pytorch`` each process joins the group and takes its own GPU or share of
      the CPU threads (:func:`~mpcnet.utils.dist.launch`).
    * network: ``method`` ``mpcnet`` loads ``weights`` (None: the bundled default) on ``backend``;
      a peer (:mod:`~mpcnet.restoration.peers`) runs in PyTorch, NCHW.
    * detector: None is RetinaFace when its verified weights are present, else MTCNN; none for
      aligned faces.
    * mask: the network's own parsing prior when it has one, else ParseNet when its weights are
      present, else a feathered ellipse; none for aligned faces.
    * ``fixed_batch`` (every network call padded to ``batch_size``): None is on under a launcher,
      so outputs do not depend on how the inputs were split.
    """
    options = options or RestoreOptions()
    check_backend(backend, amp)
    if method != "mpcnet" and backend != "torch":
        raise ValueError(f"the {method} peer runs on the torch backend only")
    if detector is not None and detector not in DETECTORS:
        raise ValueError(f"unknown detector '{detector}'; choose from {', '.join(DETECTORS)}")
    device, note = resolve_device(device)
    launch = join(launcher, device)
    if method == "mpcnet":
        restorer = FaceRestorer.from_weights(weights, launch.device, amp, batch_size, backend)
    else:
        net, size, name = build_peer(method, weights)
        restorer = FaceRestorer(net, size, launch.device, amp, batch_size, name, channels_last=False)
    restorer.fixed_batch = launcher == "pytorch" if fixed_batch is None else fixed_batch
    face_detector = None if options.aligned else make_detector(detector, launch.device)
    parsenet = None if options.aligned or restorer.parses else load_parsenet(launch.device)
    pipeline = RestorePipeline(restorer, face_detector, options, parsenet)
    mask = ("face parsing (the network's parsing prior)" if restorer.parses else
            "face parsing (ParseNet)" if parsenet is not None else "feathered ellipse")
    setup = {"weights": restorer.name, "network_size": restorer.size, "backend": backend,
             "device": f"{launch.device} ({note})" if note else launch.device, "amp": amp,
             "fidelity": options.fidelity, "detector": face_detector.name if face_detector else "none (--aligned)",
             "mask": "none (--aligned)" if options.aligned else mask,
             "background": "none (--aligned)" if options.aligned else options.bg_upsampler,
             "processes": launch.world_size, **({"threads_per_process": launch.threads} if launch.threads else {}),
             "fixed_batch": restorer.fixed_batch}
    return BuiltPipeline(pipeline, launch, setup)
