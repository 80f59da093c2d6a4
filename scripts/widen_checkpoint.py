"""Start a wider MPCNet from a model file: the same network with ``--channel-floor`` raising its narrow
scales, written as a checkpoint that gives the same output (new channels start unused) for a training
run's ``path.pretrain_network_g``. :func:`mpcnet.archs.widen_checkpoint` does the work.

  python scripts/widen_checkpoint.py experiments/start/mpcnet_s256_f9c49be.pth \\
      experiments/start/mpcnet_s256_f9c49be_floor16.pth --channel-floor 16
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mpcnet.archs import widen_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model file or registry name (e.g. mpcnet-s256)")
    parser.add_argument("out", type=Path, help="the checkpoint to write")
    parser.add_argument("--channel-floor", type=int, required=True, help="MPCNet's channel_floor")
    args = parser.parse_args()
    arch = widen_checkpoint(args.model, args.out, channel_floor=args.channel_floor)
    print(f"{args.out}: {arch['type']} with channel_floor {arch['channel_floor']}")


if __name__ == "__main__":
    main()
