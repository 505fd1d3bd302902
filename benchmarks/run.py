"""Side-by-side speed of rinq_jax, PyTorch and mrpro: ``python -m benchmarks.run [--quick]``.

Measures in one run, on whatever machine runs it (CPU or accelerator):

* training throughput (patches/s) of CNN1, RNN1 and RNN3 (complex input, the paper's batch
  sizes 128/128/32, Adam, MSE), rinq_jax's jitted, donating train step vs the PyTorch twins in
  ``benchmarks/torch_reference.py``;
* full-slice inference (a 256 x 256 slice with a ~60 % brain mask, 3,000 repetitions) with RNN1
  and RNN3, vs PyTorch and vs template matching against the paper-grid dictionary compressed to
  rank 50 (rinq_jax's ``match``, and mrpro's ``DictionaryMatchOp`` when installed);
* EPG dictionary generation for the paper grid x 3,000 repetitions (a subset in ``--quick``,
  scaled to the whole grid), rinq_jax vs mrpro's EPG when installed;
* achieved GFLOP/s of each workload against the float32 matmul peak measured in the same run;
* peak resident memory of full-slice inference and of matching (each in a child process).

Timing: on shared CPUs timings are noisy, so the candidates are measured in interleaved
rounds (jax, torch, jax, torch, ...) and each reports the median round; the ratio is
jax/torch throughput from the same run. Compilation and warm-up are excluded. Where JAX runs
on a GPU, PyTorch and mrpro run on it too if the installed torch sees it (``torch_device``).

Writes ``benchmarks/results.json`` (or ``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SLICE_SHAPE = (256, 256)
MASK_FRACTION = 0.6
N_REPS = 3000
RANK = 50
PAPER_BATCH = {"cnn1": 128, "rnn1": 128, "rnn3": 32}
PATCH = {"cnn1": 1, "rnn1": 1, "rnn3": 3}
BF16_MODELS = ("rnn1", "rnn3")  # models with matmul_dtype="bfloat16"
TARGET_NORM_MS = ((0.0, 0.0), (4500.0, 3000.0))  # (offsets, scales) of (T1, T2)
OUT_DIR = Path(__file__).parent / "out"
SETTLE_S = 0.3


# ----------------------------------------------------------------------------- helpers


def n_mask_pixels() -> int:
    """Pixels inside the synthetic brain mask: an ellipse covering MASK_FRACTION of the slice."""
    h, w = SLICE_SHAPE
    yy, xx = np.mgrid[:h, :w]
    # An ellipse of area f*h*w with the slice's aspect ratio: semi-axes sqrt(f/pi) * (h, w).
    a = np.sqrt(MASK_FRACTION / np.pi)
    mask = ((yy - h / 2 + 0.5) / (a * h)) ** 2 + ((xx - w / 2 + 0.5) / (a * w)) ** 2 <= 1
    return int(mask.sum())


def interleaved(fns: dict, rounds: int, settle_s: float = SETTLE_S) -> dict[str, list[float]]:
    """Call each ``fn() -> seconds`` once per round, alternating; return every round's seconds.

    Each call waits ``settle_s`` first: a BLAS's worker threads keep spinning for a while
    after their last call (measured: a JAX matmul right after a numpy/OpenBLAS one ran at
    107 GFLOP/s, after a pause at 190), and would otherwise slow whichever candidate
    runs next.
    """
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            time.sleep(settle_s)
            times[k].append(fn())
    return times


def torch_device() -> str:
    """Where the PyTorch and mrpro references run: "cuda" or "cpu".

    "cuda" where JAX runs on a GPU and the installed torch sees one (PyPI's Linux torch
    wheels are CUDA builds), so that an accelerator run compares GPU with GPU.
    """
    import jax
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def torch_sync(device: str) -> None:
    """Wait for the PyTorch work queued on ``device`` (CUDA runs asynchronously)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def median(xs):
    """Median of a list, or None if empty."""
    return statistics.median(xs) if xs else None


