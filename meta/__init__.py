"""omniroute: omni-channel contact-center routing as a plugin framework.

The code lives in four packages, `omniroute.grammar` (the expression language),
`omniroute.core`, `omniroute.plugins` and `omniroute.contrib`; this one only says which
release is installed, read from the installed distribution's metadata so that it cannot
disagree with `pip show omniroute`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("omniroute")
except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
