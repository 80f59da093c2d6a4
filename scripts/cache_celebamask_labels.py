"""Cache CelebAMask-HQ's 19-class label maps as ``<index>.png`` (one uint8 PNG per image).

    python scripts/cache_celebamask_labels.py CelebAMask-HQ/ CelebAMask-HQ/labels-512 [--size 512]

Point the parsing dataset's ``label_cache`` option at the output folder; existing files are kept.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mpcnet.data.celebamask_parsing_dataset import assemble_label_map, image_indices
from mpcnet.utils.image_io import write_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="CelebAMask-HQ root (CelebA-HQ-img/, CelebAMask-HQ-mask-anno/)")
    parser.add_argument("out", type=Path, help="folder for the cached label maps")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    written = 0
    for index in image_indices(args.root):
        target = args.out / f"{index}.png"
        if not target.exists():
            write_image(target, assemble_label_map(args.root, index, args.size))
            written += 1
    print(f"{written} label maps written to {args.out}")


if __name__ == "__main__":
    main()