def matmul_flops_per_sample(name: str, n_time: int = N_REPS, channels: int = 2) -> float:
    """Forward multiply-add FLOPs (2 per MAC) of one input patch; elementwise work is ignored.

    Training counts 3x (forward, and the two backward matmuls per forward one). The count
    is the textbook one that PyTorch performs; rinq_jax's LSTM skips the first step's
    product with h_0 = 0 (1/30 of the recurrent FLOPs), so its GFLOP/s are "effective" ones.
    """
    if name == "cnn1":
        flops, c, t = 0.0, channels, n_time
        for features, kernel, stride in ((30, 15, 5), (60, 10, 3), (120, 5, 2), (240, 3, 2)):
            t = (t - kernel) // stride + 1
            flops += 2 * t * kernel * c * features
            c = features
        t = (t - 3) // 2 + 1
        for f_in, f_out in ((c * t, 1000), (1000, 500), (500, 300), (300, 2)):
            flops += 2 * f_in * f_out
        return flops
    steps = 30
    hidden = {"rnn1": 1000, "rnn3": 500}[name]
    features = PATCH[name] ** 2 * channels * n_time // steps
    lstm = 2 * steps * (features + hidden) * 4 * hidden
    fcs = 2 * steps * (hidden * 500 + 500 * 250) + 2 * steps * 250 * 360
    out = 2 * 360 * 2 if name == "rnn1" else 2 * 9 * 40 * 2
    return float(lstm + fcs + out)


def epg_flops_per_atom_rep(n_states: int) -> float:
    """Nominal real FLOPs of one EPG repetition per atom: the textbook complex algorithm.

    (rf 3x3 complex mix + 2 relaxations.) rinq_jax's fast path does fewer (real arrays for
    constant-phase sequences, one relaxation per TR), so its GFLOP/s are "textbook-EPG
    equivalent", comparable across implementations, not counted operations.
    """
    # rf: 9 complex multiply-adds per state (8 FLOPs each); relax twice: 3 complex*real (2 each).
    return n_states * (9 * 8 + 2 * 3 * 2)


# ----------------------------------------------------------------------------- matmul peak


def measure_peak(size: int, rounds: int) -> dict:
    """Matmul GFLOP/s on [size, size] @ [size, size] (best round) by numpy, PyTorch and JAX.

    "jax" is XLA's own dot, "rinq_jax" the product the models use (``native.gemm``: MKL on
    the CPU where it is installed). "peak" is the best float32 figure of all: the machine's
    float32 matmul peak as far as its libraries reach it. "jax_bf16" is JAX's
    bfloat16-input, float32-accumulate matmul (the ``matmul_dtype="bfloat16"`` kernels), the
    reference for the bf16 rows.
    """
    import jax
    import jax.numpy as jnp
    import torch

    from rinq_jax.native import gemm

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    device = torch_device()
    ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
    f32 = jax.jit(lambda a, b: jax.lax.dot(a, b))
    ours = jax.jit(gemm)
    bf16 = jax.jit(
        lambda a, b: jnp.dot(
            a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), preferred_element_type=jnp.float32
        )
    )

    def timer(fn):
        fn()

        def run():
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        return run

    times = interleaved(
        {
            "numpy": timer(lambda: a @ b),
            "torch": timer(lambda: (ta @ tb, torch_sync(device))),
            "jax": timer(lambda: f32(ja, jb).block_until_ready()),
            "rinq_jax": timer(lambda: ours(ja, jb).block_until_ready()),
            "jax_bf16": timer(lambda: bf16(ja, jb).block_until_ready()),
        },
        rounds,
    )
    flops = 2.0 * size**3
    out = {k: flops / min(v) / 1e9 for k, v in times.items()}
    out["peak"] = max(out["numpy"], out["torch"], out["jax"], out["rinq_jax"])
    out["size"] = size
    return out


def cpu_description() -> str:
    """The CPU as /proc/cpuinfo names it, with the vector extensions that decide the kernels.

    E.g. "AMD EPYC (AuthenticAMD, family 25, model 17; avx512f avx512_bf16)"; "" where unknown.
    """
    from rinq_jax.native import cpu_info

    info = cpu_info()
    if not info:
        return ""
    flags = [
        f
        for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")
        if f in info.get("flags", "").split()
    ]
    return (
        f"{info.get('model name', '?')} ({info.get('vendor_id', '?')}, family "
        f"{info.get('cpu family', '?')}, model {info.get('model', '?')}; {' '.join(flags)})"
    )


