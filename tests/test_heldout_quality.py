"""The bundled model's quality on faces it never trained on (issue 20 point 2; weights/MODEL_CARD.md).

``scripts/eval_heldout.sh`` scores the 39 held-out faces of the built face pool; CI has no pool, so this
takes the first eight held-out faces of the pool's aligned sources straight from ../shared/data through
the pool's own code (:func:`tests.conftest.heldout_faces`) and runs the script's steps on them: eq. 1
at the CelebA-Test ranges with seed 0, `restore --aligned` through eval's pipeline, PSNR and SSIM
against the GT. The model card's relation is checked, not one
checkpoint's numbers: the model beats its input on both, by margins below issue 12's targets (+0.5 dB,
+0.03 SSIM over 39 faces) since eight faces vary more (one face's PSNR gain ranges over ±1.5 dB). The
network that does nothing (the residual output at its initialisation) gains 0.
Last, scripts/heldout_frontier.py, the model card's picture of detail against fidelity.
"""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mpcnet.degrade_folder import build_ranges, plan, run
from mpcnet.eval_scoring import score
from mpcnet.evaluate import restore_folder
from mpcnet.utils.image_io import write_image
from tests.conftest import REPO, heldout_faces

FACES = 8


@pytest.mark.timeout(300)
def test_bundled_model_beats_its_input_on_heldout_faces(tmp_path):
    faces = heldout_faces(FACES)
    assert len(faces) == FACES, sorted(faces)
    for name, face in faces.items():
        write_image(tmp_path / "gt" / name, face)
    summary = run(plan(tmp_path / "gt")[1], tmp_path / "lq", build_ranges("celeba-test"), seed=0, size=512)
    assert not summary.failed, summary.failed
    restored, report, _ = restore_folder(tmp_path / "lq", "mpcnet-s256", tmp_path / "model")
    assert report["restored"] == FACES
    model = score(restored, tmp_path / "gt", metrics=("psnr", "ssim")).metrics
    lq = score(tmp_path / "lq", tmp_path / "gt", metrics=("psnr", "ssim")).metrics
    assert model["psnr"] - lq["psnr"] >= 0.15, (model, lq)
    assert model["ssim"] - lq["ssim"] >= 0.015, (model, lq)


@pytest.mark.slow
def test_frontier_script_plots_checkpoints_with_unsharp_mask_and_oracle_baselines(tmp_path):
    """scripts/heldout_frontier.py on an eval_heldout.sh-shaped folder of two real held-out faces, whose
    "model" is a Gaussian blur (σ 2) of the GT and whose input a stronger one (σ 4): it reports the model's
    scores as eval measured them; the unsharp mask gives that blurry model more detail the harder it is
    applied, at both σ; the oracle's GT detail raises PSNR in place and costs PSNR once moved 5.7 px; the
    GT at the input's sampling rate (r 4 and 8, from the manifest) keeps less detail the larger r."""
    out = tmp_path / "blur2"
    faces = heldout_faces(2)
    for name, face in faces.items():
        write_image(out / "gt" / name, face)
        write_image(out / "model" / "restored_imgs" / name, cv2.GaussianBlur(face, (0, 0), 2.0))
        write_image(out / "lq" / name, cv2.GaussianBlur(face, (0, 0), 4.0))
    metrics = ("psnr", "ssim", "grad_ratio")
    model = score(out / "model" / "restored_imgs", out / "gt", metrics=metrics).metrics
    (out / "model.json").write_text(json.dumps({"metrics": model}))
    (out / "input.json").write_text(json.dumps({"metrics": score(out / "lq", out / "gt", metrics=metrics).metrics}))
    def frontier(scale: float) -> list[dict]:
        (out / "lq" / "manifest.csv").write_text("output,input,scale\n" + "".join(f"{n},{n},{scale}\n" for n in faces))
        proc = subprocess.run([sys.executable, str(REPO / "scripts" / "heldout_frontier.py"), f"blur σ2={out}",
                               "--baselines", str(out), "-o", str(tmp_path / "frontier.png")],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [json.loads(line) for line in proc.stdout.splitlines()]

    runs = {scale: frontier(scale) for scale in (8, 4)}
    limits = [next(p for p in runs[scale] if "limit" in p) for scale in (8, 4)]
    assert limits[0]["detail"] < limits[1]["detail"] < 1 and limits[0]["psnr"] < limits[1]["psnr"], limits
    points = runs[4]
    assert points[0] == {"label": "blur σ2", "psnr": model["psnr"], "ssim": model["ssim"], "detail": model["grad_ratio"]}
    for sigma in (1.0, 2.0):
        curve = [p["detail"] for p in points if p.get("sigma") == sigma]
        assert len(curve) == 4 and curve[0] > model["grad_ratio"] and np.all(np.diff(curve) > 0), curve
    oracle = {(p["shift"], p["beta"]): p for p in points if "shift" in p}
    assert oracle[0, 1.0]["psnr"] > oracle[0, 0.5]["psnr"] > model["psnr"] > oracle[4, 1.0]["psnr"], oracle
    assert oracle[4, 1.0]["detail"] > model["grad_ratio"], oracle
    assert cv2.imread(str(tmp_path / "frontier.png")) is not None
