"""`mpcnet benchmark`."""
from mpcnet_cli.common import not_yet


def benchmark() -> None:
    """Time the network, the restore pipeline and the degradation pipeline.

    Not implemented yet (issue 7): exits with code 3 and does nothing.
    """
    not_yet("benchmark", 7)