def load_average() -> float:
    """The 1-minute load average (processes wanting a CPU), or -1 where unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


# ----------------------------------------------------------------------------- training


def _overrides(matmul_dtype: str) -> dict:
    return {} if matmul_dtype == "float32" else {"matmul_dtype": matmul_dtype}


def _jax_train(name: str, batch: int, x: np.ndarray, y: np.ndarray, matmul_dtype="float32"):
    import jax

    from rinq_jax.models import get_model, model_spec
    from rinq_jax.training.state import create_train_state
    from rinq_jax.training.steps import make_mesh, make_train_step, shard_batch

    spec = model_spec(name, "complex")
    model = get_model(name, "complex", **_overrides(matmul_dtype))
    state = create_train_state(model, jax.random.key(0), x[:1], spec.learning_rate)
    n_params = sum(v.size for v in jax.tree.leaves(state.params))
    mesh = make_mesh(jax.local_devices()[:1])
    step = make_train_step(mesh, TARGET_NORM_MS)
    data = shard_batch({"x": x, "y_ms": y}, mesh)
    rng = jax.random.key(1)
    holder = {"state": state}
    t = time.perf_counter()
    holder["state"], metrics = step(holder["state"], data, rng)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t

    def run(n_steps: int) -> float:
        t = time.perf_counter()
        for _ in range(n_steps):
            holder["state"], metrics = step(holder["state"], data, rng)
        jax.block_until_ready((holder["state"], metrics))
        return time.perf_counter() - t

    run(1)  # second call: donation buffers settled
    return run, n_params, compile_s


def _torch_train(name: str, x: np.ndarray, y: np.ndarray, compile_model: bool, bf16=False):
    import torch

    from benchmarks import torch_reference as ref
    from rinq_jax.models import model_spec

    torch.manual_seed(0)
    device = torch_device()
    model = ref.build(name).to(device)
    lr = model_spec(name, "complex").learning_rate
    fn = torch.compile(model) if compile_model else model
    step = ref.make_train_step(model, lr, bf16, device) if not compile_model else None
    if compile_model:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))

        def step(xb, yb):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(fn(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.detach()

        model.train()
    y_norm = (y - np.float32(TARGET_NORM_MS[0])) / np.float32(TARGET_NORM_MS[1])
    xt, yt = (torch.from_numpy(v).to(device) for v in (x, y_norm))
    t = time.perf_counter()
    step(xt, yt)
    torch_sync(device)
    compile_s = time.perf_counter() - t

    def run(n_steps: int) -> float:
        t = time.perf_counter()
        for _ in range(n_steps):
            step(xt, yt)
        torch_sync(device)
        return time.perf_counter() - t

    run(1)
    return run, model, compile_s


def bench_training(
    name: str, rounds: int, steps: int, torch_compile: bool, bf16: bool = False
) -> dict:
    """Patches/s of one training step at the paper's batch size, jax vs torch (eager, compiled).

    ``bf16``: also both frameworks' bfloat16 mixed precision ("jax_bf16", "torch_bf16").
    """
    from benchmarks import torch_reference as ref

    batch = PAPER_BATCH[name]
    p = PATCH[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, p, p, N_REPS, 2), dtype=np.float32)
    y = rng.uniform(10, 3000, (batch, 2)).astype(np.float32)
    jax_run, n_params, jax_compile_s = _jax_train(name, batch, x, y)
    torch_run, torch_model, torch_compile_s = _torch_train(name, x, y, False)
    extra = ref.check_param_counts(name, torch_model, n_params)
    fns = {"jax": lambda: jax_run(steps), "torch": lambda: torch_run(steps)}
    if bf16:
        jax_bf16_run = _jax_train(name, batch, x, y, "bfloat16")[0]
        torch_bf16_run = _torch_train(name, x, y, False, bf16=True)[0]
        fns["jax_bf16"] = lambda: jax_bf16_run(steps)
        fns["torch_bf16"] = lambda: torch_bf16_run(steps)
    compiled = None
    if torch_compile:
        try:
            compiled_run, _, compiled_s = _torch_train(name, x, y, True)
            fns["torch_compile"] = lambda: compiled_run(steps)
            compiled = compiled_s
        except Exception as error:  # noqa: BLE001 -- report, do not abort the suite
            print(f"  torch.compile unavailable for {name}: {type(error).__name__}: {error}")
    times = interleaved(fns, rounds)
    flops = 3 * matmul_flops_per_sample(name) * batch
    out = {
        "batch": batch,
        "params_jax": n_params,
        "params_torch": n_params + extra,
        "compile_s": {"jax": jax_compile_s, "torch": torch_compile_s, "torch_compile": compiled},
        "step_s": {k: median(v) / steps for k, v in times.items()},
        "rounds_s": times,
    }
    out["patches_per_s"] = {k: batch / v for k, v in out["step_s"].items()}
    out["gflops"] = {k: flops / v / 1e9 for k, v in out["step_s"].items()}
    _add_ratios(out, "patches_per_s")
    if "torch_compile" in out["patches_per_s"]:
        out["ratio_vs_torch_compile"] = (
            out["patches_per_s"]["jax"] / out["patches_per_s"]["torch_compile"]
        )
    return out


def _add_ratios(out: dict, rate: str) -> None:
    """jax/torch throughput ratios: float32 vs float32, and bf16 vs torch's bf16 and float32."""
    r = out[rate]
    out["ratio_vs_torch"] = r["jax"] / r["torch"]
    if "jax_bf16" in r:
        out["ratio_bf16_vs_torch_bf16"] = r["jax_bf16"] / r["torch_bf16"]
        out["ratio_bf16_vs_torch"] = r["jax_bf16"] / r["torch"]


