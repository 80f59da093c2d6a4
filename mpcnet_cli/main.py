"""``mpcnet``: blind face restoration with MPCNet. Each subcommand lives in its own module."""
from __future__ import annotations

import os
import signal
import threading

import typer
from rich.markup import escape
from typer.core import TyperGroup

from mpcnet.version import __version__
from mpcnet_cli import benchmark, degrade, evaluate, export, restore, train, weights
from mpcnet_cli.common import INTERRUPTED, console

DEBUG_ENV = "MPCNET_DEBUG"


def _terminate(signum, frame):
    """SIGTERM stops a command as Ctrl-C does: batches finish the file in hand's atomic write and
    report what is done."""
    raise KeyboardInterrupt


class GuardedGroup(TyperGroup):
    """Runs every subcommand inside the one top-level error handler: SIGTERM is handled as Ctrl-C,
    an interrupt outside a batch exits with one line, and an exception that no command turned into
    a clear message is a bug: one line says so, and ``--debug`` (or ``MPCNET_DEBUG=1``) shows the
    traceback."""

    def invoke(self, ctx: typer.Context):
        debug = ctx.params.get("debug") or os.environ.get(DEBUG_ENV, "") not in ("", "0")
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # clean exits and usage errors
            raise
        except BrokenPipeError:  # the reader of stdout left (| head): click's main ends quietly, as Unix tools do
            raise
        except KeyboardInterrupt:
            console.print("[red]interrupted[/]")
            raise typer.Exit(INTERRUPTED) from None
        except Exception as exc:
            if debug:
                raise
            detail = (str(exc).strip().splitlines() or [""])[0][:200]
            console.print(f"[bold red]error:[/] unexpected internal error ({type(exc).__name__}"
                          f"{': ' + escape(detail) if detail else ''}); this is a bug, please report it. "
                          f"Rerun with --debug (or {DEBUG_ENV}=1) to see the traceback.")
            raise typer.Exit(1) from None
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


app = typer.Typer(
    cls=GuardedGroup,
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
                                      help="Print the version and exit."),
         debug: bool = typer.Option(False, "--debug", help=f"Show the traceback of an unexpected internal "
                                    f"error (also {DEBUG_ENV}=1); before the command: mpcnet --debug restore …"),
         ) -> None:
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
