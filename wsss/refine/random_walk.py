"""Random-walk propagation of CAM seeds over pixel affinities (AffinityNet/PSA and IRNet).

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision", CVPR 2018;
Ahn, Cho & Kwak, "Weakly Supervised Learning of Instance Segmentation with Inter-pixel
Relations", CVPR 2019 (algorithms.md §1.6–§1.7).

Pairs layout shared by this module and the affinity losses: for offsets ``D = pair_offsets(r)``
and a map of size (h, w), entry ``[p, y, x]`` of a ``(P, h, w)`` tensor is the pair
((y, x), (y + dy_p, x + dx_p)); pairs whose second pixel falls outside the map are invalid.

Pixels are indexed row-major (``i = y·w + x``). The transition matrix T (n × n, n = h·w) is
A^β (element-wise, A symmetric with a unit diagonal) with every column normalised to sum 1, and a
walk of t steps maps row vectors v ↦ v·T^t, as in both original codebases; they form T densely and
square it ``logt`` / ``exp_times`` times, which costs O(n³) time and several n × n matrices of
memory (≈ 0.55 GB each at VOC size). Here T is a sparse matrix with ``1 + 2·|D|`` entries per
column and the walk is t sparse products, which gives the same result without any dense n × n.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F

from wsss.utils.amp import float32

__all__ = [
    "boundary_affinities",
    "feature_affinities",
    "pair_offsets",
    "pair_validity",
    "path_offsets",
    "propagate",
    "propagate_features",
    "random_walk",
    "transition_matrix",
]


def pair_offsets(radius: int) -> list[tuple[int, int]]:
    """The directions D(r) pairing each pixel with its neighbours closer than ``radius``.

    D(r) = {(0, dx): 1 ≤ dx < r} ∪ {(dy, dx): 1 ≤ dy < r, −r < dx < r, dy² + dx² < r²}: every
    unordered pair of pixels at distance < r appears once (|D(5)| = 34, |D(10)| = 152). Order: the
    row dy = 0 first, then dy = 1, 2, … with dx increasing.

    Raises:
        ValueError: if ``radius`` < 2 (D would be empty).
    """
    if int(radius) != radius or radius < 2:
        raise ValueError(f"radius must be an integer >= 2, got {radius!r}")
    radius = int(radius)
    offsets = [(0, dx) for dx in range(1, radius)]
    for dy in range(1, radius):
        offsets += [(dy, dx) for dx in range(-radius + 1, radius) if dy * dy + dx * dx < radius**2]
    return offsets


def path_offsets(dy: int, dx: int) -> list[tuple[int, int]]:
    """The pixels IRNet checks for a boundary between a pixel and its neighbour at (dy, dx).

    IRNet (Ahn, Cho & Kwak, CVPR 2019, §3.2; ``PathIndex`` in the official code) takes the integer
    points within perpendicular distance < 1 of the segment from (0, 0) to (dy, dx), both ends
    included. Within the segment's bounding box the distance to the segment equals the distance
    to its line, |dy·x − dx·y| / √(dy² + dx²), and outside the box it is ≥ 1, so the test is the
    exact integer comparison (dy·x − dx·y)² < dy² + dx² over the box. Returned row-major.

    Raises:
        ValueError: for the zero offset or non-integers.
    """
    if int(dy) != dy or int(dx) != dx:
        raise ValueError(f"offset must be integers, got ({dy!r}, {dx!r})")
    dy, dx = int(dy), int(dx)
    length_sq = dy * dy + dx * dx
    if length_sq == 0:
        raise ValueError("the offset (0, 0) has no path")
    return [
        (y, x)
        for y in range(min(0, dy), max(0, dy) + 1)
        for x in range(min(0, dx), max(0, dx) + 1)
        if (dy * x - dx * y) ** 2 < length_sq
    ]


@lru_cache(maxsize=32)
def _paths(radius: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    return tuple(tuple(path_offsets(dy, dx)) for dy, dx in pair_offsets(radius))


def _check_offsets(offsets) -> list[tuple[int, int]]:
    out = [(int(dy), int(dx)) for dy, dx in offsets]
    if not out:
        raise ValueError("offsets must not be empty")
    if any(o == (0, 0) for o in out):
        raise ValueError("offsets must not contain (0, 0)")
    return out


def pair_validity(
    height: int, width: int, offsets, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Which pairs of the ``(P, h, w)`` layout lie inside an ``height`` × ``width`` map.

    Entry [p, y, x] is True iff (y + dy_p, x + dx_p) is a pixel of the map (the first pixel
    (y, x) always is). Returns a bool tensor on ``device``.

    Raises:
        ValueError: for a non-positive size or empty offsets / the zero offset.
    """
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"height and width must be positive integers, got {height}, {width}")
    offs = torch.tensor(_check_offsets(offsets), dtype=torch.long, device=device)
    ys = torch.arange(height, device=device)[None, :] + offs[:, :1]  # (P, h)
    xs = torch.arange(width, device=device)[None, :] + offs[:, 1:]  # (P, w)
    valid_y = (ys >= 0) & (ys < height)
    valid_x = (xs >= 0) & (xs < width)
    return valid_y[:, :, None] & valid_x[:, None, :]


