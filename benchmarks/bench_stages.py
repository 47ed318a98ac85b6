"""Training and inference images/s of the VOC recipes' networks, float32 vs autocast.

Builds each network of config.yaml's ``voc`` block with the project's own builders (the kwargs
the stages pass, random weights, no downloads): the IRN ResNet-50 CAM classifier (512² crops),
the ResNet-38 SEAM / CPN / EPS classifiers (448²) and the DeepLab / CCNet / PCAA segmentation
networks (512², the issue's reference size). For each it times

* ``train``: forward under :func:`wsss.utils.amp.autocast`, a float32 surrogate loss (the mean
  square of every output; the stages' losses also run in float32), backward through the
  fp16-only gradient scaler, one SGD step;
* ``infer``: an eval-mode forward under ``torch.no_grad``,

in float32 and in each autocast dtype (bf16 on CPU; bf16 and fp16 on CUDA), and prints images/s,
the ratio to float32 from the same run, and the max abs difference of the eval-mode output from
float32's (same weights, same input). On CUDA the model and input are channels-last, as in the
stages. Times are medians over ``--iters`` timed iterations after ``--warmup``.

On a CPU the full crops take minutes per network, so ``--device cpu`` defaults to
``--crop-scale 0.25`` (128² / 112²); the crop actually used is printed in every row.

    .venv/bin/python benchmarks/bench_stages.py                   # CPU, quarter-size crops
    .venv/bin/python benchmarks/bench_stages.py --device cuda     # GPU, VOC crops
    .venv/bin/python benchmarks/bench_stages.py --networks deeplab ccnet --modes train
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch import nn

from wsss.models import build_cam_model, build_seg_model
from wsss.utils.amp import autocast, grad_scaler

REPO = Path(__file__).resolve().parents[1]
NUM_FG_CLASSES = 20  # PASCAL VOC
# network → (kind, crop side of the VOC recipe)
NETWORKS: dict[str, tuple[str, int]] = {
    "cam": ("cam", 512),
    "seam": ("cam", 448),
    "cpn": ("cam", 448),
    "eps": ("cam", 448),
    "deeplab": ("seg", 512),
    "ccnet": ("seg", 512),
    "pcaa": ("seg", 512),
}


def voc_model_kwargs(voc: dict, network: str) -> dict:
    """The constructor kwargs the stages derive from the ``voc`` config for ``network``."""
    kind, _ = NETWORKS[network]
    if kind == "seg":
        model = voc["seg"]["models"][network]
        return {"num_classes": NUM_FG_CLASSES + 1, **model["net"]}
    model = voc["cam"]["model"] if network == "cam" else voc["cam_methods"][network]["model"]
    kwargs = dict(model["net"])
    kwargs["backbone"] = dict(kwargs["backbone"])
    if network in ("seam", "cpn"):
        kwargs["prcm"] = network == "cpn"
    return {"num_fg_classes": NUM_FG_CLASSES, **kwargs}


def build_network(network: str, kwargs: dict) -> nn.Module:
    kind, _ = NETWORKS[network]
    build = build_seg_model if kind == "seg" else build_cam_model
    return build(network, **kwargs)


def _tensors(out: object) -> list[torch.Tensor]:
    """Every floating tensor in a model's output (tensor, tuple/list or dict), in order."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    return []


