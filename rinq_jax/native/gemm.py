"""Opt-in float32 matrix products through Intel MKL, called from XLA through its FFI.

The default is XLA's own ``dot`` everywhere: plain JAX, every transformation works, nothing
to build. MKL is an option for Intel CPUs, where XLA:CPU's float32 matmul is the slower
kernel (benchmarks/results.md: whole networks ~10 % faster on Sapphire Rapids, 1.1-1.5x
slower on AMD EPYC, whose MKL takes a generic code path). Switch it on with
``pip install .[mkl]`` (the ``mkl`` wheel), a C++ compiler, and ``RINQ_JAX_GEMM``.

How: ``gemm.cc`` defines XLA FFI handlers that call MKL's ``cblas_sgemm`` (and its packed
variant); it is compiled with the system's C++ compiler on first use against JAX's FFI
headers and the wheel's ``libmkl_rt``, and cached under ``$RINQ_JAX_CACHE_DIR`` (default
``~/.cache/rinq_jax``). ``jax.lax.platform_dependent`` picks the MKL call when a
computation is lowered for the CPU and XLA's ``dot_general`` for GPUs and TPUs, so one
jitted function serves both. `gemm` is a ``custom_vjp`` (reverse mode only).

Choice (``RINQ_JAX_GEMM``, read whenever a product is traced): "xla" (default) XLA's dot;
"auto" MKL on Intel CPUs, and where MKL, a compiler or x86-64 Linux is missing there, XLA's
dot with one warning saying why; "mkl" MKL on any x86-64 Linux CPU, a missing MKL being an
error (tests of the kernels). Results agree with XLA's to float32 rounding.

Reproducibility: MKL runs in its conditional-numerical-reproducibility AUTO mode, so a
product does not depend on where its operands lie in memory, and a training run resumed
from a checkpoint repeats the uninterrupted one bit for bit (tests/training).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import site
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rinq_jax.atomic import atomic_path

__all__ = ["gemm", "with_packed_rhs", "mkl_available", "cpu_info", "GEMM_ENV"]

GEMM_ENV = "RINQ_JAX_GEMM"  # "xla" (default), "auto" or "mkl"
CACHE_ENV = "RINQ_JAX_CACHE_DIR"
_SOURCE = Path(__file__).with_name("gemm.cc")
_MKL_RT = "libmkl_rt.so.3"
# MKL's GNU OpenMP threading layer. Its Intel OpenMP layer was as fast alone, but with
# PyTorch's OpenMP runtime in the same process (the benchmarks) RNN1 inference took 2,060
# instead of 1,100 ms per 1,024 pixels, and it spins for 200 ms after each product, taking
# the cores from XLA's threads unless KMP_BLOCKTIME=0 is set before it starts.
_THREADING_GNU = 3
_CXXFLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-w")
_TARGETS = {"rinq_sgemm": "RinqSgemm", "rinq_sgemm_pack": "RinqSgemmPack",
            "rinq_sgemm_packed": "RinqSgemmPacked"}  # fmt: skip


def _mode() -> str:
    mode = os.environ.get(GEMM_ENV, "xla")
    if mode not in ("xla", "auto", "mkl"):
        raise ValueError(f"{GEMM_ENV} must be 'xla', 'auto' or 'mkl', got {mode!r}")
    return mode


@functools.cache
def cpu_info() -> dict[str, str]:
    """The first processor's fields in ``/proc/cpuinfo``, or {} where there is none.

    E.g. "vendor_id" ("GenuineIntel", "AuthenticAMD"), "model name", "cpu family", "flags".
    """
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return {}
    return {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())
    }


def _find_mkl() -> Path | None:
    """``libmkl_rt`` as the ``mkl`` wheel installs it (its data files go to ``<prefix>/lib``)."""
    prefixes = [sys.prefix, site.getuserbase(), sys.base_prefix]
    for prefix in prefixes:
        path = Path(prefix) / "lib" / _MKL_RT
        if path.is_file():
            return path
    return None


def _build(mkl: Path) -> Path:
    """Compile gemm.cc against ``mkl`` (cached by source, JAX version, MKL path and flags)."""
    include = jax.ffi.include_dir()
    parts = [_SOURCE.read_bytes(), jax.__version__, str(mkl), *_CXXFLAGS]
    key = hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rinq_jax")
    target = cache / f"gemm-{key}.so"
    if target.is_file():
        return target
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        cmd = [compiler, *_CXXFLAGS, f"-I{include}", str(_SOURCE), f"-L{mkl.parent}",
               f"-l:{mkl.name}", f"-Wl,-rpath,{mkl.parent}", "-o", str(tmp)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"compiling {_SOURCE} failed:\n{done.stderr[-2000:]}")
    return target


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """The compiled kernels with their FFI targets registered, or None and the reason."""
    try:
        if platform.system() != "Linux" or platform.machine() != "x86_64":
            raise RuntimeError(f"MKL kernels are built for x86-64 Linux, not {platform.platform()}")
        mkl = _find_mkl()
        if mkl is None:
            raise RuntimeError(f"{_MKL_RT} not found (pip install .[mkl])")
        # MKL's GNU threading layer loads it at the first product and aborts the process
        # if it is missing: check here, where a fallback is still possible.
        ctypes.CDLL("libgomp.so.1")
        lib = ctypes.CDLL(str(_build(mkl)))
        if lib.rinq_mkl_init(_THREADING_GNU):
            raise RuntimeError("MKL refused its threading layer or reproducibility mode")
        lib.rinq_sgemm_pack_size.restype = ctypes.c_size_t
        lib.rinq_sgemm_pack_size.argtypes = [ctypes.c_int] * 3
        for target, symbol in _TARGETS.items():
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), "cpu")
    except (OSError, RuntimeError) as error:
        return None, str(error)
    return lib, ""


@functools.cache
def _warn_fallback(reason: str) -> None:
    if jax.default_backend() == "cpu":  # on accelerators XLA's dot is the choice anyway
        warnings.warn(
            f"rinq_jax: float32 matmuls use XLA's kernel, not MKL: {reason}", stacklevel=4
        )


def _library() -> ctypes.CDLL | None:
    """The MKL kernels where products traced now should use them, else None (XLA's dot).

    ``RINQ_JAX_GEMM`` is read at each call, i.e. whenever a product is traced: "xla" (the
    default) never, "auto" on Intel CPUs only, "mkl" on any x86-64 Linux CPU.
    """
    mode = _mode()
    if mode == "xla" or (mode == "auto" and cpu_info().get("vendor_id") != "GenuineIntel"):
        return None
    lib, reason = _load()
    if lib is None:
        if mode == "mkl":
            raise RuntimeError(f"{GEMM_ENV}=mkl, but: {reason}")
        _warn_fallback(reason)
    return lib


def mkl_available() -> bool:
    """Whether float32 products traced now on the CPU go through MKL (builds the kernels)."""
    return _library() is not None


def _xla_dot(a, b, trans_a: bool, trans_b: bool) -> jax.Array:
    dims = (((0 if trans_a else 1,), (1 if trans_b else 0,)), ((), ()))
    return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


def _on_cpu(mkl_fn, xla_fn, *args) -> jax.Array:
    """``mkl_fn`` where the computation is lowered for the CPU, ``xla_fn`` elsewhere."""
    if _library() is None:
        return xla_fn(*args)
    return jax.lax.platform_dependent(*args, cpu=mkl_fn, default=xla_fn)


def _product(a, b, trans_a: bool, trans_b: bool) -> jax.Array:
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    out = jax.ShapeDtypeStruct((m, n), jnp.float32)

    def mkl(a, b):
        call = jax.ffi.ffi_call("rinq_sgemm", out, vmap_method="sequential")
        return call(a, b, trans_a=trans_a, trans_b=trans_b)

    return _on_cpu(mkl, functools.partial(_xla_dot, trans_a=trans_a, trans_b=trans_b), a, b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def gemm(a: jax.Array, b: jax.Array, trans_a: bool = False, trans_b: bool = False) -> jax.Array:
    """``op(a) @ op(b)`` for 2-D float32 operands, op transposing where its flag is set.

    Args:
      a: float32[M, K], or [K, M] with ``trans_a``.
      b: float32[K, N], or [N, K] with ``trans_b``.
      trans_a: ``a`` is stored transposed (static).
      trans_b: ``b`` is stored transposed (static).

    Returns:
      float32[M, N]. Differentiable in reverse mode (a ``custom_vjp``: no ``jvp``); the
      gradient's products go through ``gemm`` too.
    """
    _check(a, b, trans_a, trans_b)
    return _product(a, b, trans_a, trans_b)


def _check(a, b, trans_a, trans_b) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.dtype != jnp.float32 or b.dtype != jnp.float32:
        raise ValueError(
            f"gemm expects 2-D float32 operands, got {a.dtype}{list(a.shape)} and "
            f"{b.dtype}{list(b.shape)}"
        )
    k_a = a.shape[0] if trans_a else a.shape[1]
    k_b = b.shape[1] if trans_b else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"gemm: contraction sizes differ: {k_a} (a{list(a.shape)}, trans_a={trans_a}) "
            f"vs {k_b} (b{list(b.shape)}, trans_b={trans_b})"
        )


def _gemm_fwd(a, b, trans_a, trans_b):
    return gemm(a, b, trans_a, trans_b), (a, b)


def _gemm_bwd(trans_a, trans_b, residuals, d_c):
    # C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, transposed back where
    # the operand was stored transposed.
    a, b = residuals
    d_a = gemm(b, d_c, trans_b, True) if trans_a else gemm(d_c, b, False, not trans_b)
    d_b = gemm(d_c, a, True, trans_a) if trans_b else gemm(a, d_c, not trans_a, False)
    return d_a, d_b


gemm.defvjp(_gemm_fwd, _gemm_bwd)


def with_packed_rhs(b: jax.Array, rows: int, trans_b: bool, body):
    """``body(product)``, where ``product(a) = a @ op(b)`` for a float32[rows, K].

    For a right-hand side used by many products in a row, as the LSTM's recurrent weights
    are by its 30 steps: on the CPU with MKL, op(b) is packed into MKL's internal layout
    once and every product reads the packed copy (saves the packing each product would
    repeat); elsewhere ``product`` is XLA's dot. ``body`` must return the same pytree either
    way. Not differentiable: for hand-written gradients such as ``models.lstm``'s.

    Args:
      b: float32[K, N], or [N, K] with ``trans_b``.
      rows: M, the row count of every ``a`` given to ``product``.
      trans_b: ``b`` is stored transposed (static).
      body: a function of ``product``.
    """
    a_spec = jax.ShapeDtypeStruct((rows, b.shape[1] if trans_b else b.shape[0]), jnp.float32)
    _check(a_spec, b, False, trans_b)
    n, k = (b.shape[0], b.shape[1]) if trans_b else (b.shape[1], b.shape[0])

    def checked(product):
        def run(a):
            if a.shape != (rows, k) or a.dtype != jnp.float32:
                raise ValueError(f"expected a float32[{rows}, {k}], got {a.dtype}{list(a.shape)}")
            return product(a)

        return run

    def xla(b):
        return body(checked(lambda a: _xla_dot(a, b, False, trans_b)))

    lib = _library()
    size = lib.rinq_sgemm_pack_size(rows, n, k) if lib is not None else 0

    def mkl(b):
        pack = jax.ffi.ffi_call("rinq_sgemm_pack", jax.ShapeDtypeStruct((size,), jnp.uint8))
        packed = pack(b, trans_b=trans_b, rows=np.int64(rows))
        call = jax.ffi.ffi_call("rinq_sgemm_packed", jax.ShapeDtypeStruct((rows, n), jnp.float32))
        return body(checked(lambda a: call(a, packed, n=np.int64(n))))

    return _on_cpu(mkl, xla, b)