def _as_batch(x: torch.Tensor, name: str, plain_dims: int) -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor")
    if x.dim() == plain_dims:
        return x.unsqueeze(0), True
    if x.dim() == plain_dims + 1:
        return x, False
    raise ValueError(
        f"{name} must have {plain_dims} or {plain_dims + 1} dims, got shape {tuple(x.shape)}"
    )


@float32
def boundary_affinities(boundary: torch.Tensor, radius: int) -> torch.Tensor:
    """IRNet's inter-pixel affinities from a boundary map: a_ij = 1 − max_{k ∈ P_ij} B_k.

    Ahn, Cho & Kwak (CVPR 2019), Eq. 2: P_ij are the pixels on the path from i to j
    (:func:`path_offsets`) and B is the boundary probability map. Pixels outside the map count
    as boundary 1, as IRN pads the edge map with 1.0 before the random walk, so a pair whose
    second pixel leaves the map gets affinity 0.

    Differentiable w.r.t. ``boundary`` (shifted views, then ``max`` over each path, which routes
    the gradient to the arg-max pixel like IRN's ``max_pool2d``); autograd keeps only the
    output-sized int64 arg-max indices, not the gathered paths (IRN keeps those): for the IRNet
    training shapes (radius 10, P = 152, 32 × 128 × 128) that is ≈ 0.64 GB besides the 0.32 GB
    float32 output.

    Args:
        boundary: (h, w) or (B, h, w) floating tensor with values in [0, 1].
        radius: the pair radius r of :func:`pair_offsets` (5 for the random walk, 10 in training).

    Returns:
        (P, h, w) or (B, P, h, w) affinities in the pair layout of this module.
    """
    bmap, plain = _as_batch(boundary, "boundary", 2)
    paths = _paths(radius)
    height, width = bmap.shape[-2:]
    ys = [y for path in paths for y, _ in path]
    xs = [x for path in paths for _, x in path]
    top, bottom = max(0, -min(ys)), max(0, max(ys))
    left, right = max(0, -min(xs)), max(0, max(xs))
    padded = F.pad(bmap, (left, right, top, bottom), mode="constant", value=1.0)
    maxima = []
    for path in paths:
        views = [
            padded[:, top + y : top + y + height, left + x : left + x + width] for y, x in path
        ]
        maxima.append(torch.stack(views, dim=1).max(dim=1).values)
    aff = 1.0 - torch.stack(maxima, dim=1)
    return aff[0] if plain else aff


@float32
def feature_affinities(features: torch.Tensor, radius: int) -> torch.Tensor:
    """AffinityNet's affinities a_ij = exp(−mean_c |f_c(i) − f_c(j)|), 0 for invalid pairs.

    Ahn & Kwak (CVPR 2018), Eq. 3 with the mean absolute (L1) feature distance of the official
    PSA code. Differentiable w.r.t. ``features``.

    Args:
        features: (C, h, w) or (B, C, h, w) floating tensor.
        radius: the pair radius r of :func:`pair_offsets` (5 in PSA).

    Returns:
        (P, h, w) or (B, P, h, w) affinities in the pair layout of this module.
    """
    feats, plain = _as_batch(features, "features", 3)
    offsets = pair_offsets(radius)
    batch, _, height, width = feats.shape
    aff = feats.new_zeros(batch, len(offsets), height, width)
    for p, (dy, dx) in enumerate(offsets):
        y0, y1 = max(0, -dy), height - max(0, dy)
        x0, x1 = max(0, -dx), width - max(0, dx)
        if y1 <= y0 or x1 <= x0:
            continue
        first = feats[:, :, y0:y1, x0:x1]
        second = feats[:, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx]
        aff[:, p, y0:y1, x0:x1] = torch.exp(-(first - second).abs().mean(dim=1))
    return aff[0] if plain else aff


