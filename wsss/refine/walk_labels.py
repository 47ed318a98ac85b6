"""Pseudo masks by random walk: IRN's and PSA's recipes from a trained network to a label map.

* IRN (Ahn, Cho & Kwak, CVPR 2019) ``make_sem_seg_labels``: boundary map of the image and its
  mirror image, CAM seeds on the boundary grid, walk, background plane, argmax (algorithms.md §1.7).
* PSA (Ahn & Kwak, CVPR 2018) ``infer_aff``: features of the image padded to a multiple of 8,
  seeds ``[(1 − max cam)^α; cams]`` 8×8-average-pooled, walk, bilinear upsampling, argmax (§1.6).

``net`` is the trained network (a callable from a ``(N, 3, H, W)`` normalised batch to its
output), ``cams`` the image's full-resolution CAMs ``(K, H, W)`` of the classes ``keys``; the
label maps are in segmentation ids (:func:`wsss.cam.labels.label_ids`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wsss.cam.labels import label_ids
from wsss.data.transforms import normalize_image
from wsss.refine.random_walk import propagate, propagate_features

__all__ = ["irn_walk_label", "psa_walk_label"]

Net = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def irn_walk_label(
    net: Net,
    image: np.ndarray,
    cams: np.ndarray,
    keys: Sequence[int],
    device: torch.device,
    *,
    radius: int,
    beta: float,
    exp_times: int,
    bg_threshold: float,
) -> np.ndarray:
    """IRN's label of ``image`` (uint8 HWC): boundary B = σ(½ logit(x) + ½ flip(logit(flip x)))
    from the network's first channel, seeds = the CAMs area-averaged onto B's grid,
    :func:`~wsss.refine.random_walk.propagate` (×4 bilinear, max-normalised, background plane
    ``bg_threshold``), argmax."""
    height, width = image.shape[:2]
    x = normalize_image(image).to(device)[None]
    logits = net(torch.cat([x, x.flip(-1)]))[:, 0].float()
    boundary = torch.sigmoid(0.5 * logits[0] + 0.5 * logits[1].flip(-1))
    # The stored CAMs are full resolution; IRN walks its stride-4 CAMs: area-downscale them.
    seeds = F.adaptive_avg_pool2d(torch.from_numpy(cams).to(device)[None], boundary.shape)[0]
    scores = propagate(
        seeds,
        boundary,
        radius=radius,
        beta=beta,
        exp_times=exp_times,
        bg_threshold=bg_threshold,
        out_size=(height, width),
    )
    return label_ids(keys)[scores.argmax(0).cpu().numpy()]


@torch.no_grad()
def psa_walk_label(
    net: Net,
    image: np.ndarray,
    cams: np.ndarray,
    keys: Sequence[int],
    device: torch.device,
    *,
    radius: int,
    alpha: float,
    beta: float,
    logt: int,
) -> np.ndarray:
    """PSA's (AffinityNet's) label of ``image`` (uint8 HWC): features of the image padded
    (bottom, right) to a multiple of 8, seeds ``[(1 − max cam)^alpha; cams]`` (all background
    without classes) padded likewise and 8×8-average-pooled,
    :func:`~wsss.refine.random_walk.propagate_features` (``2^logt`` steps), bilinear
    (``align_corners=False``) upsampling, crop, argmax."""
    height, width = image.shape[:2]
    pad_h, pad_w = -height % 8, -width % 8
    x = normalize_image(image).to(device)[None]
    features = net(F.pad(x, (0, pad_w, 0, pad_h)))[0].float()
    maps = torch.from_numpy(cams).to(device)
    if len(maps):
        background = (1 - maps.max(0, keepdim=True).values) ** alpha
    else:  # no present class: everything is background
        background = torch.ones(1, height, width, device=device)
    seeds = F.pad(torch.cat([background, maps]), (0, pad_w, 0, pad_h))
    seeds = F.avg_pool2d(seeds[None], 8)[0]
    walked = propagate_features(seeds, features, radius=radius, beta=beta, logt=logt)
    size = (height + pad_h, width + pad_w)
    up = F.interpolate(walked[None], size=size, mode="bilinear", align_corners=False)[0]
    up = up[:, :height, :width]
    return label_ids(keys)[up.argmax(0).cpu().numpy()]
