"""Pure train and eval steps, and their data-parallel (sharded `jit`) wrappers.

Data parallelism uses `jax.jit` over a 1-D device mesh (axis "data"): the batch is split along
its first axis, the state is replicated, and XLA inserts the cross-device reductions. This is the
sharded-`jit` equivalent of `pmap` + `lax.pmean` (flax `examples/lm1b/train.py`), chosen because
it keeps BatchNorm exact: the batch mean and variance inside `train=True` are reductions over the
*global* batch axis, so a step over N devices computes the same statistics, gradients and running
averages as one device given the whole batch (up to float summation order, ~1e-6 relative).
With `pmap`, each device would normalise with its own sub-batch statistics unless every
BatchNorm were built with `axis_name`, which the model registry does not require.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rinq_jax.data.subjects.tissues import SCORED_TISSUES
from rinq_jax.errors import InputError
from rinq_jax.models.rnn import NEIGHBOUR_PREDICTIONS
from rinq_jax.training.input_pipeline import closing
from rinq_jax.training.state import TrainState
from rinq_jax.training.targets import TargetNorm

Batch = dict[str, jax.Array]


def model_inputs(batch: Batch) -> dict[str, jax.Array]:
    """The network's keyword inputs besides ``x``.

    The measured B1 patches of a batch that has them (``"b1"``: float32[B, P, P], for a model
    with ``b1_input``).
    """
    return {"b1": batch["b1"]} if "b1" in batch else {}


def neighbour_mse(predictions: jax.Array, y_patch: jax.Array, weight: jax.Array) -> jax.Array:
    """Weighted MSE of RNN3's nine neighbour predictions against each pixel's own target.

    ``predictions``, ``y_patch``: float32[B, 9, 2] normalised (T1, T2); ``weight``: float32[B, 9]
    (0 for a pixel without a target). ``sum_bk w_bk |p_bk - y_bk|^2 / (2 sum_bk w_bk)``.
    """
    err2 = jnp.sum((predictions - y_patch) ** 2, axis=-1)
    return jnp.sum(weight * err2) / (2.0 * jnp.maximum(jnp.sum(weight), 1.0))


def train_step(
    state: TrainState,
    batch: Batch,
    rng: jax.Array,
    *,
    target_norm: TargetNorm,
    neighbour_weight: float = 0.0,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimiser step on the MSE of the normalised (T1, T2) targets (`TargetNorm`).

    With ``neighbour_weight`` > 0 (RNN3, ``TrainConfig.neighbour_loss``) the loss adds
    ``neighbour_weight * neighbour_mse`` of the nine predictions the quantile layer takes the
    median of (`models.rnn.NEIGHBOUR_PREDICTIONS`), each against its own pixel's truth: the
    paper's reading of them as the neighbours' predictions.

    Args:
      state: current TrainState (params, batch_stats, opt_state, step).
      batch: {"x": float32[B, P, P, T, C], "y_ms": float32[B, 2]} (and "b1": `model_inputs`);
        with ``neighbour_weight`` also "y_patch_ms": float32[B, P, P, 2] and "patch_weight":
        float32[B, P, P] (`rinq_jax.data.pipeline.stream`).
      rng: the run's root key; this step uses `fold_in(rng, state.step)` (resumable randomness).
      target_norm: maps the targets in ms to the network's outputs.
      neighbour_weight: weight of the neighbours' loss (0: the paper's loss).

    Returns:
      (new_state, metrics). metrics: "loss" (normalised MSE), "grad_norm", "finite" (bool),
      "mse_t1_ms2", "mse_t2_ms2" (batch MSE in ms^2). When the loss or gradient norm is not
      finite the returned state is the input state unchanged (a `lax.cond`), so a NaN can
      never reach the parameters; the caller stops on `finite == False`.

    """
    step_rng = jax.random.fold_in(rng, state.step)
    y = target_norm.normalise(batch["y_ms"])

    def loss_fn(params):
        pred, updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats},
            batch["x"],
            train=True,
            **model_inputs(batch),
            mutable=["batch_stats", "intermediates"] if neighbour_weight else ["batch_stats"],
            rngs={"dropout": step_rng},
        )
        loss = jnp.mean((pred - y) ** 2)
        if neighbour_weight:
            (slots,) = updates["intermediates"][NEIGHBOUR_PREDICTIONS]
            n = slots.shape[0]
            y_patch = target_norm.normalise(batch["y_patch_ms"].reshape(n, -1, 2))
            weight = batch["patch_weight"].reshape(n, -1)
            loss = loss + neighbour_weight * neighbour_mse(slots, y_patch, weight)
        return loss, (pred, updates)

    (loss, (pred, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    # A conditional, not a select of old and new state: the select kept both states alive
    # (no in-place update of the donated buffers) and cost 15 % (RNN3) to 40 % (RNN1) of a
    # CPU step; the conditional runs the update in place or nothing.
    new_state = jax.lax.cond(
        finite,
        lambda s: s.apply_gradients(
            grads=grads, batch_stats=updates.get("batch_stats", s.batch_stats)
        ),
        lambda s: s,
        state,
    )
    err_ms = target_norm.denormalise(pred) - batch["y_ms"]
    mse_ms2 = jnp.mean(err_ms**2, axis=0)
    metrics = {
        "loss": loss,
        "grad_norm": grad_norm,
        "finite": finite,
        "mse_t1_ms2": mse_ms2[0],
        "mse_t2_ms2": mse_ms2[1],
    }
    return new_state, metrics


def eval_step(state: TrainState, batch: Batch, *, target_norm: TargetNorm) -> dict[str, jax.Array]:
    """Sum squared errors in ms over one (possibly padded) batch, BatchNorm in inference mode.

    Args:
      state: the TrainState to evaluate.
      target_norm: maps the network's outputs to ms.
      batch: {"x": float32[B, P, P, T, C], "y_ms": float32[B, 2], "weight": float32[B]}; padded
        rows have weight 0 so the last, short batch keeps the compiled shape.

    Returns:
      {"sse_ms2": float32[2] (sum of weight * err^2 per T1, T2),
       "count": float32 (sum of weights)}.
      Sums, not means, so batches of any fill add up exactly in `finalize_eval`.

    """
    pred = state.apply_fn(
        {"params": state.params, "batch_stats": state.batch_stats},
        batch["x"],
        train=False,
        **model_inputs(batch),
    )
    pred_ms = target_norm.denormalise(pred)
    w = batch["weight"]
    err2 = (pred_ms - batch["y_ms"]) ** 2 * w[:, None]
    sums = {"sse_ms2": jnp.sum(err2, axis=0), "count": jnp.sum(w)}
    if "tissue" in batch:  # per tissue: [n_tissues, 2] sums and [n_tissues] counts
        onehot = (
            batch["tissue"][:, None] == jnp.asarray(tuple(SCORED_TISSUES.values()))[None]
        ) * w[:, None]
        rel = jnp.abs(pred_ms - batch["y_ms"]) / jnp.maximum(batch["y_ms"], 1e-3)
        sums["tissue_sse_ms2"] = onehot.T @ err2
        sums["tissue_sum_rel"] = onehot.T @ rel
        sums["tissue_count"] = jnp.sum(onehot, axis=0)
    return sums


def paper_loss_ms(sse_ms2, n):
    """The paper's validation loss (Table 1) in ms: ``sqrt(sse / (2 n))``.

    ``sse_ms2``: the squared errors of T1 and T2 summed over ``n`` pixels; the loss is the root
    of the mean over pixels and both parameters.
    """
    return np.sqrt(sse_ms2 / (2 * n))


def finalize_eval(sums: dict[str, np.ndarray]) -> dict[str, float]:
    """Accumulated eval sums -> the paper's validation loss and per-parameter RMSE, in ms.

    val_loss_ms = `paper_loss_ms` (the paper's Table 1 "validation loss"); rmse_t1_ms = sqrt(sse_T1 / n), likewise T2. With
    tissue sums: the same loss per tissue (``val_loss_wm_ms``) and the relative mean error in %
    (``rme_t1_wm_pct``, ``rme_t2_wm_pct``; NaN for a tissue without pixels).
    """
    sse = np.asarray(sums["sse_ms2"], dtype=np.float64)
    n = float(sums["count"])
    if n <= 0:
        raise ValueError("evaluation saw no samples")
    out = {
        "val_loss_ms": float(paper_loss_ms(sse.sum(), n)),
        "rmse_t1_ms": float(np.sqrt(sse[0] / n)),
        "rmse_t2_ms": float(np.sqrt(sse[1] / n)),
        "n_val": int(n),
    }
    if "tissue_count" in sums:
        counts = np.asarray(sums["tissue_count"], np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = paper_loss_ms(np.asarray(sums["tissue_sse_ms2"]).sum(1), counts)
            rme = 100 * np.asarray(sums["tissue_sum_rel"], np.float64) / counts[:, None]
        for i, name in enumerate(SCORED_TISSUES):
            out[f"val_loss_{name}_ms"] = float(loss[i])
            out[f"rme_t1_{name}_pct"], out[f"rme_t2_{name}_pct"] = (float(v) for v in rme[i])
    return out


# ----------------------------------------------------------------------------- data parallel


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """1-D mesh with axis "data" over `devices`.

    Default: all devices, `jax.devices()`, which are the local ones in a single process and every
    host's after `jax.distributed.initialize()` (multi-host data parallelism, see `shard_batch`).
    """
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), ("data",))


def check_batch_divisible(batch_size: int, n_devices: int) -> None:
    """Raise an InputError unless the global batch splits evenly over the devices."""
    if batch_size % n_devices:
        raise InputError(
            f"batch size {batch_size} is not divisible by the {n_devices} devices; "
            f"use a multiple of {n_devices}"
        )


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> Batch:
    """Place a host batch on the mesh, split along its first (batch) axis.

    `batch` is the *global* batch. Every process holds the same one (the pipeline's order
    depends only on seed and epoch) and puts only the rows of its own devices, so the same code
    runs on one host or several (`make_array_from_callback` asks for addressable shards only).
    """
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    arrays = {k: np.asarray(v) for k, v in batch.items() if k != "index"}  # index stays on host
    for v in arrays.values():
        check_batch_divisible(v.shape[0], mesh.devices.size)
    return {
        k: jax.make_array_from_callback(v.shape, sharding, lambda idx, v=v: v[idx])
        for k, v in arrays.items()
    }


def replicate(tree, mesh: Mesh):
    """Put every leaf of `tree` on all devices of `mesh`."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def make_train_step(
    mesh: Mesh, target_norm: TargetNorm, neighbour_weight: float = 0.0
) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Jitted, data-parallel `train_step` over `mesh`; donates the input state."""
    repl = NamedSharding(mesh, PartitionSpec())
    data = NamedSharding(mesh, PartitionSpec("data"))
    return jax.jit(
        functools.partial(train_step, target_norm=target_norm, neighbour_weight=neighbour_weight),
        in_shardings=(repl, data, repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )


def make_eval_step(
    mesh: Mesh, target_norm: TargetNorm
) -> Callable[[TrainState, Batch], dict[str, jax.Array]]:
    """Jitted, data-parallel `eval_step` over `mesh`."""
    repl = NamedSharding(mesh, PartitionSpec())
    data = NamedSharding(mesh, PartitionSpec("data"))
    return jax.jit(
        functools.partial(eval_step, target_norm=target_norm),
        in_shardings=(repl, data),
        out_shardings=repl,
    )


def evaluate_patches(
    eval_fn, state: TrainState, ds, mesh, batch_size: int, seed: int, max_patches: int | None
) -> dict[str, float]:
    """Compute validation metrics in ms over `ds` (the first `max_patches` of a fixed order).

    The last, short batch is padded to `batch_size` with weight-0 rows so one compiled shape
    serves every batch (and the batch stays divisible by the device count).
    """
    sums = None
    seen = 0
    batches = ds.batches(batch_size, seed=seed, epoch=0, start_batch=0, drop_remainder=False)
    with closing(batches):
        for batch in batches:
            n = len(batch["y_ms"])
            if max_patches is not None:
                n = min(n, max_patches - seen)
            pad = batch_size - n
            padded = {
                key: np.concatenate([batch[key][:n], np.zeros_like(batch[key][:1]).repeat(pad, 0)])
                for key in ("x", "b1", "y_ms", "tissue")
                if key in batch
            }
            padded["weight"] = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
            out = jax.device_get(eval_fn(state, shard_batch(padded, mesh)))
            sums = out if sums is None else jax.tree.map(np.add, sums, out)
            seen += n
            if max_patches is not None and seen >= max_patches:
                break
    if sums is None:
        raise ValueError("the validation set yielded no batches")
    return finalize_eval(sums)
