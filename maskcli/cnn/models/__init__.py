"""Architectures maskcli defines itself (the torchvision ones are built by torchvision)."""
