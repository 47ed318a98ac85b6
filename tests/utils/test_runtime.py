"""one_line_errors: a rule script's expected failures end as one log line and exit code 1."""

from __future__ import annotations

import logging

import pytest

from wsss.utils.runtime import one_line_errors


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (FileNotFoundError("checkpoint not found: /nowhere/model.pt"), "/nowhere/model.pt"),
        (ValueError("bad value 3 for train.steps"), "bad value 3 for train.steps"),
        (KeyError("split 'tset' not in index.json"), "split 'tset' not in index.json"),
    ],
)
def test_one_line_errors(caplog: pytest.LogCaptureFixture, exc: Exception, text: str) -> None:
    caplog.set_level(logging.DEBUG, logger="wsss")
    with pytest.raises(SystemExit) as info:
        with one_line_errors():
            raise exc
    assert info.value.code == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "\n" not in message
    assert text in message and type(exc).__name__ in message
    assert errors[0].exc_info is None  # the traceback goes to DEBUG only
    assert not message.startswith(f'{type(exc).__name__}: "')  # KeyError not re-quoted


def test_one_line_errors_lets_other_errors_through() -> None:
    with pytest.raises(RuntimeError, match="internal"):
        with one_line_errors():
            raise RuntimeError("internal")
