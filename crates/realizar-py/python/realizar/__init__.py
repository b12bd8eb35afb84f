"""realizar: load real models from files and run them with trueno's kernels."""

from realizar._realizar import __source_hash__

__all__ = ["__source_hash__"]
