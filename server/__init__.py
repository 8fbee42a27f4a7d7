"""Cairn's server: the Starlette app, its settings and the ``cairn`` command line."""

from .app import create_app
from .settings import Settings

__all__ = ["create_app", "Settings", "__version__"]

__version__ = "0.1.0"
