"""`mpcnet benchmark degrade`."""
from mpcnet_cli.common import not_yet


def degrade() -> None:
    """Degradation throughput against BasicSR's pipeline. Not implemented yet (issue 4)."""
    not_yet("benchmark degrade", 4)
