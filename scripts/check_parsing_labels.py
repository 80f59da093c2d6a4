"""Check the pseudo parsing labels: IoU against real CelebAMask-HQ maps, and a contact sheet of overlays.

    python scripts/check_parsing_labels.py --images DIR --maps DIR [--json]
    python scripts/check_parsing_labels.py --pool POOL_DIR --sheet docs/pseudo_parsing_labels.png [--count 12]

--images/--maps: every image with a CelebAMask-HQ map of the same stem (<stem>.png, colour-coded or
class ids) gets pseudo labels at the map's size; prints the IoU per landmark class, their mean (mIoU;
the map's other classes count as background) and the IoU of the face region that restore pastes.
--pool/--sheet: face | overlay for --count faces spread over the pool's labelled faces, one PNG.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mpcnet.data.pseudo_parsing import LandmarkModelError
from mpcnet.data.pseudo_parsing_check import agreement, pool_contact_sheet
from mpcnet.utils.safe_output import write_bytes_atomic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--images", type=Path, help="folder of face images (any size, aligned as the maps are)")
    parser.add_argument("--maps", type=Path, help="folder of CelebAMask-HQ maps <image stem>.png")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--pool", type=Path, help="face pool with labels/ (scripts/make_parsing_labels.py)")
    parser.add_argument("--sheet", type=Path, help="contact sheet PNG to write")
    parser.add_argument("--count", type=int, default=12, help="faces on the sheet (default 12)")
    args = parser.parse_args()
    if bool(args.images) != bool(args.maps) or bool(args.pool) != bool(args.sheet) or not (args.images or args.pool):
        parser.error("give --images with --maps, and/or --pool with --sheet")
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        if args.images:
            result = agreement(args.images, args.maps).summary()
            if args.json:
                print(json.dumps(result, indent=2))
            print(f"{result['pairs']} pairs: mIoU {result['miou']:.4f} over {', '.join(result['iou'])}; "
                  f"per class {result['iou']}; face region IoU {result['face_region_iou']:.4f}", file=sys.stderr)
        if args.pool:
            data, count = pool_contact_sheet(args.pool, args.count)
            write_bytes_atomic(args.sheet, data)
            print(f"{args.sheet}: {count} faces, {len(data) / 1024:.0f} KB", file=sys.stderr)
    except (FileNotFoundError, ValueError, LandmarkModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
