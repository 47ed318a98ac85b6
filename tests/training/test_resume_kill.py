"""Kill a training process mid-run (SIGKILL, SIGTERM), rerun it: the final weights equal those
of an uninterrupted run bit for bit."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.conftest import Points, dropout_regressor, noisy, squared_error
from wsss.training.loop import SeededDataset, train_steps

REPO = Path(__file__).resolve().parents[2]
STEPS, CHECKPOINT_EVERY = 30, 4


def train(out_dir: str, pause: float = 0.0) -> torch.nn.Module:
    """A tiny deterministic CPU run with dropout and random augmentation; ``pause`` seconds per
    step give the test time to kill it. Writes ``model.pt`` when it finishes."""
    torch.set_num_threads(1)
    model, optimizer = dropout_regressor()

    def loss_fn(net, batch):
        time.sleep(pause)
        return squared_error(net, batch)

    train_steps(
        model=model,
        dataset=SeededDataset(Points(), noisy, seed=3),
        loss_fn=loss_fn,
        optimizer=optimizer,
        steps=STEPS,
        batch_size=4,
        seed=3,
        device=torch.device("cpu"),
        poly_power=0.9,
        resume_path=Path(out_dir) / "model.pt.resume",
        fingerprint="kill-test",
        checkpoint_every=CHECKPOINT_EVERY,
    )
    torch.save(model.state_dict(), Path(out_dir) / "model.pt")
    return model


_CHILD = (
    "import logging, sys; logging.basicConfig(level=logging.INFO);"
    "from tests.training.test_resume_kill import train; train(sys.argv[1], float(sys.argv[2]))"
)


def _start(out_dir: Path, pause: float) -> subprocess.Popen:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out_dir), str(pause)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, sig):
    (tmp_path / "ref").mkdir()
    logging.getLogger("wsss").setLevel(logging.WARNING)
    reference = train(str(tmp_path / "ref")).state_dict()

    run = tmp_path / "run"
    run.mkdir()
    checkpoint = run / "model.pt.resume"
    proc = _start(run, pause=0.1)
    try:
        while not checkpoint.exists():
            if proc.poll() is not None:
                pytest.fail(f"training ended before its first checkpoint:\n{proc.stdout.read()}")
            time.sleep(0.01)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stdout.close()
    assert proc.returncode == -sig  # it died from the signal, it did not finish
    assert not (run / "model.pt").exists()
    saved_step = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < saved_step < STEPS and saved_step % CHECKPOINT_EVERY == 0

    rerun = _start(run, pause=0.0)
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    resumed = re.search(r"resuming from \S+ at step (\d+)", output)
    assert resumed is not None, output
    assert int(resumed.group(1)) == saved_step  # the rerun continued from the last checkpoint
    assert not checkpoint.exists()  # removed once training finished

    final = torch.load(run / "model.pt", weights_only=True)
    assert final.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(final[name], value), name