@float32
def transition_matrix(affinities: torch.Tensor, offsets, *, beta: float) -> torch.Tensor:
    """The random-walk transition matrix T of AffinityNet / IRNet as a sparse n × n matrix.

    Ahn & Kwak (CVPR 2018), Eq. 4–5, and IRN's ``to_transition_matrix`` (before the squarings):
    A is symmetric — the pair [p, y, x] = (i, j) sets both A_ij and A_ji to a^β — with A_ii = 1,
    and T = A · D⁻¹ with D = diag(column sums of A), so every column of T sums to 1. Invalid
    pairs (second pixel outside the map) are left out and zero weights are not stored.

    Args:
        affinities: (P, h, w) affinities in [0, 1] in the pair layout of ``offsets``.
        offsets: the P (dy, dx) offsets (usually ``pair_offsets(radius)``); each unordered pair
            of pixels must appear at most once, as it does in D(r).
        beta: the exponent β > 0 (8 in PSA, 10 in IRN).

    Returns:
        A coalesced ``torch.sparse_coo`` tensor (n × n, n = h·w, row-major pixel index) of the
        affinities' dtype and device.
    """
    offsets = _check_offsets(offsets)
    if not isinstance(affinities, torch.Tensor) or not affinities.is_floating_point():
        raise ValueError("affinities must be a floating-point tensor")
    if affinities.dim() != 3 or affinities.shape[0] != len(offsets):
        raise ValueError(
            f"affinities must have shape (P={len(offsets)}, h, w), got {tuple(affinities.shape)}"
        )
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    _, height, width = affinities.shape
    device = affinities.device
    valid = pair_validity(height, width, offsets, device=device)
    values = affinities[valid]
    if values.numel() and not bool(((values >= 0) & (values <= 1)).all()):
        raise ValueError("affinities of valid pairs must lie in [0, 1]")
    # Weights, degrees and quotients in float64 (where the device has it), rounded once at the
    # end: with float32 sums each column of T sums to 1 ± ~1e-6, a bias that compounds over the
    # hundreds of steps (≈ 1e-3 after 256 at VOC size); rounding only the entries leaves ≈ 1e-5.
    work_dtype = affinities.dtype if device.type == "mps" else torch.float64
    weights = values.to(work_dtype).pow(beta)
    p, y, x = valid.nonzero(as_tuple=True)
    offs = torch.tensor(offsets, dtype=torch.long, device=device)
    src = y * width + x
    dst = src + offs[p, 0] * width + offs[p, 1]
    keep = weights > 0
    weights, src, dst = weights[keep], src[keep], dst[keep]
    n = height * width
    degree = torch.ones(n, dtype=weights.dtype, device=device)
    degree = degree.index_add(0, src, weights).index_add(0, dst, weights)
    diag = torch.arange(n, device=device)
    rows = torch.cat([src, dst, diag])
    cols = torch.cat([dst, src, diag])
    vals = torch.cat([weights / degree[dst], weights / degree[src], 1.0 / degree])
    vals = vals.to(affinities.dtype)
    indices = torch.stack([rows, cols])
    return torch.sparse_coo_tensor(indices, vals, (n, n), check_invariants=False).coalesce()


