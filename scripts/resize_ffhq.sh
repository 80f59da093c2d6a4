#!/usr/bin/env bash
# Resize FFHQ (1024×1024 aligned faces) to the network size for training: area interpolation,
# PNG, same relative paths, no degradation.
#
#   scripts/resize_ffhq.sh FFHQ_DIR OUT_DIR
#
# Environment: SIZE (default 512), WORKERS (default 1), MPCNET (default: mpcnet on PATH).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 FFHQ_DIR OUT_DIR" >&2
    exit 2
fi
"${MPCNET:-mpcnet}" degrade "$1" -o "$2" --preset clean --size "${SIZE:-512}" --workers "${WORKERS:-1}"
