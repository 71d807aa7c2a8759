"""Pretrained segmentation CNNs: the model zoo (:mod:`~maskcli.cnn.specs`), weights, devices, loading
(:mod:`~maskcli.cnn.loading`), pre-processing (:mod:`~maskcli.cnn.preprocess`) and inference
(:mod:`~maskcli.cnn.infer`).

Importing this package is cheap: torch is imported only when a model is actually run (by those modules and
:mod:`maskcli.cnn.models`), so ``maskcli models`` and ``maskcli methods`` start
fast.

>>> from maskcli.cnn import specs
>>> specs.get("u2netp").kind
'salient'
"""

from maskcli.cnn import specs

__all__ = ["specs"]
