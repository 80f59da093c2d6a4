"""`mpcnet benchmark`: timings, always as ratios against a peer measured in the same run."""
import typer

from mpcnet_cli import benchmark_degrade
from mpcnet_cli.common import not_yet

app = typer.Typer(help="Time the network, the restore pipeline and the degradation pipeline; "
                       "figures are reported as ratios against a peer measured in the same run.",
                  no_args_is_help=True)


@app.command()
def net() -> None:
    """Network throughput and latency against GFPGANv1Clean. Not implemented yet (issue 7)."""
    not_yet("benchmark net", 7)


app.command("degrade")(benchmark_degrade.degrade)
