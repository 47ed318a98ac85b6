"""The training loop: poly schedule, and resuming after a crash ends where an unbroken run ends."""

from __future__ import annotations

import fractions
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from wsss.training.loop import SeededDataset, train_steps
from wsss.training.optim import build_optimizer, poly_lr, set_poly_lr


class _Points(Dataset):
    def __init__(self, n: int = 12) -> None:
        self.x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.x[i]


def _noisy(sample: np.ndarray, rng: np.random.Generator) -> dict:
    # A random augmentation, so the test also covers the per-sample RNG on resume.
    noise = rng.normal(scale=0.1, size=sample.shape).astype(np.float32)
    return {"x": torch.from_numpy(sample + noise), "y": torch.tensor(float(sample.sum()))}


def _run(tmp_path, *, crash_at: int | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=0.05, weight_decay=1e-4, momentum=0.9
    )
    calls = {"n": 0}

    def loss_fn(net, batch):
        calls["n"] += 1
        if crash_at is not None and calls["n"] > crash_at:
            raise KeyboardInterrupt  # stands in for a kill or a SLURM preemption
        return ((net(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()

    train_steps(
        model=model,
        dataset=SeededDataset(_Points(), _noisy, seed=3),
        loss_fn=loss_fn,
        optimizer=optimizer,
        steps=17,
        batch_size=4,
        seed=3,
        device=torch.device("cpu"),
        poly_power=0.9,
        resume_path=tmp_path / "model.pt.resume",
        fingerprint="f",
        checkpoint_every=5,
        log_every=2,
    )
    return model


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    reference = _run(tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", crash_at=12)  # dies mid-epoch, after the step-10 checkpoint
    assert (tmp_path / "b" / "model.pt.resume").is_file()
    resumed = _run(tmp_path / "b")
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert not (tmp_path / "b" / "model.pt.resume").exists()


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    (tmp_path / "a").mkdir()
    reference = _run(tmp_path / "a")
    torch.save({"fingerprint": "other"}, tmp_path / "model.pt.resume")
    fresh = _run(tmp_path)
    for p, q in zip(reference.parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_poly_schedule_formula_and_group_multipliers():
    w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer(
        [{"name": "backbone", "params": [w1]}, {"name": "head", "params": [w2]}],
        name="sgd",
        lr=0.1,
        weight_decay=0.0,
        lr_mults={"backbone": 1.0, "head": 10.0},
    )
    set_poly_lr(opt, 30, 100, 0.9)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.7**0.9)
    assert opt.param_groups[1]["lr"] == pytest.approx(1.0 * 0.7**0.9)
    assert poly_lr(0.1, 100, 100) == 0.0
    with pytest.raises(ValueError, match="'head'"):
        build_optimizer(
            [{"name": "head", "params": [w2]}],
            name="sgd",
            lr=0.1,
            weight_decay=0.0,
            lr_mults={"backbone": 1.0},
        )


def test_short_schedule_freezes_the_lr_at_its_last_value(tmp_path):
    """CDA's quirk: the poly schedule ends at ``schedule_steps``; later steps keep its last lr."""
    model = torch.nn.Linear(3, 1)
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=0.1, weight_decay=0.0, momentum=0.0
    )
    history = train_steps(
        model=model,
        dataset=SeededDataset(_Points(), _noisy, seed=0),
        loss_fn=lambda net, b: ((net(b["x"]).squeeze(1) - b["y"]) ** 2).mean(),
        optimizer=optimizer,
        steps=8,
        batch_size=4,
        seed=0,
        device=torch.device("cpu"),
        poly_power=0.9,
        resume_path=tmp_path / "r",
        fingerprint="f",
        checkpoint_every=100,
        log_every=1,
        schedule_steps=4,
    )
    lrs = [h["lr"] for h in history]
    want = [0.1 * (1 - min(s, 3) / 4) ** 0.9 for s in range(8)]
    np.testing.assert_allclose(lrs, want)


@pytest.mark.parametrize("damage", ["truncated", "tampered", "incomplete"])
def test_unreadable_resume_checkpoint_is_set_aside_and_training_starts_afresh(
    tmp_path, caplog, damage
):
    reference = _run(tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", crash_at=12)
    resume = tmp_path / "b" / "model.pt.resume"
    if damage == "truncated":
        resume.write_bytes(resume.read_bytes()[:100])
    elif damage == "tampered":  # a pickled object where a tensor belongs: never loaded
        state = torch.load(resume, weights_only=True)
        torch.save({**state, "step": fractions.Fraction(10)}, resume)
    else:
        state = torch.load(resume, weights_only=True)
        torch.save({k: v for k, v in state.items() if k != "optimizer"}, resume)
    damaged = resume.read_bytes()
    with caplog.at_level(logging.INFO, logger="wsss"):
        fresh = _run(tmp_path / "b")
    for p, q in zip(reference.parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # a fresh start, not a resumed one
    aside = tmp_path / "b" / "model.pt.resume.corrupt"
    assert aside.read_bytes() == damaged and not resume.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(resume) in warnings[0], warnings
    assert warnings[0].endswith("set aside as model.pt.resume.corrupt, training starts afresh")
    assert "weights_only" not in warnings[0]
    assert not any("resuming" in r.getMessage() for r in caplog.records)
