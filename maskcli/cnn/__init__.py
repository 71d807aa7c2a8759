"""Pretrained segmentation CNNs: the model zoo (:mod:`~maskcli.cnn.specs`), weights, devices and inference.

Importing this package is cheap: torch is imported only by :mod:`maskcli.cnn.device`, :mod:`maskcli.cnn.infer`
and :mod:`maskcli.cnn.models`, when a model is actually run, so ``maskcli models`` and ``maskcli methods`` start
fast.

>>> from maskcli.cnn import specs
>>> specs.get("u2netp").kind
'salient'
"""

from maskcli.cnn import specs

__all__ = ["specs"]
