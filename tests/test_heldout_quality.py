"""The bundled model's quality on faces it never trained on (issue 20 point 2; weights/MODEL_CARD.md).

``scripts/eval_heldout.sh`` scores the 39 held-out faces of the built face pool; CI has no pool, so this
takes the first eight held-out faces of the pool's aligned sources straight from ../shared/data through
the pool's own code (its README sources, seeded split and 512 px resize, named as the pool names them)
and runs the script's steps on them: eq. 1 at the CelebA-Test ranges with seed 0, `restore --aligned`
through eval's pipeline, PSNR and SSIM against the GT. The model card's relation is checked, not one
checkpoint's numbers: the model beats its input on both, by margins below issue 12's targets (+0.5 dB,
+0.03 SSIM over 39 faces) since eight faces vary more (one face's PSNR gain ranges over ±1.5 dB). The
network that does nothing (the residual output at its initialisation) gains 0.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mpcnet.data.face_pool import face_name, load_fixed_splits, pool_files, read_sources, resize_aligned, source_split
from mpcnet.degrade import build_ranges, plan, run
from mpcnet.eval_scoring import score
from mpcnet.evaluate import restore_folder
from mpcnet.utils.files import read_image, write_image
from tests.conftest import DATA, REPO

FACES = 8


def heldout_faces(out: Path) -> list[str]:
    """The first :data:`FACES` held-out faces of aligned sources at least 512 px, written to ``out`` as
    the pool writes them (eval_heldout.sh's GT); returns their sources."""
    fixed = load_fixed_splits(REPO / "options" / "splits")
    chosen = []
    for source, path in pool_files(DATA, read_sources(DATA)):
        if len(chosen) == FACES:
            break
        if source.pool != "aligned" or source_split(path, DATA, fixed) != "heldout":
            continue
        image = read_image(path)
        if image.bgr.shape[0] >= 512:
            write_image(out / Path(face_name(source, path, None)).name, resize_aligned(image))
            chosen.append(path.relative_to(DATA).as_posix())
    return chosen


@pytest.mark.timeout(300)
def test_bundled_model_beats_its_input_on_heldout_faces(tmp_path):
    chosen = heldout_faces(tmp_path / "gt")
    assert len(chosen) == FACES, chosen
    summary = run(plan(tmp_path / "gt")[1], tmp_path / "lq", build_ranges("celeba-test"), seed=0, size=512)
    assert not summary.failed, summary.failed
    restored, report = restore_folder(tmp_path / "lq", "mpcnet-s256", tmp_path / "model")
    assert report["restored"] == FACES
    model = score(restored, tmp_path / "gt", metrics=("psnr", "ssim")).metrics
    lq = score(tmp_path / "lq", tmp_path / "gt", metrics=("psnr", "ssim")).metrics
    assert model["psnr"] - lq["psnr"] >= 0.15, (model, lq)
    assert model["ssim"] - lq["ssim"] >= 0.015, (model, lq)
