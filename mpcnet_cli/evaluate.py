"""`mpcnet eval`."""
from mpcnet_cli.common import not_yet


def evaluate() -> None:
    """Score restorations: PSNR, SSIM, LPIPS, FID, NIQE, identity.

    Not implemented yet (issue 7): exits with code 3 and does nothing.
    """
    not_yet("eval", 7)