# ----------------------------------------------------------------------------- inference


def _inference_inputs(name: str, chunk: int, seed: int = 0) -> np.ndarray:
    """A chunk of normalised network inputs float32[chunk, P, P, T, 2] (values do not affect speed)."""
    p = PATCH[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((chunk, p, p, N_REPS, 2), dtype=np.float32)
    return x / np.float32(np.sqrt(N_REPS))


def _jax_model(name: str, chunk: int, matmul_dtype: str = "float32"):
    """(jitted inference apply, initialised variables, one input chunk) of a registry model."""
    import jax

    from rinq_jax.models import get_model

    model = get_model(name, "complex", **_overrides(matmul_dtype))
    x = _inference_inputs(name, chunk)
    variables = jax.jit(lambda k, x: model.init({"params": k}, x, train=False))(
        jax.random.key(0), x[:1]
    )
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    return apply, variables, x


def _jax_infer(name: str, chunk: int, matmul_dtype: str = "float32"):
    import jax

    apply, variables, x = _jax_model(name, chunk, matmul_dtype)
    xj = jax.device_put(x)
    apply(variables, xj).block_until_ready()

    def run(n_chunks: int) -> float:
        t = time.perf_counter()
        for _ in range(n_chunks):
            y = apply(variables, xj)
        y.block_until_ready()
        return time.perf_counter() - t

    return run, x


def _torch_infer(name: str, x: np.ndarray, bf16: bool = False):
    import torch

    from benchmarks import torch_reference as ref

    torch.manual_seed(0)
    device = torch_device()
    model = ref.build(name).to(device).eval()
    xt = torch.from_numpy(x).to(device)

    def forward():
        with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=bf16):
            model(xt)

    forward()

    def run(n_chunks: int) -> float:
        t = time.perf_counter()
        for _ in range(n_chunks):
            forward()
        torch_sync(device)
        return time.perf_counter() - t

    return run


def bench_inference(
    name: str, n_pixels: int, chunk: int, chunks: int, rounds: int, bf16: bool = False
) -> dict:
    """Full-slice inference time (s) extrapolated from ``chunks`` chunks of ``chunk`` patches.

    The per-chunk time is measured on identical, pre-built chunks for both frameworks (input
    gathering, identical for both, is not timed) and scaled to the slice's masked pixels.
    ``bf16``: also both frameworks' bfloat16 mixed precision ("jax_bf16", "torch_bf16").
    """
    jax_run, x = _jax_infer(name, chunk)
    torch_run = _torch_infer(name, x)
    fns = {"jax": lambda: jax_run(chunks), "torch": lambda: torch_run(chunks)}
    if bf16:
        jax_bf16_run = _jax_infer(name, chunk, "bfloat16")[0]
        torch_bf16_run = _torch_infer(name, x, bf16=True)
        fns["jax_bf16"] = lambda: jax_bf16_run(chunks)
        fns["torch_bf16"] = lambda: torch_bf16_run(chunks)
    times = interleaved(fns, rounds)
    per_pixel = {k: median(v) / (chunks * chunk) for k, v in times.items()}
    flops = matmul_flops_per_sample(name)
    out = {
        "chunk": chunk,
        "pixels": n_pixels,
        "slice_s": {k: v * n_pixels for k, v in per_pixel.items()},
        "pixels_per_s": {k: 1 / v for k, v in per_pixel.items()},
        "gflops": {k: flops / v / 1e9 for k, v in per_pixel.items()},
        "rounds_s": times,
    }
    _add_ratios(out, "pixels_per_s")
    return out


