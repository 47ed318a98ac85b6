"""PCAA's class activation attention module (CAAM) and the bin maths it is built from.

Liu et al., "Partial Class Activation Attention for Semantic Segmentation", CVPR 2022; spec
§3.6. Notation: N batch, C channels, K classes, a ``(b_h, b_w)`` bin grid with B = b_h·b_w bins
of P = r_h·r_w pixels each (r_h = H / b_h, r_w = W / b_w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsss.utils.amp import float32

__all__ = [
    "CAAM",
    "BinGraph",
    "bin_split",
    "bin_merge",
    "local_class_centers",
    "class_attention",
    "conv_bn_relu",
]


def conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    """``kernel``×``kernel`` conv (no bias, same padding) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def bin_split(x: torch.Tensor, bins: tuple[int, int]) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, B, P, C)``: bin ``i·b_w + j`` holds rows ``i·r_h …`` and
    columns ``j·r_w …``, its pixels in row-major order.

    Raises:
        ValueError: if H or W is not divisible by the bin grid.
    """
    n, c, h, w = x.shape
    bh, bw = bins
    if h % bh or w % bw:
        raise ValueError(
            f"feature map {h}x{w} is not divisible by the {bh}x{bw} bin grid; resize the input "
            "to a multiple of output_stride × bin size (PCAA's size_divisor)"
        )
    rh, rw = h // bh, w // bw
    x = x.reshape(n, c, bh, rh, bw, rw).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(n, bh * bw, rh * rw, c)


def bin_merge(x: torch.Tensor, bins: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`bin_split`: ``(N, B, P, C)`` → ``(N, C, H, W)`` with ``size = (H, W)``."""
    n, _, _, c = x.shape
    (bh, bw), (h, w) = bins, size
    x = x.reshape(n, bh, bw, h // bh, w // bw, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, c, h, w)


@float32
def local_class_centers(
    cam: torch.Tensor, feats: torch.Tensor, bin_scores: torch.Tensor
) -> torch.Tensor:
    """Per-bin class centres ``L = (softmax_P(M_b)ᵀ X_b) ⊙ s_b`` (PCAA §3.2; spec §3.6 step 4).

    Args:
        cam: ``(N, B, P, K)`` partial-CAM logits M in bins.
        feats: ``(N, B, P, C)`` features X in bins.
        bin_scores: ``(N, B, K)`` bin confidences s = sigmoid(bin-averaged M).

    Returns:
        ``(N, B, K, C)``: for class k in bin b, the features averaged with the softmax of
        class k's activations over the bin's pixels, times the bin's confidence for k.
    """
    pixel_conf = cam.softmax(dim=2)
    return (pixel_conf.transpose(2, 3) @ feats) * bin_scores.unsqueeze(-1)


@float32
def class_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, scale: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-to-class attention inside each bin (spec §3.6 step 7).

    Args:
        query: ``(N, B, P, D)`` pixel queries.
        key: ``(N, B, K, D)`` keys from the local class centres.
        value: ``(N, B or 1, K, D)`` values from the global class centres.
        scale: multiplies the affinities before the softmax; None = 1 (the original).

    Returns:
        ``(out (N, B, P, D), affinity (N, B, P, K))`` with ``affinity`` softmax-normalised over
        the K classes and ``out = affinity @ value``.
    """
    energy = query @ key.transpose(2, 3)
    if scale is not None:
        energy = energy * scale
    affinity = energy.softmax(dim=-1)
    return affinity @ value, affinity


class BinGraph(nn.Module):
    """PCAA's graph reasoning over bins: ``Linear_C(ReLU(Conv1×1_B(L) + L))``, the 1×1 conv
    mixing the B bin nodes and the linear map acting on channels, both without bias."""

    def __init__(self, num_bins: int, channels: int) -> None:
        super().__init__()
        self.node_mix = nn.Conv2d(num_bins, num_bins, 1, bias=False)
        self.channel_map = nn.Linear(channels, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, B, K, C)`` → ``(N, B, K, C)``."""
        return self.channel_map(F.relu(self.node_mix(x) + x))


class CAAM(nn.Module):
    """Class activation attention module (Liu et al., CVPR 2022; spec §3.6).

    1. Partial CAM ``M = Conv1×1(Dropout2d(X))`` (K maps, bias); bin logits = M averaged over
       each bin; bin confidence ``s = sigmoid(bin logits)``.
    2. Local class centres per bin (:func:`local_class_centers`) → :class:`BinGraph` → ``L'``.
    3. Global class centres ``G = ReLU(Conv1×1_{B→1}(L'))`` (bias), shared by all bins.
    4. :func:`class_attention` with query ``Linear(X_b)``, key ``Linear(L')``, value
       ``Linear(G)`` (all with bias) → ``Y = X + ReLU(BN(Conv1×1(out)))`` (conv without bias).

    Args:
        channels: C of the input and output.
        num_classes: K.
        bins: ``(b_h, b_w)``; the input's H, W must be divisible by it.
        attention_channels: query/key/value width (C/2 in the paper).
        cam_dropout: Dropout2d probability before the partial-CAM classifier (0.1).
        scale_attention: scale affinities by ``attention_channels^-1/2`` (the original defines
            this scale but does not apply it).
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        bins: tuple[int, int],
        *,
        attention_channels: int,
        cam_dropout: float,
        scale_attention: bool,
    ) -> None:
        super().__init__()
        self.bins = (int(bins[0]), int(bins[1]))
        num_bins = self.bins[0] * self.bins[1]
        self.scale = attention_channels**-0.5 if scale_attention else None
        self.cam_dropout = nn.Dropout2d(cam_dropout)
        self.cam_conv = nn.Conv2d(channels, num_classes, 1)
        self.graph = BinGraph(num_bins, channels)
        self.fuse = nn.Conv2d(num_bins, 1, 1)
        self.query = nn.Linear(channels, attention_channels)
        self.key = nn.Linear(channels, attention_channels)
        self.value = nn.Linear(channels, attention_channels)
        self.project = conv_bn_relu(attention_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W)`` → ``(Y (N, C, H, W), bin logits (N, K, b_h, b_w))``; the bin logits
        are pre-sigmoid (the focal loss applies the sigmoid)."""
        n, _, h, w = x.shape
        cam = self.cam_conv(self.cam_dropout(x))
        cam_bins = bin_split(cam, self.bins)  # raises on a non-divisible map first
        bin_logits = F.adaptive_avg_pool2d(cam, self.bins)
        feats = bin_split(x, self.bins)
        scores = bin_logits.sigmoid().flatten(2).transpose(1, 2)  # (N, B, K)
        local = self.graph(local_class_centers(cam_bins, feats, scores))
        global_ = F.relu(self.fuse(local))  # (N, 1, K, C)
        out, _ = class_attention(
            self.query(feats), self.key(local), self.value(global_), scale=self.scale
        )
        return x + self.project(bin_merge(out, self.bins, (h, w))), bin_logits
