"""Mixed precision: the ``amp`` setting, autocast, the fp16 gradient scaler, float32 islands.

``amp`` is ``"bf16" | "fp16" | "off"``, or ``"auto"``: bf16 on CUDA (fp16 on GPUs without
bf16), off elsewhere, so CPU runs stay in float32 and keep their exact results. Under autocast
the convolutions and matrix products run in the low precision; the numerically fragile parts
run in float32 through :func:`float32`: softmax (or normalisation) over positions in PCM, PRCM,
PCAA and criss-cross attention, the CAM normalisations, the random-walk matrices, OHEM's
selection and every loss. Artifacts are written from float32 values as before.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch

__all__ = [
    "AMP_MODES",
    "resolve_amp",
    "amp_dtype",
    "autocast",
    "grad_scaler",
    "float32",
    "to_float32",
]

AMP_MODES = ("auto", "bf16", "fp16", "off")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_LOW = (torch.bfloat16, torch.float16)

F = TypeVar("F", bound=Callable)


def resolve_amp(mode: str | bool, device: torch.device) -> str:
    """The precision ``mode`` means on ``device``: ``"bf16"``, ``"fp16"`` or ``"off"``.

    ``"auto"`` is bf16 on a CUDA device that supports it, fp16 on one that does not, and off on
    every other device. Explicit modes are honoured on any device (CPU autocast runs both).
    ``False`` means ``"off"`` (YAML reads a bare ``off`` as false).

    Raises:
        ValueError: for a mode not in :data:`AMP_MODES`.
    """
    if mode is False:
        mode = "off"
    if mode not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    if device.type != "cuda":
        return "off"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def amp_dtype(mode: str) -> torch.dtype | None:
    """The autocast dtype of a resolved mode (None for ``"off"``)."""
    if mode not in ("bf16", "fp16", "off"):
        raise ValueError(f"resolve amp {mode!r} first (bf16 | fp16 | off)")
    return _DTYPES.get(mode)


def autocast(mode: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in the dtype of a resolved ``mode``; a no-op for off."""
    dtype = amp_dtype(mode)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(mode: str, device: torch.device, **kwargs: object) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 only (bf16 has float32's range); a disabled scaler
    passes the loss and the optimizer step through unchanged. ``kwargs`` go to
    ``torch.amp.GradScaler`` (``init_scale``, ``growth_interval``, ...)."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(mode) is torch.float16, **kwargs)


def to_float32(value: object) -> object:
    """``value`` with every bf16/fp16 tensor in it (also inside dicts, lists and tuples) cast to
    float32; other tensors and objects unchanged."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in _LOW else value
    if isinstance(value, Mapping):
        return type(value)({k: to_float32(v) for k, v in value.items()}) if value else value
    if isinstance(value, (list, tuple)):
        items = [to_float32(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _first_device_type(values: object) -> str | None:
    if isinstance(values, torch.Tensor):
        return values.device.type
    if isinstance(values, Mapping):
        values = list(values.values())
    if isinstance(values, (list, tuple)):
        for value in values:
            found = _first_device_type(value)
            if found is not None:
                return found
    return None


def float32(fn: F) -> F:
    """Decorate ``fn`` to run in float32: autocast is switched off on the device of its first
    tensor argument and its bf16/fp16 tensor arguments are cast to float32 first. Outside
    autocast and with float32 inputs it changes nothing."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device_type = _first_device_type([args, kwargs])
        args, kwargs = to_float32(args), to_float32(kwargs)
        if device_type is None or not torch.is_autocast_enabled(device_type):
            return fn(*args, **kwargs)
        with torch.autocast(device_type, enabled=False):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
