"""MPCNet blind face restoration (Teng, Yu & Wu 2022): the library behind the ``mpcnet`` command.

Kept light on purpose: ``import mpcnet`` loads no torch; import the submodules you need.
"""
from mpcnet.version import __version__

__all__ = ["__version__"]
