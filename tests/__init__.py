"""The stand's own tests (a package, so that shared helpers import as ``from .module import x``)."""
