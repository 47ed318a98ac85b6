"""Build the optional wsss_cca CUDA extension: `make cuda-ext` from the repository root.

Needs nvcc (CUDA_HOME) and a CUDA build of torch; install without build isolation so it compiles
against the torch in the environment:  pip install --no-build-isolation ./cuda_ext
Without a visible GPU set FORCE_CUDA=1 (and TORCH_CUDA_ARCH_LIST, e.g. "9.0") to compile anyway.
"""

import os
import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension


def _check_toolchain() -> None:
    if CUDA_HOME is None:
        sys.exit("wsss_cca: nvcc not found; set CUDA_HOME to a CUDA toolkit")
    if torch.version.cuda is None:
        sys.exit(f"wsss_cca: torch {torch.__version__} is a CPU-only build; install a CUDA build")
    if not torch.cuda.is_available() and os.environ.get("FORCE_CUDA") != "1":
        sys.exit("wsss_cca: no CUDA device visible; set FORCE_CUDA=1 to compile anyway")


def _wheel_cuda_includes() -> list[str]:
    """Headers of the CUDA libraries shipped in torch's pip dependencies (nvidia-* wheels).

    torch's CUDA headers include cusparse.h and cublas_v2.h, which a toolkit installed without
    those libraries (e.g. nvcc alone) lacks; the wheels that torch runs with carry them.
    """
    if (Path(CUDA_HOME) / "include" / "cusparse.h").is_file():
        return []
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(str(p) for root in nvidia.__path__ for p in Path(root).glob("*/include"))


_check_toolchain()
debug = os.environ.get("DEBUG") == "1"
print(
    f"wsss_cca: torch {torch.__version__} (CUDA {torch.version.cuda}), CUDA_HOME={CUDA_HOME}, "
    f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '<detected>')}, debug={debug}"
)
optimise = ["-O0", "-g"] if debug else ["-O3"]
setup(
    name="wsss_cca",
    version="0.1.0",
    description="Fused CUDA criss-cross attention kernels for wsss",
    packages=["wsss_cca"],
    ext_modules=[
        CUDAExtension(
            "wsss_cca._C",
            ["csrc/cca.cpp", "csrc/cuda/cca_cuda.cu"],
            include_dirs=_wheel_cuda_includes(),
            extra_compile_args={"cxx": optimise, "nvcc": [*optimise, "-lineinfo"]},
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.11",
)