# ----------------------------------------------------------------------------- dictionary


def paper_dictionary(cache: bool = True):
    """The paper-grid dictionary for ``paper_sequence(3000)``, compressed to rank 50 (cached)."""
    from rinq_jax.physics.dictionary import cached, paper_grid
    from rinq_jax.physics.sequence import paper_sequence

    return cached(paper_sequence(N_REPS), paper_grid(), OUT_DIR, rank=RANK, progress=False)


def _mrpro():
    """Import mrpro, or None. Its brainweb phantom imports torchvision, which we do not need."""
    try:
        import mrpro  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("torchvision"):
            return None
        import types

        # Stub only the import: mrpro.phantoms.brainweb is never called here.
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        stub.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        sys.modules.setdefault("torchvision", stub)
        sys.modules.setdefault("torchvision.transforms", stub.transforms)
        sys.modules.setdefault("torchvision.transforms.functional", stub.transforms.functional)
        try:
            import mrpro  # noqa: F401
        except Exception:  # noqa: BLE001
            return None
    except Exception:  # noqa: BLE001 -- a broken install counts as not installed
        return None
    import mrpro

    return mrpro


def _mrpro_matcher(atoms: np.ndarray):
    """mrpro's DictionaryMatchOp over the same compressed atoms complex64[N, K] (index as 'parameter')."""
    import torch

    mrpro = _mrpro()
    atoms_t = torch.from_numpy(np.ascontiguousarray(atoms.T)).to(torch_device())  # [K, N]
    op = mrpro.operators.DictionaryMatchOp(lambda idx: (atoms_t[:, idx.long()],))
    op.append(torch.arange(atoms.shape[0], dtype=torch.float32, device=atoms_t.device))
    return op


def bench_matching(n_pixels: int, rounds: int, with_mrpro: bool) -> dict:
    """Full-slice template matching of rank-50 coefficients [n_pixels, 50], ours vs mrpro."""
    import torch

    from rinq_jax.physics.dictionary import match

    dic = paper_dictionary()
    rng = np.random.default_rng(0)
    coeffs = (
        rng.standard_normal((n_pixels, RANK)) + 1j * rng.standard_normal((n_pixels, RANK))
    ).astype(np.complex64)
    match(coeffs[:4096], dic)  # compile

    def ours():
        t = time.perf_counter()
        match(coeffs, dic)
        return time.perf_counter() - t

    fns = {"jax": ours}
    agree = None
    if with_mrpro and _mrpro() is not None:
        op = _mrpro_matcher(dic.atoms)
        device = torch_device()
        signals_t = torch.from_numpy(np.ascontiguousarray(coeffs.T)).to(device)  # mrpro: (m, ...)

        def theirs():
            t = time.perf_counter()
            with torch.inference_mode():
                op(signals_t)
            torch_sync(device)
            return time.perf_counter() - t

        fns["mrpro"] = theirs
        with torch.inference_mode():
            (their_index,) = op(signals_t[:, :2048])
        their_index = their_index.cpu().numpy().astype(int)
        agree = float(np.mean(match(coeffs[:2048], dic).index == their_index))
    times = interleaved(fns, rounds)
    n_atoms = dic.atoms.shape[0]
    flops = 8.0 * n_pixels * n_atoms * RANK  # complex multiply-add = 8 real FLOPs
    out = {
        "pixels": n_pixels,
        "atoms": n_atoms,
        "rank": RANK,
        "slice_s": {k: median(v) for k, v in times.items()},
        "rounds_s": times,
        "index_agreement_with_mrpro": agree,
    }
    out["gflops"] = {k: flops / v / 1e9 for k, v in out["slice_s"].items()}
    if "mrpro" in out["slice_s"]:
        out["ratio_vs_mrpro"] = out["slice_s"]["mrpro"] / out["slice_s"]["jax"]
    return out


