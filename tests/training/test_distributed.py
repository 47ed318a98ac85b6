"""Two gloo processes on CPU train what one process trains: same seed, same global batch."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from wsss.training import distributed as ddp
from wsss.training import launch as launch_module
from wsss.training.launch import launch, run_stage
from wsss.training.loop import SeededDataset, train_steps
from wsss.training.optim import build_optimizer

REPO = Path(__file__).resolve().parents[2]


class _Points(Dataset):
    def __init__(self, n: int = 24) -> None:
        self.x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.x[i], i


def _noisy(sample: tuple[np.ndarray, int], rng: np.random.Generator) -> dict:
    x, i = sample
    noise = rng.normal(scale=0.1, size=x.shape).astype(np.float32)
    return {"x": torch.from_numpy(x + noise), "y": torch.tensor(float(x.sum())), "index": i}


def train_tiny(
    out_dir: str, *, steps: int, batch_size: int, seed: int, device, crash_after: int = 0
) -> None:
    """A tiny regression (no BN, no dropout) trained by ``train_steps``; rank 0 saves the
    weights and the loss log, every rank the sample indices it saw at each step.
    ``crash_after`` > 0 interrupts the run after that many steps (a kill)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=0.05, weight_decay=1e-4, momentum=0.9
    )
    seen = []

    def loss_fn(net, batch):
        if crash_after and len(seen) == crash_after:
            raise KeyboardInterrupt
        seen.append(batch["index"].tolist())
        return ((net(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()

    out = Path(out_dir)
    history = train_steps(
        model=model,
        dataset=SeededDataset(_Points(), _noisy, seed=seed),
        loss_fn=loss_fn,
        optimizer=optimizer,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        device=device,
        poly_power=0.9,
        resume_path=out / "model.pt.resume",
        fingerprint="tiny",
        checkpoint_every=4,
        log_every=1,
    )
    (out / f"seen_{ddp.rank()}.json").write_text(json.dumps(seen))
    if ddp.is_main_process():
        (out / "info.json").write_text(json.dumps({"world": ddp.world_size(), "loss": history}))
        torch.save(model.state_dict(), out / "model.pt")


@pytest.fixture
def gloo(monkeypatch):
    """Skip unless gloo can form a group over localhost TCP; let workers import this module."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed has no gloo backend")
    try:
        store = dist.TCPStore("localhost", 0, 1, True, timeout=datetime.timedelta(seconds=10))
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        dist.destroy_process_group()
    except Exception as error:  # noqa: BLE001 - any failure means "no gloo here"
        pytest.skip(f"gloo cannot initialise: {error}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(REPO)


def test_two_gloo_processes_match_one_process(tmp_path, gloo):
    steps, batch_size, seed = 10, 8, 5
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    train_tiny(
        tmp_path / "one", steps=steps, batch_size=batch_size, seed=seed, device=torch.device("cpu")
    )
    launch(
        train_tiny,
        (str(tmp_path / "two"),),
        {"steps": steps, "batch_size": batch_size, "seed": seed},
        nprocs=2,
        device=torch.device("cpu"),
        threads=2,
    )
    info = json.loads((tmp_path / "two" / "info.json").read_text())
    assert info["world"] == 2
    # together the ranks saw exactly each one-process batch, in disjoint halves
    single = json.loads((tmp_path / "one" / "seen_0.json").read_text())
    halves = [json.loads((tmp_path / "two" / f"seen_{r}.json").read_text()) for r in (0, 1)]
    assert len(single) == len(halves[0]) == len(halves[1]) == steps
    for whole, a, b in zip(single, *halves, strict=True):
        assert len(a) == len(b) == batch_size // 2
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(whole)
    one = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "model.pt", weights_only=True)
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-5)
    # the logged loss is the global-batch mean: the one-process loss of the same step
    one_loss = json.loads((tmp_path / "one" / "info.json").read_text())["loss"]
    np.testing.assert_allclose(
        [h["loss"] for h in info["loss"]], [h["loss"] for h in one_loss], rtol=1e-5
    )
    assert not (tmp_path / "two" / "model.pt.resume").exists()  # rank 0 cleaned up


def test_batch_not_divisible_by_world_size_names_batch_size():
    with pytest.raises(ValueError, match="batch_size=6"):
        ddp.check_divisible(6, 4)
    with pytest.raises(ValueError, match="batch_size=5"):
        ddp.rank_share([0, 1, 2, 3, 4], 2, 0)


def test_rank_shares_partition_the_batch_in_order():
    batch = [9, 4, 7, 1, 0, 3]
    shares = [ddp.rank_share(batch, 3, r) for r in range(3)]
    assert shares == [[9, 4], [7, 1], [0, 3]]


def test_one_gpu_or_none_runs_the_stage_in_this_process():
    calls = []
    world = {"sync_bn": True, "threads": 2, "log_path": None}
    for gpus in (None, 0, 1):
        run_stage(lambda *a, **k: calls.append((a, k)), 1, device="cpu", gpus=gpus, **world,
                  train={"x": 1})  # fmt: skip
    # unchanged arguments: no sync_bn key added for a single process
    assert calls == [((1,), {"device": "cpu", "train": {"x": 1}})] * 3


def test_several_gpus_launch_one_process_each_with_the_world_settings(monkeypatch):
    launched = []
    monkeypatch.setattr(launch_module, "launch", lambda *a, **k: launched.append((a, k)))
    cpu = torch.device("cpu")
    run_stage(print, "a", device=cpu, gpus=2, sync_bn=True, threads=4, log_path="x.log",
              train={"x": 1}, seed=3)  # fmt: skip
    assert launched == [
        (
            (print, ("a",), {"train": {"x": 1, "sync_bn": True}, "seed": 3}),
            {"nprocs": 2, "device": cpu, "log_path": "x.log", "threads": 4, "seed": 3},
        )
    ]


def test_two_processes_resume_a_one_process_checkpoint(tmp_path, gloo):
    """Every rank loads the rolling checkpoint (written here by one process at step 4) and the
    world ends where the uninterrupted one-process run ends."""
    cpu, kw = torch.device("cpu"), {"steps": 10, "batch_size": 8, "seed": 2}
    for name in ("one", "crashed"):
        (tmp_path / name).mkdir()
    train_tiny(tmp_path / "one", device=cpu, **kw)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(tmp_path / "crashed", device=cpu, crash_after=6, **kw)
    assert torch.load(tmp_path / "crashed" / "model.pt.resume", weights_only=True)["step"] == 4
    launch(train_tiny, (str(tmp_path / "crashed"),), kw, nprocs=2, device=cpu, threads=2)
    for r in (0, 1):  # both ranks trained only the 6 steps after the checkpoint
        assert len(json.loads((tmp_path / "crashed" / f"seen_{r}.json").read_text())) == 6
    one = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    resumed = torch.load(tmp_path / "crashed" / "model.pt", weights_only=True)
    for name in one:
        torch.testing.assert_close(resumed[name], one[name], rtol=0, atol=1e-5)
