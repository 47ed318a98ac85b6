"""Neural-network operators: criss-cross attention (CCNet) with a pure-PyTorch and a CUDA path."""

from wsss.ops.cca import RCCA, CrissCrossAttention, criss_cross_attention, resolve_impl

__all__ = ["RCCA", "CrissCrossAttention", "criss_cross_attention", "resolve_impl"]
