#!/usr/bin/env python
"""Make a short clip from a still photo with a known camera motion (a circular pan of --radius
pixels every 2 s) and a 440 Hz sine as its audio track, for trying and measuring video restore:

    python scripts/make_clip.py PHOTO OUT.mp4 [--size 256] [--seconds 2] [--fps 25] [--radius 2]
    mpcnet benchmark restore OUT.mp4      # frames/s and flicker with face tracking off and on
"""
import argparse
import sys
from pathlib import Path

from mpcnet.bench.clip import make_clip

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("photo")
parser.add_argument("out", help="the clip to write (.mp4, .mov or .mkv)")
parser.add_argument("--size", type=int, default=256, help="longer side in pixels")
parser.add_argument("--seconds", type=float, default=2.0)
parser.add_argument("--fps", type=float, default=25.0)
parser.add_argument("--radius", type=float, default=2.0, help="pan radius in pixels")
args = parser.parse_args()
if Path(args.out).exists():
    sys.exit(f"error: {args.out} exists; choose another name")
print(make_clip(args.photo, args.out, size=args.size, seconds=args.seconds, fps=args.fps, radius=args.radius))
