#!/usr/bin/env bash
# The fixed-degradation test sets of Tables 4–6 from a folder of 512×512 HQ faces (e.g. the
# celeba-test/gt folder written by prepare_celeba_test.sh). Each variant fixes one factor of eq. 1
# and samples the others as CelebA-Test does, with the same per-image draws across variants:
#   table4-x4 … x8 and x6.5, x7.15   SR factor r        (Table 4, Figures 9–10)
#   table5-gauss-3|6|9|12, table5-motion-0|45|90|135    noise-free, one blur kernel (Table 5)
#   table6-noise0|5|10|15|20|25      noise level δ      (Table 6)
#
#   scripts/make_table_variants.sh HQ_DIR OUT_DIR
#
# Writes OUT_DIR/<variant>/ with a manifest.csv each; score them into the paper's layout with
#   mpcnet eval --table 4 --hq HQ_DIR --variants OUT_DIR -o REPORT_DIR     (5, 6 likewise)
# (which also builds, identically, any variant missing). Environment: TABLES (default "4 5 6"),
# SEED (default 2021), SIZE (default 512), WORKERS (default 1), MPCNET (default: mpcnet on PATH).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 HQ_DIR OUT_DIR" >&2
    exit 2
fi
src=$1 out=$2
seed=${SEED:-2021} size=${SIZE:-512} workers=${WORKERS:-1} tables=${TABLES:-4 5 6}
mpcnet=${MPCNET:-mpcnet}
run() {  # run NAME ARGS...: one variant into OUT_DIR/NAME
    local name=$1
    shift
    "$mpcnet" degrade "$src" -o "$out/$name" --size "$size" --seed "$seed" --workers "$workers" --quiet "$@"
    echo "$name" >&2
}

for t in $tables; do  # every variant of Table t (mpcnet degrade --preset list), one subfolder each
    "$mpcnet" degrade "$src" -o "$out" --preset "table$t" --size "$size" --seed "$seed" --workers "$workers"
done
if [[ " $tables " == *" 4 "* ]]; then
    run table4-x6.5 --scale 6.5
    run table4-x7.15 --scale 7.15
fi
