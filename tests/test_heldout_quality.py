"""The bundled model's quality on faces it never trained on (issue 20 point 2; weights/MODEL_CARD.md).

``scripts/eval_heldout.sh`` scores the 39 held-out faces of the built face pool; CI has no pool, so this
takes the first eight held-out faces of the pool's aligned sources straight from ../shared/data through
the pool's own code (:func:`tests.conftest.heldout_faces`) and runs the script's steps on them: eq. 1
at the CelebA-Test ranges with seed 0, `restore --aligned` through eval's pipeline, PSNR and SSIM
against the GT. The model card's relation is checked, not one
checkpoint's numbers: the model beats its input on both, by margins below issue 12's targets (+0.5 dB,
+0.03 SSIM over 39 faces) since eight faces vary more (one face's PSNR gain ranges over ±1.5 dB). The
network that does nothing (the residual output at its initialisation) gains 0.
"""
from __future__ import annotations

import pytest

from mpcnet.degrade_folder import build_ranges, plan, run
from mpcnet.eval_scoring import score
from mpcnet.evaluate import restore_folder
from mpcnet.utils.image_io import write_image
from tests.conftest import heldout_faces

FACES = 8


@pytest.mark.timeout(300)
def test_bundled_model_beats_its_input_on_heldout_faces(tmp_path):
    faces = heldout_faces(FACES)
    assert len(faces) == FACES, sorted(faces)
    for name, face in faces.items():
        write_image(tmp_path / "gt" / name, face)
    summary = run(plan(tmp_path / "gt")[1], tmp_path / "lq", build_ranges("celeba-test"), seed=0, size=512)
    assert not summary.failed, summary.failed
    restored, report = restore_folder(tmp_path / "lq", "mpcnet-s256", tmp_path / "model")
    assert report["restored"] == FACES
    model = score(restored, tmp_path / "gt", metrics=("psnr", "ssim")).metrics
    lq = score(tmp_path / "lq", tmp_path / "gt", metrics=("psnr", "ssim")).metrics
    assert model["psnr"] - lq["psnr"] >= 0.15, (model, lq)
    assert model["ssim"] - lq["ssim"] >= 0.015, (model, lq)
