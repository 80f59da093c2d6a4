#!/usr/bin/env bash
# CelebA-Test (section 4.2 of the paper): 3,000 CelebA-HQ faces chosen with a fixed seed, resized
# to 512×512 (HQ ground truth) and degraded with eq. 1 in the paper's random mode (Table 3).
#
#   scripts/prepare_celeba_test.sh CELEBA_HQ_DIR DATA_ROOT
#
# Writes DATA_ROOT/celeba-test/gt (ground truth) and DATA_ROOT/celeba-test/lq (degraded inputs), each
# with a manifest.csv of every image's parameters: the layout `mpcnet eval --dataset celeba-test
# --data-root DATA_ROOT` (and the option files' datasets/celeba-test) read. Re-running with the same
# SEED rebuilds the same set bit for bit.
# Environment: SEED (default 2021), COUNT (default 3000), SIZE (default 512), WORKERS (default 1),
# MPCNET (default: mpcnet on PATH).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 CELEBA_HQ_DIR DATA_ROOT" >&2
    exit 2
fi
src=$1 out=$2/celeba-test
seed=${SEED:-2021} count=${COUNT:-3000} size=${SIZE:-512} workers=${WORKERS:-1}
mpcnet=${MPCNET:-mpcnet}

"$mpcnet" degrade "$src" -o "$out/gt" --preset clean --size "$size" --sample "$count" --seed "$seed" --workers "$workers"
"$mpcnet" degrade "$out/gt" -o "$out/lq" --preset celeba-test --size "$size" --seed "$seed" --workers "$workers"
echo "CelebA-Test: $out/gt (ground truth) and $out/lq (inputs); score with: mpcnet eval --dataset celeba-test --data-root $2" >&2
