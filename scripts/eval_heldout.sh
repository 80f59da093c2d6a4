#!/usr/bin/env bash
# Score a model on the face pool's held-out faces as issue 12 sets its targets (the model card's numbers):
#   scripts/eval_heldout.sh POOL OUT [WEIGHTS]      e.g. scripts/eval_heldout.sh datasets/face_pool results/heldout
# GT: the held-out faces of POOL/manifest.csv whose source face is at least 512 px (true 512 px detail).
# LQ: eq. 1 at the CelebA-Test ranges, seed 0 (mpcnet degrade --preset celeba-test); PRESET=gfpgan-train
# scores the same faces at GFPGAN's milder training ranges instead ("do no harm" on better inputs).
# Rows: the model (restore --aligned at the input's size, through mpcnet eval) and the input itself,
# on PSNR, SSIM, detail (grad_ratio), dlib identity angle and 68-landmark distance, and how many faces
# the model leaves worse than its input (PSNR, identity) and its change on the 8 best inputs; then NIQE on the
# real low-quality aligned faces of ../shared/data (codeformer-inputs/cropped_faces, gray_faces).
set -euo pipefail
POOL=${1:?usage: eval_heldout.sh POOL OUT [WEIGHTS]}; OUT=${2:?usage: eval_heldout.sh POOL OUT [WEIGHTS]}
WEIGHTS=${3:-mpcnet-s256}
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
MPCNET=${MPCNET:-mpcnet}
PRESET=${PRESET:-celeba-test}
METRICS=psnr,ssim,grad_ratio,deg_dlib,lmd_dlib68
mkdir -p "$OUT/gt"
python3 - "$POOL" "$OUT/gt" <<'PY'
import csv, shutil, sys
from pathlib import Path
pool, gt = Path(sys.argv[1]), Path(sys.argv[2])
for row in csv.DictReader(open(pool / "manifest.csv")):
    target = gt / Path(row["file"]).name
    if row["split"] == "heldout" and float(row["native_size"]) >= 512 and not target.exists():
        shutil.copyfile(pool / row["file"], target)
PY
[ -f "$OUT/lq/manifest.csv" ] || $MPCNET degrade "$OUT/gt" -o "$OUT/lq" --preset "$PRESET" --seed 0 --size 512 -q
$MPCNET eval --lq "$OUT/lq" --gt "$OUT/gt" --weights "$WEIGHTS" --metrics $METRICS -o "$OUT/model" --overwrite --json > "$OUT/model.json"
$MPCNET eval --restored "$OUT/lq" --gt "$OUT/gt" --metrics $METRICS -o "$OUT/input" --overwrite --json > "$OUT/input.json"
for set in cropped_faces gray_faces; do
  $MPCNET eval --lq "$SHARED/data/codeformer-inputs/$set" --weights "$WEIGHTS" --metrics niqe -o "$OUT/niqe-$set-model" --overwrite --json > "$OUT/niqe-$set-model.json"
  $MPCNET eval --restored "$SHARED/data/codeformer-inputs/$set" --metrics niqe -o "$OUT/niqe-$set-input" --overwrite --json > "$OUT/niqe-$set-input.json"
done
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
m = lambda name: json.load(open(out / f"{name}.json"))["metrics"]
model, inp = m("model"), m("input")
print(f"{'':8} {'PSNR':>7} {'SSIM':>7} {'detail':>7} {'deg_dlib':>9} {'LMD':>6}")
for label, r in (("input", inp), ("model", model)):
    print(f"{label:8} {r['psnr']:7.3f} {r['ssim']:7.4f} {r['grad_ratio']:7.3f} {r['deg_dlib']:9.2f} {r['lmd_dlib68']:6.2f}")
# "do no harm", face by face: how many the model leaves further from their GT than its input was
per = lambda name: json.load(open(out / name / "metrics.json"))["per_image"]
pm, pi = per("model"), per("input")
both = {k: [f for f in pm if pm[f].get(k) is not None and pi.get(f, {}).get(k) is not None] for k in ("psnr", "deg_dlib")}
worse = {k: sum((pm[f][k] < pi[f][k]) if k == "psnr" else (pm[f][k] > pi[f][k]) for f in fs) for k, fs in both.items()}
print(f"faces worse than their input: PSNR {worse['psnr']}/{len(both['psnr'])}, "
      f"identity {worse['deg_dlib']}/{len(both['deg_dlib'])}")
# and what it does to the faces that needed it least: the 8 with the best inputs (by PSNR)
best = sorted(both["psnr"], key=lambda f: -pi[f]["psnr"])[:8]
diffs = {k: [pm[f][k] - pi[f][k] for f in best if f in both[k]] for k in ("psnr", "deg_dlib")}
change = {k: f"{sum(d) / len(d):+.2f}" if d else "n/a" for k, d in diffs.items()}  # n/a: dlib found none
print(f"the {len(best)} best inputs, model minus input: PSNR {change['psnr']} dB, "
      f"identity {change['deg_dlib']} degrees")
for s in ("cropped_faces", "gray_faces"):
    print(f"NIQE {s}: input {m(f'niqe-{s}-input')['niqe']:.3f}, model {m(f'niqe-{s}-model')['niqe']:.3f}")
PY
