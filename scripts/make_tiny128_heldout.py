"""Build the held-out evaluation pairs of the tiny 128 px model from the shared faces.

    python scripts/make_tiny128_heldout.py OUT   # then: mpcnet degrade OUT/gt -o OUT/lq \\
        --ranges options/splits/tiny128_degradation.yml --seed 0

Writes OUT/gt/<folder>_<name>.png: each face of options/splits/tiny128_heldout.txt (paths under
../shared/data) downscaled to 128×128 with area interpolation, as the training set does.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2

from mpcnet.utils.image_io import write_image

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    out = Path(sys.argv[1]) / "gt"
    data = REPO.parent / "shared" / "data"
    for rel in (REPO / "options" / "splits" / "tiny128_heldout.txt").read_text().split():
        img = cv2.imread(str(data / rel), cv2.IMREAD_COLOR)
        name = f"{Path(rel).parent.name}_{Path(rel).stem}.png"
        write_image(out / name, cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA))
    print(f"held-out ground truth in {out}")


if __name__ == "__main__":
    main()
