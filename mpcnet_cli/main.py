"""``mpcnet``: blind face restoration with MPCNet. Each subcommand lives in its own module."""
from __future__ import annotations

import typer

from mpcnet.version import __version__
from mpcnet_cli import benchmark, degrade, evaluate, export, restore, train, weights

app = typer.Typer(
    help="MPCNet blind face restoration: restore photos, build degraded test sets, train, "
         "evaluate against the paper, and benchmark.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mpcnet {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """MPCNet blind face restoration toolkit."""


app.command("degrade")(degrade.degrade)
app.command("train")(train.train)
app.command("restore")(restore.restore)
app.command("eval")(evaluate.evaluate)
app.add_typer(benchmark.app, name="benchmark")
app.add_typer(export.app, name="export")
app.add_typer(weights.app, name="weights")

if __name__ == "__main__":
    app()
