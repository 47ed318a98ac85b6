"""Independent references the tests compare the library against: plain loops written from the
definitions, one copy each. Nothing here imports the code under test."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

# spec §5.2, written out independently of wsss.data.cityscapes' table: labelId → trainId
# (every other labelId → 255)
SPEC_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10}
SPEC_TRAIN_IDS |= {24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def naive_confusion(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """Confusion matrix by a pixel loop: rows are ground truth, columns predictions; pixels whose
    ground truth is ``ignore_index`` are skipped, whatever their prediction. int64."""
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist(), strict=True):
        if g != ignore_index:
            conf[g, p] += 1
    return conf


def naive_ious(conf: np.ndarray) -> list[float]:
    """Per-class IoU, TP / (TP + FP + FN), from a confusion matrix; NaN for a class that is
    neither in the ground truth nor predicted."""
    out = []
    for c in range(conf.shape[0]):
        tp = conf[c, c]
        union = conf[c, :].sum() + conf[:, c].sum() - tp
        out.append(tp / union if union else math.nan)
    return out


def naive_miou(conf: np.ndarray) -> float:
    """Mean of :func:`naive_ious` over the classes whose IoU is defined (NaN ones skipped)."""
    vals = [v for v in naive_ious(conf) if not math.isnan(v)]
    return sum(vals) / len(vals)


def naive_cam_label(cams: np.ndarray, keys: Sequence[int], t: float) -> np.ndarray:
    """CAMs to a label map by a pixel loop: the argmax of ``[t, cams...]`` (the first maximum
    wins, so a tie with ``t`` is background and a tie between classes goes to the earlier plane);
    plane i ≥ 1 becomes segmentation id ``keys[i - 1] + 1``, the background 0. int64."""
    _, h, w = cams.shape
    out = np.zeros((h, w), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            scores = [t] + [float(cams[k, y, x]) for k in range(len(keys))]
            best = max(range(len(scores)), key=lambda i: (scores[i], -i))
            out[y, x] = 0 if best == 0 else int(keys[best - 1]) + 1
    return out


def naive_cross_entropy(logits: torch.Tensor, mask: torch.Tensor, ignore_index: int = 255) -> float:
    """Mean of −log softmax(logits)[mask] in float64 over the pixels whose mask is not
    ``ignore_index``; ``logits`` (N, K, H, W), ``mask`` (N, H, W)."""
    logp = logits.double().log_softmax(1)
    n, h, w = mask.shape
    terms = [
        -logp[b, mask[b, y, x], y, x].item()
        for b, y, x in np.ndindex(n, h, w)
        if mask[b, y, x] != ignore_index
    ]
    return sum(terms) / len(terms)


def naive_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes labelIds to trainIds through :data:`SPEC_TRAIN_IDS`, pixel by pixel (int64)."""
    out = np.full(label_ids.shape, 255, dtype=np.int64)
    for y, x in np.ndindex(label_ids.shape):
        out[y, x] = SPEC_TRAIN_IDS.get(int(label_ids[y, x]), 255)
    return out


def naive_bilinear(a: np.ndarray, size: tuple[int, int], *, align_corners: bool) -> np.ndarray:
    """Bilinear resize of ``(..., h, w)`` to ``size``, one output pixel at a time, with
    PyTorch's source-coordinate conventions (``align_corners=False``: half-pixel centres,
    negative coordinates clamped to 0)."""
    h, w = a.shape[-2:]
    oh, ow = size

    def source(i: int, n_in: int, n_out: int) -> tuple[int, int, float]:
        if align_corners:
            x = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            x = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = min(int(np.floor(x)), n_in - 1)
        return lo, min(lo + 1, n_in - 1), x - lo

    out = np.zeros(a.shape[:-2] + (oh, ow))
    for i in range(oh):
        y0, y1, fy = source(i, h, oh)
        for j in range(ow):
            x0, x1, fx = source(j, w, ow)
            top = a[..., y0, x0] * (1 - fx) + a[..., y0, x1] * fx
            bottom = a[..., y1, x0] * (1 - fx) + a[..., y1, x1] * fx
            out[..., i, j] = top * (1 - fy) + bottom * fy
    return out


def naive_release_cams(
    model, image: np.ndarray, scales: Sequence[float], flip: bool, via_input_size: bool
) -> np.ndarray:
    """SEAM's/EPS's released inference re-derived, one pass at a time: PIL bicubic resize of the
    uint8 image to (round(W·s), round(H·s)), normalise (x/255 − mean)/std, the flipped copy as
    a separate pass; each map (upsampled with align_corners=True to the scaled input first for
    SEAM/CPN, whose networks return input-size maps) resized straight to H×W with
    align_corners=False, the flipped one flipped back after the resize; all summed."""
    h, w = image.shape[:2]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # ImageNet
    total = 0.0
    for s in scales:
        size = (round(w * s), round(h * s))
        scaled = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
        chw = ((scaled / 255.0 - mean) / std).transpose(2, 0, 1)
        for flipped in [False, True] if flip else [False]:
            x = chw[:, :, ::-1] if flipped else chw
            with torch.no_grad():
                cam = model.cams(torch.tensor(x.copy(), dtype=torch.float32)[None])[0]
            cam = cam.double().numpy()
            if via_input_size:
                cam = naive_bilinear(cam, x.shape[-2:], align_corners=True)
            cam = naive_bilinear(cam, (h, w), align_corners=False)
            total = total + (cam[:, :, ::-1] if flipped else cam)
    return total