def _step_matrix(transition: torch.Tensor, n: int) -> torch.Tensor:
    """Tᵀ as CSR (int32 indices when they fit), so that a walk step on (n, K) columns is Tᵀ·X."""
    if transition.layout == torch.sparse_coo:
        coo = transition
    elif transition.layout in (torch.sparse_csr, torch.sparse_csc):
        coo = transition.to_sparse_coo()
    else:
        raise ValueError(f"transition must be a sparse matrix, got layout {transition.layout}")
    if tuple(coo.shape) != (n, n):
        raise ValueError(f"transition must be {n} x {n} for the seeds, got {tuple(coo.shape)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        csr = coo.t().coalesce().to_sparse_csr()
        crow, col = csr.crow_indices(), csr.col_indices()
        if n < 2**31 - 1 and col.numel() < 2**31 - 1:
            crow, col = crow.to(torch.int32), col.to(torch.int32)
        return torch.sparse_csr_tensor(crow, col, csr.values(), (n, n), check_invariants=False)


@float32
def random_walk(seeds: torch.Tensor, transition: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Propagate seed maps by ``steps`` random-walk steps: row vectors v ↦ v · T^steps.

    Ahn & Kwak (CVPR 2018), Eq. 6, and IRN's ``propagate_to_edge`` (``rw = v @ T^(2^exp_times)``
    with T column-normalised). Both originals form T^steps densely by repeated squaring; here the
    walk is ``steps`` sparse products Tᵀ·X on a (n, K) dense block (CSR, MKL / cuSPARSE), which
    was the fastest of the formulations tried (sparse CSR, sparse COO, a stencil of shifted views
    over the offsets) — about 1–2 ms per step at VOC size on 2 CPU cores. As T is column-stochastic
    and A symmetric, one step replaces each pixel's value by the A-weighted mean over itself and
    its neighbours.

    Args:
        seeds: (K, h, w) floating tensor, one map per class.
        transition: sparse (n × n, n = h·w) matrix T, e.g. from :func:`transition_matrix`; it is
            cast to the seeds' dtype and device.
        steps: number of steps t ≥ 0 (256 = 2⁸ in PSA and IRN).

    Returns:
        (K, h, w) tensor of the seeds' dtype: ``(v · T^steps)`` for each seed map v (flattened
        row-major).
    """
    if not isinstance(seeds, torch.Tensor) or not seeds.is_floating_point() or seeds.dim() != 3:
        raise ValueError("seeds must be a floating-point tensor of shape (K, h, w)")
    if not isinstance(transition, torch.Tensor):
        raise ValueError("transition must be a sparse torch tensor")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    classes, height, width = seeds.shape
    n = height * width
    step = _step_matrix(transition, n)
    walked = seeds.reshape(classes, n).t().contiguous()
    if steps:
        step = step.to(device=seeds.device, dtype=seeds.dtype)
        for _ in range(int(steps)):
            walked = step @ walked
    return walked.t().reshape(classes, height, width).contiguous()


def _check_maps(seeds: torch.Tensor, guide: torch.Tensor, guide_name: str, guide_dims: int):
    if not isinstance(seeds, torch.Tensor) or not seeds.is_floating_point() or seeds.dim() != 3:
        raise ValueError("seeds must be a floating-point tensor of shape (K, h, w)")
    if not isinstance(guide, torch.Tensor) or not guide.is_floating_point():
        raise ValueError(f"{guide_name} must be a floating-point tensor")
    if guide.dim() != guide_dims or guide.shape[-2:] != seeds.shape[-2:]:
        raise ValueError(
            f"{guide_name} must have {guide_dims} dims and the seeds' size "
            f"{tuple(seeds.shape[-2:])}, got shape {tuple(guide.shape)}"
        )


def _check_exponent(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


@float32
def propagate(
    seeds: torch.Tensor,
    boundary: torch.Tensor,
    *,
    radius: int = 5,
    beta: float = 10.0,
    exp_times: int = 8,
    bg_threshold: float = 0.25,
    out_size: tuple[int, int] | None = None,
    stride: int = 4,
) -> torch.Tensor:
    """IRNet's semantic pseudo-label scores: CAM seeds walked over boundary affinities.

    Ahn, Cho & Kwak (CVPR 2019), §4 / IRN ``make_sem_seg_labels`` (algorithms.md §1.7 b):
    x = seeds · (1 − B); rw = x · T^(2^exp_times) with T = :func:`transition_matrix` of
    :func:`boundary_affinities` (B, ``radius``) and ``beta``; if ``out_size`` = (H, W) is given,
    rw is upsampled bilinearly (``align_corners=False``) by ``stride`` and cropped to
    [:H, :W]; rw is divided by its global maximum over all classes and pixels (left as is when
    that maximum is not positive); a constant plane ``bg_threshold`` is prepended. The caller takes
    the argmax over the first axis and maps index 0 to background and k ≥ 1 to the k-th present
    class. Inference only: runs without autograd.

    Args:
        seeds: (K, h, w) strided CAMs of the K classes present in the image (IRN: ``cam``,
            max-normalised per class).
        boundary: (h, w) boundary probabilities in [0, 1] at the same stride.
        radius: pair radius of the walk (5 in IRN).
        beta: affinity exponent β > 0 (10 in IRN).
        exp_times: the walk has 2^exp_times steps (8 → 256 in IRN).
        bg_threshold: value of the background plane (IRN ``sem_seg_bg_thres`` = 0.25).
        out_size: the original image size (H, W), with H ≤ stride·h and W ≤ stride·w; None keeps
            the strided size.
        stride: the seeds' stride w.r.t. the image (4 in IRN); used only with ``out_size``.

    Returns:
        (K + 1, H, W) (or (K + 1, h, w)) scores of the seeds' dtype; plane 0 is the background.
    """
    _check_maps(seeds, boundary, "boundary", 2)
    steps = 2 ** _check_exponent(exp_times, "exp_times")
    height, width = seeds.shape[-2:]
    if out_size is not None:
        if isinstance(stride, bool) or int(stride) != stride or stride < 1:
            raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
        if len(out_size) != 2 or not all(int(s) == s and s >= 1 for s in out_size):
            raise ValueError(f"out_size must be two positive integers, got {out_size!r}")
        if out_size[0] > stride * height or out_size[1] > stride * width:
            raise ValueError(
                f"out_size {tuple(out_size)} exceeds stride·(h, w) = "
                f"{(stride * height, stride * width)}"
            )
    with torch.no_grad():
        boundary = boundary.to(seeds.dtype)
        transition = transition_matrix(
            boundary_affinities(boundary, radius), pair_offsets(radius), beta=beta
        )
        walked = random_walk(seeds * (1.0 - boundary), transition, steps=steps)
        if out_size is not None:
            up = F.interpolate(
                walked[None], scale_factor=int(stride), mode="bilinear", align_corners=False
            )
            walked = up[0, :, : int(out_size[0]), : int(out_size[1])]
        if walked.numel():
            peak = walked.max()
            if peak > 0:
                walked = walked / peak
        background = walked.new_full((1, *walked.shape[-2:]), float(bg_threshold))
        return torch.cat([background, walked], dim=0)


@float32
def propagate_features(
    seeds: torch.Tensor,
    features: torch.Tensor,
    *,
    radius: int = 5,
    beta: float = 8.0,
    logt: int = 8,
) -> torch.Tensor:
    """AffinityNet's (PSA's) random walk: seeds walked over feature affinities.

    Ahn & Kwak (CVPR 2018), §3.3 / PSA ``infer_aff.py`` (algorithms.md §1.7 a):
    T = :func:`transition_matrix` of :func:`feature_affinities` (``features``, ``radius``) with
    exponent ``beta``, and the result is v · T^(2^logt) for each seed map v. The caller builds
    the seeds — the normalised CAMs of the present classes plus the background plane
    (1 − max_c CAM_c)^α, all average-pooled to the feature stride — then upsamples the result and
    takes the argmax. Inference only: runs without autograd.

    PSA enumerated only pairs whose "from" pixel lies in the interior window
    [0, h − r + 1) × [r − 1, w − r + 1), so pairs starting near the left, right and bottom borders
    are missing from its matrix; here every pair inside the map is used, as in IRN's padded
    formulation, so results differ slightly near the borders.

    Args:
        seeds: (K, h, w) seed maps at the feature stride.
        features: (C, h, w) AffinityNet features.
        radius: pair radius (5 in PSA).
        beta: affinity exponent β > 0 (8 in PSA and SEAM).
        logt: the walk has 2^logt steps (8 in PSA, 6 in SEAM).

    Returns:
        (K, h, w) walked scores of the seeds' dtype.
    """
    _check_maps(seeds, features, "features", 3)
    steps = 2 ** _check_exponent(logt, "logt")
    with torch.no_grad():
        features = features.to(seeds.dtype)
        transition = transition_matrix(
            feature_affinities(features, radius), pair_offsets(radius), beta=beta
        )
        return random_walk(seeds, transition, steps=steps)
