"""Evaluation inputs for section 4.2: the named test sets' layout, and restoring their LQ faces for scoring
(:mod:`mpcnet.eval_scoring` scores them, :mod:`mpcnet.eval_report` writes the report).

Named datasets live under a data root (``--data-root`` or ``$MPCNET_DATA``), as
``scripts/prepare_celeba_test.sh CELEBA_HQ ROOT`` writes them::

    <root>/celeba-test/lq/*.png   degraded inputs (eq. 1), 512×512 aligned faces
    <root>/celeba-test/gt/*.png   their ground truth, same relative names
    <root>/real-test/lq/*.png     real low-quality faces, no ground truth

The names other tools use are accepted too (:data:`ALIASES`): e.g. GFPGAN's and CodeFormer's
``celeba/celeba_512_validation{,_lq}``, ``hq``/``reference`` for the GT, ``input`` for the LQ.
"""
from __future__ import annotations

import os
from pathlib import Path

from mpcnet.utils.dist import Launch
from mpcnet.utils.image_io import list_images, pixel_count

DATASETS = {"celeba-test": ("lq", "gt"), "real-test": ("lq", None)}
# Other names for the same folders, tried in order after the canonical one.
ALIASES = {"celeba-test": ("CelebA-Test", "celeba_test", "celeba"), "real-test": ("Real-Test", "real_test"),
           "lq": ("LQ", "input", "inputs", "celeba_512_validation_lq"),
           "gt": ("GT", "hq", "HQ", "reference", "celeba_512_validation")}


class EvalError(Exception):
    """An evaluation that cannot start; the message says why."""


def resolve_dataset(name: str, data_root: str | os.PathLike | None) -> tuple[Path, Path | None]:
    """``(lq_dir, gt_dir or None)`` of a named dataset under the data root."""
    if name not in DATASETS:
        raise EvalError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)} (or give --lq/--gt folders)")
    root = data_root or os.environ.get("MPCNET_DATA")
    if not root:
        raise EvalError(f"no data root for '{name}': give --data-root or set MPCNET_DATA")
    lq_name, gt_name = DATASETS[name]
    base = _first_dir(Path(root), name)
    layout = (f"{Path(root) / name}/{{{lq_name}{',' + gt_name if gt_name else ''}}}/ with matching file names "
              f"(scripts/prepare_celeba_test.sh writes it)")
    folders = []
    for sub in (lq_name, gt_name):
        folder = sub and _first_dir(base, sub)
        if sub and not folder.is_dir():
            tried = ", ".join((sub, *ALIASES[sub]))
            raise EvalError(f"{base / sub} is missing (also tried {tried} in {base}); '{name}' is expected as {layout}")
        folders.append(folder or None)
    return folders[0], folders[1]


def _first_dir(parent: Path, name: str) -> Path:
    """``parent/name``, or the first of its :data:`ALIASES` that is a folder (``parent/name`` if none is)."""
    return next((parent / n for n in (name, *ALIASES.get(name, ())) if (parent / n).is_dir()), parent / name)


def restore_folder(lq: Path, weights: str | None, out_dir: Path, device: str = "cpu", batch_size: int = 8,
                   overwrite: bool = False, method: str = "mpcnet", launch: Launch = Launch()) -> tuple[Path, dict, set[str]]:
    """Restore the aligned 512 faces in ``lq`` with the restore pipeline in aligned mode (no detection, no
    paste, same size, PNG) into ``out_dir/restored_imgs``; returns that folder, the run's summary
    and the keys (:func:`~mpcnet.eval_scoring.image_key`) of the faces it restored, the ones to score.
    ``method`` is ``mpcnet`` or a peer (:mod:`mpcnet.restoration.peers`), run through the same pipeline.
    Each process of ``launch`` restores its share; every network call runs a full batch, so a face's
    result is the same whatever the number of processes. The caller checks ``out_dir`` against ``lq``
    (:func:`~mpcnet.utils.safe_output.check_output_location`)."""
    from mpcnet.eval_scoring import image_key
    from mpcnet.restoration.builder import build_pipeline
    from mpcnet.restoration.options import RestoreOptions
    from mpcnet.restoration.peers import PeerError
    from mpcnet.restoration.results import Summary
    from mpcnet.weights import WeightsError

    root, files = list_images(lq)
    if not files:
        raise EvalError(f"no images in --lq {lq}")
    options = RestoreOptions(aligned=True, upscale=1, bg_upsampler="none", ext="png", overwrite=overwrite)
    try:
        pipeline = build_pipeline(weights, device, options=options, method=method, batch_size=batch_size,
                                  fixed_batch=True).pipeline
    except (WeightsError, PeerError, ValueError) as exc:
        raise EvalError(str(exc)) from exc
    mine = launch.shard(files, pixel_count, key=lambda f: pipeline.output_path(f, root, out_dir))
    summary = Summary.merge(launch.all_gather(pipeline.run(mine, root, out_dir)), files).to_dict()
    summary["weights"], summary["method"] = pipeline.restorer.name, method
    results = summary.pop("results")
    summary["failures"] = [r for r in results if r["status"] == "failed"]
    restored = {image_key(out_dir / "restored_imgs", Path(r["output"])) for r in results if r["status"] == "restored"}
    if summary["restored"] == 0:
        first = summary["failures"][0]
        raise EvalError(f"none of the {len(files)} images in --lq {lq} could be restored "
                        f"(first: {Path(first['source']).name}: {first['message']})")
    return out_dir / "restored_imgs", summary, restored