def _surrogate_loss(out: object) -> torch.Tensor:
    return sum(t.float().square().mean() for t in _tensors(out))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(step: Callable[[], object], warmup: int, iters: int, device) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    network: str,
    kwargs: dict,
    *,
    crop: int,
    batch: int,
    amp_modes: list[str],
    device: torch.device,
    modes: tuple[str, ...] = ("train", "infer"),
    warmup: int = 1,
    iters: int = 2,
    seed: int = 0,
) -> list[dict]:
    """Time ``network`` (built from ``kwargs``) at ``batch``×3×``crop``² for each amp mode
    (``"off"`` is the float32 reference and always runs first).

    Returns one row per (mode, amp): ``network``, ``mode``, ``amp``, ``crop``, ``batch``,
    ``images_per_s``, ``ratio`` (to float32's images/s of the same mode) and ``max_abs_diff``
    (of the eval-mode outputs from float32's; ``None`` for train rows), and for infer rows
    ``max_abs_ref``, the largest |float32 output| (random weights give large logits).
    """
    amps = ["off"] + [a for a in amp_modes if a != "off"]
    torch.manual_seed(seed)
    net = build_network(network, kwargs).to(device)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(batch, 3, crop, crop, device=device)
    if device.type == "cuda":  # as the stages run the CNNs on CUDA
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    rows, reference, fp32_speed = [], None, {}
    for amp in amps:
        if "infer" in modes:
            net.load_state_dict(initial)
            net.eval()

            def infer(amp: str = amp) -> object:  # bound now (ruff B023), called this pass
                with torch.no_grad(), autocast(amp, device):
                    return net(x)

            seconds = _median_seconds(infer, warmup, iters, device)
            outputs = [t.float() for t in _tensors(infer())]
            if reference is None:
                reference = outputs
            diff = max((o - r).abs().max().item() for o, r in zip(outputs, reference, strict=True))
            scale = max(r.abs().max().item() for r in reference)  # relative: random weights
            rows.append(_row(network, "infer", amp, crop, batch, seconds, diff, fp32_speed))
            rows[-1]["max_abs_ref"] = scale
        if "train" in modes:
            net.load_state_dict(initial)
            net.train()
            optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-6)
            scaler = grad_scaler(amp, device)

            def train(optimizer=optimizer, scaler=scaler, amp: str = amp) -> None:
                optimizer.zero_grad(set_to_none=True)
                with autocast(amp, device):
                    out = net(x)
                scaler.scale(_surrogate_loss(out)).backward()
                scaler.step(optimizer)
                scaler.update()

            seconds = _median_seconds(train, warmup, iters, device)
            rows.append(_row(network, "train", amp, crop, batch, seconds, None, fp32_speed))
    return rows


def _row(network, mode, amp, crop, batch, seconds, diff, fp32_speed) -> dict:
    speed = batch / seconds
    fp32_speed.setdefault(mode, speed)  # "off" runs first
    return {
        "network": network,
        "mode": mode,
        "amp": amp,
        "crop": crop,
        "batch": batch,
        "images_per_s": speed,
        "ratio": speed / fp32_speed[mode],
        "max_abs_diff": diff,
    }


def format_row(row: dict) -> str:
    diff = rel = ""
    if row["max_abs_diff"] is not None:
        diff = f"{row['max_abs_diff']:.3g}"
        rel = f"{row['max_abs_diff'] / max(row['max_abs_ref'], 1e-30):.2g}"
    amp = "fp32" if row["amp"] == "off" else row["amp"]
    size = f"{row['batch']}x{row['crop']}²"
    return (
        f"{row['network']:<8} {row['mode']:<5} {amp:<5} {size:>9} "
        f"{row['images_per_s']:>9.2f} {row['ratio']:>6.2f}× {diff:>10} {rel:>8}"
    ).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument(
        "--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"]
    )
    parser.add_argument(
        "--amp", nargs="+", choices=["bf16", "fp16"],
        help="autocast dtypes (default: bf16 on CPU, bf16 fp16 on CUDA)",
    )  # fmt: skip
    parser.add_argument(
        "--crop-scale", type=float,
        help="crop = round(VOC crop × scale) (default: 0.25 on CPU, 1 on CUDA)",
    )  # fmt: skip
    parser.add_argument("--crop", type=int, help="one crop side for every network (overrides)")
    parser.add_argument(
        "--batch", type=int,
        help="images per step (default: 2 on CPU, 8 on CUDA; ≥ 2: BatchNorm in training)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, help="timed iterations (default: 2 CPU, 10 CUDA)")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    device = torch.device(args.device)
    amp_modes = args.amp or (["bf16", "fp16"] if cuda else ["bf16"])
    scale = args.crop_scale if args.crop_scale is not None else (1.0 if cuda else 0.25)
    batch = args.batch or (8 if cuda else 2)
    iters = args.iters or (10 if cuda else 2)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed-size crops, as in the training stages
    voc = yaml.safe_load(args.config.read_text())["datasets"]["voc"]
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {name}; torch {torch.__version__}; warm-up {args.warmup}, median of {iters}")
    print(f"# crops: VOC crop × {scale:g}" if args.crop is None else f"# crops: {args.crop}")
    print(f"{'network':<8} {'mode':<5} {'amp':<5} {'batch×crop':>9} {'images/s':>9} "
          f"{'ratio':>7} {'max|Δ|':>10} {'/max|y|':>8}")  # fmt: skip
    for network in args.networks:
        crop = args.crop or max(32, round(NETWORKS[network][1] * scale))
        rows = measure(
            network, voc_model_kwargs(voc, network), crop=crop, batch=batch,
            amp_modes=amp_modes, device=device, modes=tuple(args.modes),
            warmup=args.warmup, iters=iters,
        )  # fmt: skip
        for row in sorted(rows, key=lambda r: (r["mode"] != "train", r["amp"] != "off")):
            print(format_row(row), flush=True)
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
