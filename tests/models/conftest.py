"""What the model tests share: the tiny backbone most of them build."""

from __future__ import annotations

# A ResNet-10 of width 8 (the output stride and layout are set per test)
TINY_RESNET_W8 = {"name": "resnet", "depth": 10, "base_width": 8}