def bench_epg(n_atoms: int, rounds: int, with_mrpro: bool, n_states: int = 50) -> dict:
    """EPG generation of ``n_atoms`` paper-grid atoms x 3000 repetitions, scaled to the whole grid."""
    from rinq_jax.physics import epg
    from rinq_jax.physics.dictionary import paper_grid
    from rinq_jax.physics.sequence import paper_sequence

    seq = paper_sequence(N_REPS)
    grid = paper_grid()
    pick = np.linspace(0, len(grid) - 1, n_atoms).astype(int)
    t1, t2 = grid.t1_ms[pick], grid.t2_ms[pick]
    epg.simulate(seq, t1, t2, n_states=n_states).block_until_ready()  # compile

    def ours():
        t = time.perf_counter()
        epg.simulate(seq, t1, t2, n_states=n_states).block_until_ready()
        return time.perf_counter() - t

    fns = {"jax": ours}
    max_rel_err = None
    if with_mrpro and _mrpro() is not None:
        import torch
        from mrpro.operators.models import EPG

        mrpro_seq = EPG.EPGSequence(
            [
                EPG.InversionBlock(seq.ti_ms / 1000),
                EPG.FispBlock(
                    torch.deg2rad(torch.from_numpy(seq.flip_deg)),
                    torch.deg2rad(torch.from_numpy(seq.phase_deg)),
                    seq.te_ms / 1000,
                    torch.from_numpy(seq.tr_ms) / 1000,
                ),
            ]
        )
        params = EPG.Parameters(
            m0=torch.ones(n_atoms, dtype=torch.complex64),
            t1=torch.from_numpy(t1) / 1000,
            t2=torch.from_numpy(t2) / 1000,
            relative_b1=None,
        )
        device = torch_device()
        mrpro_seq, params = mrpro_seq.to(device), params.to(device)

        def theirs_signal():
            with torch.inference_mode():
                _, signals = mrpro_seq(params, n_states)
            return torch.stack(signals, -1)

        def theirs():
            t = time.perf_counter()
            theirs_signal()
            torch_sync(device)
            return time.perf_counter() - t

        fns["mrpro"] = theirs
        ref_sig = theirs_signal().cpu().numpy()
        our_sig = np.asarray(epg.simulate(seq, t1, t2, n_states=n_states))
        max_rel_err = float(
            np.max(np.linalg.norm(our_sig - ref_sig, axis=-1) / np.linalg.norm(ref_sig, axis=-1))
        )
    times = interleaved(fns, rounds)
    per_atom = {k: median(v) / n_atoms for k, v in times.items()}
    flops = epg_flops_per_atom_rep(n_states) * N_REPS
    out = {
        "atoms_measured": n_atoms,
        "grid_atoms": len(grid),
        "n_states": n_states,
        "grid_s": {k: v * len(grid) for k, v in per_atom.items()},
        "atoms_per_s": {k: 1 / v for k, v in per_atom.items()},
        "gflops_estimate": {k: flops / v / 1e9 for k, v in per_atom.items()},
        "rounds_s": times,
        "max_rel_diff_vs_mrpro": max_rel_err,
    }
    if "mrpro" in per_atom:
        out["ratio_vs_mrpro"] = per_atom["mrpro"] / per_atom["jax"]
    return out


# ----------------------------------------------------------------------------- memory


