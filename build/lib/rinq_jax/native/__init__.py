"""Native kernels called from XLA through its FFI: float32 matmuls through Intel MKL."""

from rinq_jax.native.gemm import GEMM_ENV, cpu_info, gemm, mkl_available, with_packed_rhs

__all__ = ["GEMM_ENV", "cpu_info", "gemm", "mkl_available", "with_packed_rhs"]
