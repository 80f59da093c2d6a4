"""Write a training checkpoint as a model file to ship (e.g. ``weights/mpcnet_s256.pth``): its EMA
weights in fp16, the architecture it records and a meta record; prints what weights.yaml lists
(sha256, bytes) for the file. The library's :func:`mpcnet.checkpoint.release_checkpoint` does the work.

  python scripts/release_weights.py experiments/RUN/models/net_g_800.pth weights/mpcnet_s256.pth \\
      --name mpcnet_s256 --iter 800 --note "stage 3 of options/....yml at iteration 800 (EMA weights)"
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mpcnet.checkpoint import release_checkpoint
from mpcnet.weights import sha256_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (net_g_*.pth)")
    parser.add_argument("out", type=Path, help="the model file to write")
    parser.add_argument("--name", required=True)
    parser.add_argument("--iter", type=int, required=True, help="the training iteration it is from")
    parser.add_argument("--note", required=True, help="the run and recipe it comes from")
    args = parser.parse_args()
    values = release_checkpoint(args.checkpoint, args.out,
                                {"name": args.name, "iter": args.iter, "model": "MPCNetModel", "note": args.note})
    print(f"{args.out}: {values:,} values, {args.out.stat().st_size:,} bytes, sha256 {sha256_of(args.out)}")


if __name__ == "__main__":
    main()
