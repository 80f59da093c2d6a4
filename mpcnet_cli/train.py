"""`mpcnet train`."""
from mpcnet_cli.common import not_yet


def train() -> None:
    """Train a stage (ParseNet, StyleGAN2 prior, MPCNet) from a BasicSR option file.

    Not implemented yet (issue 5): exits with code 3 and does nothing.
    """
    not_yet("train", 5)
