"""Mask methods, one family per file; :data:`methods` is the registry that holds them."""

from maskcli.methods.base import Method, Segmentation, methods

__all__ = ["Method", "Segmentation", "methods"]
