"""Architectures maskcli defines itself (the torchvision ones are built by torchvision), and :func:`new_module`,
which builds either kind empty, for loading weights into."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskcli.cnn.specs import ModelSpec

if TYPE_CHECKING:
    from torch import nn


def new_module(spec: ModelSpec) -> nn.Module:
    """An untrained torch module of ``spec``'s architecture: a U²-Net of :mod:`.u2net`, or a torchvision
    segmentation model with one output channel per category of the spec (no auxiliary head: it only helps
    training from scratch, and the published files' copy of it is dropped on loading)."""
    if spec.kind == "semantic":
        from torchvision.models import segmentation

        return getattr(segmentation, spec.builder)(weights=None, weights_backbone=None,
                                                   num_classes=len(spec.categories), aux_loss=False)
    from maskcli.cnn.models import u2net

    return getattr(u2net, spec.builder)()
