"""Compositing modes of ``maskcli apply``; :data:`modes` is the registry that holds them.

The maths they share (blending, alpha, foreground colour estimation) lives in :mod:`maskcli.composite.blend`.
"""

from maskcli.composite.base import Mode, modes

__all__ = ["Mode", "modes"]