def _peak_rss_bytes() -> int:
    """This process's resident high-water mark: VmHWM, which exec resets (ru_maxrss does not:
    Linux carries the parent's maximum into an exec'd child), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_memory(kind: str, n_pixels: int, chunk: int) -> None:
    """In a child process: run a whole-slice workload once, print peak RSS in bytes as JSON."""
    base = _peak_rss_bytes()
    t = time.perf_counter()
    if kind == "match":
        from rinq_jax.physics.dictionary import match

        dic = paper_dictionary()
        rng = np.random.default_rng(0)
        # The slice's full time series are projected in row blocks, as a reconstruction would.
        result = []
        for start in range(0, n_pixels, chunk):
            n = min(chunk, n_pixels - start)
            sig = (rng.standard_normal((n, N_REPS)) + 1j * rng.standard_normal((n, N_REPS))).astype(
                np.complex64
            )
            result.append(match(sig, dic).index)
    else:
        apply, variables, x = _jax_model(kind, chunk)
        out = np.empty((n_pixels, 2), np.float32)
        for start in range(0, n_pixels, chunk):
            n = min(chunk, n_pixels - start)
            out[start : start + n] = np.asarray(apply(variables, x))[:n]
    peak = _peak_rss_bytes()
    print(
        json.dumps(
            {"peak_rss_bytes": peak, "import_rss_bytes": base, "seconds": time.perf_counter() - t}
        )
    )


def bench_memory(kind: str, n_pixels: int, chunk: int) -> dict:
    """Peak RSS of ``child_memory(kind)`` run in a fresh interpreter."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", kind, "--pixels", str(n_pixels)]
    cmd += ["--chunk", str(chunk)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["peak_rss_gib"] = out["peak_rss_bytes"] / 2**30
    out["pixels"] = n_pixels
    out["chunk"] = chunk
    return out


# ----------------------------------------------------------------------------- report


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def table(results: dict) -> str:
    """The results as one Markdown table."""
    rows = [
        "| workload | rinq_jax | PyTorch / mrpro | ratio (roofline) | rinq_jax GFLOP/s (% peak) |",
        "|---|---|---|---|---|",
    ]
    peak = results["peak"]["peak"]
    peak_bf16 = results["peak"].get("jax_bf16")

    def pct(g, ref=peak):
        return f"{g:.0f} ({100 * g / ref:.0f} %)"

    def roofline(r):
        # The most any implementation could lead PyTorch by: the peak over PyTorch's rate.
        return f" (roofline {peak / r['gflops']['torch']:.2f}x)"

    for name, r in results.get("training", {}).items():
        rate = r["patches_per_s"]
        other = f"{rate['torch']:.0f}"
        if "torch_compile" in rate:
            other += f" (compiled {rate['torch_compile']:.0f})"
        rows.append(
            f"| train {name} (B={r['batch']}), patches/s | {rate['jax']:.0f} | {other} "
            f"| {r['ratio_vs_torch']:.2f}x{roofline(r)} | {pct(r['gflops']['jax'])} |"
        )
        if "jax_bf16" in rate:
            rows.append(
                f"| train {name} bf16 mixed precision, patches/s | {rate['jax_bf16']:.0f} | "
                f"{rate['torch_bf16']:.0f} (autocast) | {r['ratio_bf16_vs_torch_bf16']:.2f}x "
                f"({r['ratio_bf16_vs_torch']:.2f}x float32 torch) | "
                f"{pct(r['gflops']['jax_bf16'], peak_bf16)} of bf16 peak |"
            )
    for name, r in results.get("inference", {}).items():
        t = r["slice_s"]
        rows.append(
            f"| infer {name}, slice of {r['pixels']} px, s | {t['jax']:.1f} | "
            f"{t['torch']:.1f} | {r['ratio_vs_torch']:.2f}x{roofline(r)} | {pct(r['gflops']['jax'])} |"
        )
        if "jax_bf16" in t:
            rows.append(
                f"| infer {name} bf16 mixed precision, s | {t['jax_bf16']:.1f} | "
                f"{t['torch_bf16']:.1f} (autocast) | {r['ratio_bf16_vs_torch_bf16']:.2f}x "
                f"({r['ratio_bf16_vs_torch']:.2f}x float32 torch) | "
                f"{pct(r['gflops']['jax_bf16'], peak_bf16)} of bf16 peak |"
            )
    m = results.get("matching")
    if m:
        rows.append(
            f"| match rank {m['rank']}, {m['atoms']} atoms, slice, s | {m['slice_s']['jax']:.2f} | "
            f"{_fmt(m['slice_s'].get('mrpro'), '.2f')} | {_fmt(m.get('ratio_vs_mrpro'), '.2f')}x | "
            f"{pct(m['gflops']['jax'])} |"
        )
    e = results.get("epg")
    if e:
        rows.append(
            f"| EPG paper grid ({e['grid_atoms']} atoms x {N_REPS}), s | {e['grid_s']['jax']:.1f} | "
            f"{_fmt(e['grid_s'].get('mrpro'))} | {_fmt(e.get('ratio_vs_mrpro'), '.1f')}x | "
            f"~{e['gflops_estimate']['jax']:.1f} (textbook-EPG equivalent) |"
        )
    for kind, r in results.get("memory", {}).items():
        rows.append(f"| peak RSS {kind}, whole slice | {r['peak_rss_gib']:.2f} GiB | | | |")
    p = results["peak"]
    rows.append(
        f"| matmul peak {p['size']}^3, GFLOP/s | rinq_jax {p['rinq_jax']:.0f}, XLA {p['jax']:.0f} "
        f"(bf16 {p['jax_bf16']:.0f}) | "
        f"torch {p['torch']:.0f}, numpy {p['numpy']:.0f} | | float32 peak {p['peak']:.0f} |"
    )
    load = results.get("load_average", {})
    if load:
        rows.append(
            f"\n1-minute load average during the run: {min(load.values()):.1f} to "
            f"{max(load.values()):.1f} on {results['machine']['cpus']} CPUs "
            f"({results['machine'].get('cpu') or 'CPU unknown'}; float32 products: "
            f"{results['machine'].get('float32_matmul', '?')})"
            + (
                " -- other processes competed for the cores: PyTorch's spinning OpenMP "
                "threads suffer most from that, so these ratios overstate rinq_jax's lead."
                if max(load.values()) > results["machine"]["cpus"] + 0.5
                else "."
            )
        )
    return "\n".join(rows)


def main(argv=None) -> int:
    """Run the suite (``--quick``: a few minutes on 2 CPU cores) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, subsets scaled up")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--only", default="peak,training,inference,matching,epg,memory")
    parser.add_argument("--models", default="cnn1,rnn1,rnn3")
    parser.add_argument("--no-mrpro", action="store_true")
    parser.add_argument("--torch-compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 rows")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--pixels", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=1024, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_memory(args.child, args.pixels, args.chunk)
        return 0

    import jax
    import torch

    from rinq_jax.native import mkl_available

    torch.set_num_threads(os.cpu_count() or 1)
    only = set(args.only.split(","))
    models = args.models.split(",")
    quick = args.quick
    n_pix = n_mask_pixels()
    with_mrpro = not args.no_mrpro and _mrpro() is not None
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpu": cpu_description(),
            "jax": jax.__version__,
            "jax_backend": jax.default_backend(),
            "float32_matmul": "MKL (rinq_jax.native)" if mkl_available() else "XLA",
            "devices": [str(d) for d in jax.devices()],
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_device": torch_device(),
            "mrpro": _mrpro().__version__ if with_mrpro else None,
            "quick": quick,
        }
    }
    loads = results["load_average"] = {"start": load_average()}
    results["peak"] = measure_peak(2048 if quick else 4096, 5)
    print(f"matmul peak: {results['peak']}", flush=True)
    if "training" in only:
        results["training"] = {}
        for name in models:
            steps, rounds = (2, 3) if quick else (5, 5)
            bf16 = name in BF16_MODELS and not args.no_bf16
            r = bench_training(name, rounds, steps, args.torch_compile, bf16)
            results["training"][name] = r
            loads[f"train {name}"] = load_average()
            print(f"train {name}: {r['patches_per_s']} ratio {r['ratio_vs_torch']:.2f}", flush=True)
    if "inference" in only:
        results["inference"] = {}
        for name in [m for m in models if m != "cnn1"]:
            chunk = 1024 if name == "rnn1" else 512
            chunks, rounds = (1, 3) if quick else (2, 5)
            bf16 = name in BF16_MODELS and not args.no_bf16
            r = bench_inference(name, n_pix, chunk, chunks, rounds, bf16)
            results["inference"][name] = r
            loads[f"infer {name}"] = load_average()
            print(f"infer {name}: {r['slice_s']} ratio {r['ratio_vs_torch']:.2f}", flush=True)
    if "matching" in only:
        results["matching"] = r = bench_matching(n_pix, 3 if quick else 5, with_mrpro)
        loads["matching"] = load_average()
        print(f"match: {r['slice_s']} ratio {r.get('ratio_vs_mrpro')}", flush=True)
    if "epg" in only:
        results["epg"] = r = bench_epg(512 if quick else 2048, 3, with_mrpro)
        loads["epg"] = load_average()
        print(f"epg: {r['grid_s']} ratio {r.get('ratio_vs_mrpro')}", flush=True)
    if "memory" in only:
        mem_pixels = 4096 if quick else n_pix
        results["memory"] = {
            kind: bench_memory(kind, mem_pixels, 1024 if kind != "rnn3" else 512)
            for kind in ("rnn1", "rnn3", "match")
        }
        print(f"memory: {results['memory']}", flush=True)
    text = table(results)
    print(text)
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    # As train.py and eval.py do; process-wide, so PyTorch and mrpro run with it too.
    from rinq_jax.cli import keep_freed_memory

    keep_freed_memory()
    sys.exit(main())
