"""Build the training face pool from every ground-truth source of a shared data folder.

    python scripts/build_face_pool.py DATA OUT    # make pool: ../shared/data → datasets/face_pool

Reads DATA/README.md's `pool` column (aligned | detect | no), aligns whole photos with `mpcnet
restore`'s RetinaFace and FFHQ-512 alignment (YuNet confirms each face), drops small, blurry,
low-confidence, false and duplicate faces, and writes OUT/faces/*.png (512×512 RGB),
OUT/manifest.csv, OUT/dropped.csv (each drop with its reason) and OUT/{train,val,heldout}.txt
(FaceDegradedDataset's meta_info_file, with dataroot_gt: OUT). The rules are in
mpcnet/data/face_pool.py. A second run changes nothing; it removes only faces of its own old
manifest. Exit codes: 0 all files used, 1 some could not be read, 2 bad request (nothing written).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fail(message: str) -> None:
    print(f"build_face_pool: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("data", type=Path, help="shared data folder (with README.md), e.g. ../shared/data")
    parser.add_argument("out", type=Path, nargs="?", help="pool folder, e.g. datasets/face_pool (not needed "
                        "with --calibrate)")
    parser.add_argument("--splits", type=Path, default=REPO / "options" / "splits",
                        help="folder of the fixed split lists tiny128_{train,val,heldout}.txt (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--calibrate", action="store_true",
                        help="only print the sharpness of the clean aligned faces and their ×4-degraded copies "
                             "(the data behind the blur threshold)")
    args = parser.parse_args()
    if not (args.data / "README.md").is_file():
        fail(f"{args.data / 'README.md'} not found; give the shared data folder")
    if args.out is None and not args.calibrate:
        fail("give the output folder OUT")
    data, out = args.data.resolve(), args.out and args.out.resolve()
    if out and (out == data or data in out.parents):
        fail(f"{out} is inside the data folder {data}; choose a folder outside it")
    from tqdm import tqdm

    from mpcnet.data import face_pool  # only after the checks above: it loads torch (slow)

    if args.calibrate:
        stats = face_pool.calibrate_sharpness(data)
        print(json.dumps({"threshold": face_pool.MIN_SHARPNESS, **stats}, indent=1))
        return
    try:
        sources = face_pool.read_sources(data)
    except ValueError as err:
        fail(str(err))
    for source in sources:
        if source.pool == face_pool.UNCLASSIFIED:
            print(f"build_face_pool: README.md does not say whether {source.folder} feeds the pool; not used",
                  file=sys.stderr)
    files = face_pool.pool_files(data, sources)
    if not files:
        fail(f"no images in the aligned/detect folders of {data / 'README.md'}")
    detector = verifier = None
    if any(source.pool == "detect" for source, _ in files):
        from mpcnet.restoration.detectors import YuNetDetector, make_detector
        from mpcnet.weights import WeightsError
        try:
            detector, verifier = make_detector("retinaface"), YuNetDetector(face_pool.VERIFY_SCORE)
        except WeightsError as err:
            fail(str(err))
    with tqdm(total=len(files), desc="face pool", unit="photo", file=sys.stderr) as bar:
        report = face_pool.build_pool(data, out, face_pool.load_fixed_splits(args.splits), detector, verifier,
                                      progress=lambda _: bar.update())
    summary = {"out": str(out), **report.summary()}
    for d in report.failed:
        print(f"{d.source_file}: {d.reason}: {d.detail}", file=sys.stderr)
    print(f"{summary['faces']} faces in {out} ({summary['written']} written, {summary['unchanged']} unchanged, "
          f"{summary['removed']} removed)", file=sys.stderr)
    for key in ("per_split", "dropped", "per_source"):
        print(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in summary[key].items()), file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=1))
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
