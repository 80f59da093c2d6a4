"""`mpcnet degrade`."""
from mpcnet_cli.common import not_yet


def degrade() -> None:
    """Degrade HQ faces with eq. 1 of the paper to build training or test sets.

    Not implemented yet (issue 4): exits with code 3 and does nothing.
    """
    not_yet("degrade", 4)
