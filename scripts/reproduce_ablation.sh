#!/usr/bin/env bash
# Tables 1–2 of the paper (the ablation study) as one sequence: train MPCNet and each Table 1 variant
# from its option file at the same budget, score them all on the same CelebA-Test set, and tabulate
# them beside the paper's rows (each run is named by the switches its checkpoint records).
#
#   scripts/reproduce_ablation.sh DATA_ROOT OUT_DIR
#
# DATA_ROOT holds celeba-test/{lq,gt} (scripts/prepare_celeba_test.sh). Writes OUT_DIR/experiments/<run>/
# (checkpoints, logs), OUT_DIR/train.json, OUT_DIR/table1-2.md|json and OUT_DIR/restored/.
# Environment: OPTIONS (default: options/train_mpcnet_512.yml options/ablation/*.yml), TINY=1 (mpcnet
# train --tiny: 64 px, narrow channels, minutes on a CPU), TRAIN_GT (a folder of HQ faces to train on
# instead of the option files' FFHQ lmdb), ITERS (iterations per run), METRICS (default: Table 2's
# fid,lpips,psnr,ssim), DEVICE (default cpu), MPCNET (default: mpcnet on PATH).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_ROOT OUT_DIR" >&2
    exit 2
fi
root=$1 out=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
mpcnet=${MPCNET:-mpcnet}
options=${OPTIONS:-$repo/options/train_mpcnet_512.yml $repo/options/ablation/*.yml}

args=(--set "path.experiments_root=$out/experiments")
if [ -n "${TINY:-}" ]; then args+=(--tiny); fi
if [ -n "${TRAIN_GT:-}" ]; then
    args+=(--set "datasets.train.dataroot_gt=$TRAIN_GT" --set "datasets.train.io_backend={type: disk}")
fi
if [ -n "${ITERS:-}" ]; then args+=(--set "train.total_iter=$ITERS"); fi
for opt in $options; do args+=(-opt "$opt"); done
mkdir -p "$out"
"$mpcnet" train "${args[@]}" > "$out/train.json"

eval_args=(--table 2 --experiments "$out/experiments" --data-root "$root" --device "${DEVICE:-cpu}" -o "$out" --overwrite)
if [ -n "${METRICS:-}" ]; then eval_args+=(--metrics "$METRICS"); fi
"$mpcnet" eval "${eval_args[@]}"
echo "Tables 1–2: $out/table1-2.md" >&2
