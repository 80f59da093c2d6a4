"""The ``mpcnet`` command line: a thin Typer layer over the ``mpcnet`` package."""
