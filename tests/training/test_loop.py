"""The training loop: poly schedule, and resuming after a crash ends where an unbroken run ends."""

from __future__ import annotations

import fractions
import logging

import numpy as np
import pytest
import torch

from tests.training.conftest import Points, dropout_regressor, noisy, squared_error
from wsss.training.loop import SeededDataset, train_steps
from wsss.training.optim import build_optimizer, poly_lr, set_poly_lr


def _run(tmp_path, *, crash_at: int | None = None) -> torch.nn.Module:
    model, optimizer = dropout_regressor()
    calls = {"n": 0}

    def loss_fn(net, batch):
        calls["n"] += 1
        if crash_at is not None and calls["n"] > crash_at:
            raise KeyboardInterrupt  # stands in for a kill or a SLURM preemption
        return squared_error(net, batch)

    train_steps(
        model=model,
        dataset=SeededDataset(Points(), noisy, seed=3),
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


def _sgd_run(tmp_path, model, loss_fn, *, steps: int, log_every: int, **extra) -> list[dict]:
    """``steps`` plain SGD steps (lr 0.1, no momentum or decay) of ``model`` on the points;
    returns the loop's history."""
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=0.1, weight_decay=0.0, momentum=0.0
    )
    return train_steps(
        model=model,
        dataset=SeededDataset(Points(), noisy, seed=0),
        loss_fn=loss_fn,
        optimizer=optimizer,
        steps=steps,
        batch_size=4,
        seed=0,
        device=torch.device("cpu"),
        poly_power=0.9,
        resume_path=tmp_path / "r",
        fingerprint="f",
        checkpoint_every=100,
        log_every=log_every,
        **extra,
    )


def test_short_schedule_freezes_the_lr_at_its_last_value(tmp_path):
    """CDA's quirk: the poly schedule ends at ``schedule_steps``; later steps keep its last lr."""
    history = _sgd_run(
        tmp_path, torch.nn.Linear(3, 1), squared_error, steps=8, log_every=1, schedule_steps=4
    )
    lrs = [h["lr"] for h in history]
    want = [0.1 * (1 - min(s, 3) / 4) ** 0.9 for s in range(8)]
    np.testing.assert_allclose(lrs, want)


def _fp16_run(tmp_path, *, crash_at: int | None = None):
    """A run whose scaled fp16 gradients overflow at first: the gradient scaler skips steps and
    halves its scale until they fit, so its state decides which steps count."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 1))
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=1e-4, weight_decay=0.0, momentum=0.9
    )
    scaler = torch.amp.GradScaler("cpu", growth_interval=3)
    calls = {"n": 0}

    def loss_fn(net, batch):
        calls["n"] += 1
        if crash_at is not None and calls["n"] > crash_at:
            raise KeyboardInterrupt
        out = net(batch["x"]).squeeze(1)
        assert out.dtype == torch.float16  # autocast ran
        return 1000 * ((out.float() - batch["y"]) ** 2).mean()

    train_steps(
        model=model,
        dataset=SeededDataset(Points(), noisy, seed=3),
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
        amp="fp16",
        scaler=scaler,
    )
    return model, scaler


def test_fp16_resume_restores_the_gradient_scaler(tmp_path):
    reference, ref_scaler = _fp16_run(tmp_path / "a")
    assert ref_scaler.get_scale() < 2.0**16  # overflows happened: the scale came down
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _fp16_run(tmp_path / "b", crash_at=12)
    state = torch.load(tmp_path / "b" / "model.pt.resume", weights_only=True)
    assert state["scaler"]["scale"] < 2.0**16
    resumed, scaler = _fp16_run(tmp_path / "b")
    assert scaler.get_scale() == ref_scaler.get_scale()
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def _terms_loss(net, batch):
    err = (net(batch["x"]).squeeze(1).float() - batch["y"]) ** 2
    return {"loss": err.mean() + 0.5 * err.max(), "mse": err.mean(), "worst": err.max()}


def _linear_run(tmp_path, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 1))
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=0.01, weight_decay=0.0, momentum=0.9
    )
    history = train_steps(
        model=model,
        dataset=SeededDataset(Points(), noisy, seed=1),
        loss_fn=_terms_loss,
        optimizer=optimizer,
        steps=8,
        batch_size=4,
        seed=1,
        device=torch.device("cpu"),
        poly_power=0.9,
        resume_path=tmp_path / "r",
        fingerprint="f",
        checkpoint_every=100,
        log_every=2,
        **kwargs,
    )
    return model, history


def test_bf16_training_follows_float32_training(tmp_path):
    """bf16 autocast on the CPU: the loss curve stays within 2 % of the float32 one."""
    _, fp32 = _linear_run(tmp_path / "a")
    _, bf16 = _linear_run(tmp_path / "b", amp="bf16")
    ref, got = np.array([h["loss"] for h in fp32]), np.array([h["loss"] for h in bf16])
    assert not np.array_equal(ref, got)  # it did run in bf16
    np.testing.assert_allclose(got, ref, rtol=0.02)


def test_loader_workers_change_nothing(tmp_path):
    """Two worker processes over the whole run (epochs 0–2 in one loader) give the weights of the
    in-process loader: each sample is a function of (seed, epoch, index)."""
    plain, _ = _linear_run(tmp_path / "a")
    workers, _ = _linear_run(tmp_path / "b", num_workers=2)
    for p, q in zip(plain.parameters(), workers.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_loss_terms_reach_the_tensorboard_file(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, history = _linear_run(tmp_path, tensorboard_dir=tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/mse", "loss/worst", "lr", "perf/images_per_s"} <= tags
    assert {"perf/data_wait_share", "run/images_per_s", "run/data_wait_share"} <= tags
    logged = [(e.step, e.value) for e in events.Scalars("loss/total")]
    assert logged == [(h["step"], pytest.approx(h["loss"])) for h in history]
    assert [e.step for e in events.Scalars("loss/mse")] == [2, 4, 6, 8]


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


def _softmax_mse_run(tmp_path, caplog, bias: float) -> list[str]:
    """Two-way softmax with a squared-error loss (SMAF's L_mac in miniature), its logits
    ``bias`` apart from the start, trained toward the other class; returns the warnings."""
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias.copy_(torch.tensor([bias, 0.0]))

    def loss_fn(net, batch):
        p = torch.softmax(net(batch["x"]), dim=1)
        return ((p - torch.tensor([0.0, 1.0])) ** 2).mean()

    with caplog.at_level(logging.WARNING, logger="wsss.training.loop"):
        _sgd_run(tmp_path, model, loss_fn, steps=6, log_every=2)
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("bias", [300.0, 40.0])
def test_a_saturated_model_is_reported_once(tmp_path, caplog, bias):
    """Logits 300 apart: float32 softmax gives exactly 1 and 0 and the squared error's gradient
    (∝ p(1 − p)) is exactly zero; 40 apart it is ~e⁻⁴⁰ ≈ 4e-18: no step can move the model
    either way, and one warning says so."""
    warnings = _softmax_mse_run(tmp_path, caplog, bias=bias)
    assert len(warnings) == 1 and warnings[0].startswith("step 2: "), warnings
    assert "saturated" in warnings[0]


def test_a_model_that_learns_is_not_reported(tmp_path, caplog):
    assert _softmax_mse_run(tmp_path, caplog, bias=0.0) == []
