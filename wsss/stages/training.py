"""What the model stages share: training from config into a checkpoint, and rebuilding from it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset

import wsss
from wsss.data.transforms import TrainTransform
from wsss.io import atomic_path, load_checkpoint, save_checkpoint
from wsss.settings import TrainSettings
from wsss.training.distributed import is_main_process
from wsss.training.loop import SeededDataset, train_steps
from wsss.training.optim import build_optimizer

__all__ = ["train_and_save", "load_model"]


def train_and_save(
    net: torch.nn.Module,
    base: Dataset,
    loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
    *,
    model_name: str,
    classes: Sequence[str],
    train: TrainSettings | Mapping,
    seed: int,
    device: torch.device,
    fingerprint: str,
    out_model: str | os.PathLike,
    out_log: str | os.PathLike,
    transform: Callable | None = None,
    batch_size: int | None = None,
    steps: int | None = None,
    schedule_steps: int | None = None,
    saved: torch.nn.Module | None = None,
    amp: str = "off",
    out_tensorboard: str | os.PathLike | None = None,
) -> None:
    """Train ``net`` on augmented samples of ``base`` as ``train`` says; write model and loss log.

    ``amp`` is the mixed-precision mode (:func:`wsss.utils.amp.resolve_amp`); the run's
    TensorBoard event file goes to ``out_tensorboard`` (:class:`~wsss.training.monitor.
    TrainingMonitor`) while it trains.

    ``transform(sample, rng)`` makes the training tensors (default: ``TrainTransform`` of
    ``train``'s crop, scale and jitter settings). ``batch_size``, ``steps`` and
    ``schedule_steps`` override ``train``'s (CDA's pairs, :func:`train_steps`); ``saved`` is the
    module written to the checkpoint when ``net`` wraps it (SMAF's :class:`SelfTrainer`).

    ``train``: :class:`~wsss.settings.TrainSettings` (or the mapping they are built
    from). Training runs with ``train.threads`` torch intra-op threads, whatever the process's
    own setting, and restores it after: the weights depend on the thread count.

    The checkpoint is a plain dict (``model_name``, ``build_kwargs``, ``state_dict``,
    ``classes``, ``wsss_version``) from which :func:`load_model` rebuilds the
    network; the rolling resume checkpoint lives beside it as ``<out_model>.resume``.

    Under a process group (:func:`wsss.training.launch.launch`) every rank trains and
    only rank 0 writes; ``train.sync_bn`` (set by the launcher from the config's
    ``distributed.sync_bn``) converts BatchNorm to SyncBatchNorm.
    """
    train = TrainSettings.parse(train)
    optimizer = build_optimizer(
        net.param_groups(),
        name=train.optimizer,
        lr=train.lr,
        weight_decay=train.weight_decay,
        momentum=train.momentum,
        lr_mults=train.lr_mults,
    )
    # the config's thread count, not the job's cores: the weights depend on it
    with torch_threads(train.threads):
        history = train_steps(
            model=net,
            dataset=SeededDataset(base, transform or TrainTransform.from_mapping(train), seed),
            loss_fn=loss_fn,
            optimizer=optimizer,
            steps=steps or train.steps,
            batch_size=batch_size or train.batch_size,
            schedule_steps=schedule_steps,
            seed=seed,
            device=device,
            poly_power=train.poly_power,
            resume_path=f"{out_model}.resume",
            fingerprint=fingerprint,
            checkpoint_every=train.checkpoint_every,
            num_workers=train.num_workers,
            sync_bn=bool(train.sync_bn),
            amp=amp,
            tensorboard_dir=out_tensorboard,
        )
    if not is_main_process():
        return
    with atomic_path(out_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    saved = net if saved is None else saved
    weights = saved.state_dict()
    for key, value in list(weights.items()):  # channels-last (CUDA) weights: the usual layout
        if not value.is_contiguous():
            weights[key] = value.contiguous()
    state = {
        "model_name": model_name,
        "build_kwargs": saved.build_kwargs,
        "state_dict": weights,
        "classes": list(classes),
        "wsss_version": wsss.__version__,
    }
    save_checkpoint(out_model, state)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (None: as set), then restore.

    CPU kernels split their reductions by thread, so the thread count changes the weights'
    last bits; fixed by the config, it keeps a training stage's result independent of the
    cores a job happens to get."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_model(path: str | os.PathLike, build, device: torch.device) -> torch.nn.Module:
    """Rebuild a model from a checkpoint's stored build kwargs and load its weights strictly;
    in eval mode on ``device`` (channels-last on CUDA, where cuDNN's kernels prefer it)."""
    ckpt = load_checkpoint(path)
    model = build(ckpt["model_name"], **ckpt["build_kwargs"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model = model.to(device).eval()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model
