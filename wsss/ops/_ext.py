"""Optional loading of the ``wsss_cca`` CUDA extension (built from ``cuda_ext/``).

The import is attempted once, on first use, never at ``import wsss``; a failure is remembered so
that asking for the CUDA path later can say why it is unavailable and how to build it.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType

__all__ = ["BUILD_HINT", "has_cuda_ext", "require_cuda_ext"]

log = logging.getLogger(__name__)

BUILD_HINT = (
    "build it with `make cuda-ext` (or `pip install --no-build-isolation ./cuda_ext`) in an "
    "environment with nvcc and a CUDA build of torch"
)


@functools.cache
def _load() -> tuple[ModuleType | None, str]:
    try:
        import wsss_cca
    except (ImportError, OSError) as error:  # absent, or built against another torch/CUDA
        log.debug("wsss_cca not available: %s", error)
        return None, f"{type(error).__name__}: {error}"
    return wsss_cca, ""


def has_cuda_ext() -> bool:
    """True when the ``wsss_cca`` extension imports (its ops are then registered)."""
    return _load()[0] is not None


def require_cuda_ext() -> ModuleType:
    """The ``wsss_cca`` module, or a ``RuntimeError`` with the import error and the build hint."""
    module, reason = _load()
    if module is None:
        raise RuntimeError(
            f"criss-cross attention impl='cuda' needs the wsss_cca extension, which did not "
            f"import ({reason}); {BUILD_HINT}"
        )
    return module
