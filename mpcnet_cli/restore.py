"""`mpcnet restore`."""
from mpcnet_cli.common import not_yet


def restore() -> None:
    """Restore faces in photos: detect, align, restore, paste back.

    Not implemented yet (issue 6): exits with code 3 and does nothing.
    """
    not_yet("restore", 6)
