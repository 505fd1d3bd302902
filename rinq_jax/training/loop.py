"""`train_and_evaluate`: the one trainer, cut into sections (input, model, state, resume, loop).

Resuming: the global step `s` fixes the position in the data, epoch `s // steps_per_epoch` and
batch `s % steps_per_epoch` of it, and the per-step key `fold_in(rng, s)`. The input's batch
order depends only on (seed, epoch), so a run restored from checkpoint `s` replays exactly the
batches an uninterrupted run would have seen, and ends with the same parameters.

The data: `rinq_jax.training.input_pipeline`.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from rinq_jax.errors import InputError
from rinq_jax.models import get_model, model_spec
from rinq_jax.training import checkpoints as ckpt
from rinq_jax.training import steps
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.input_pipeline import (
    Datasets,
    build_datasets,
    closing,
    data_hash,
    resolve_target_norm,
    target_stats,
)
from rinq_jax.training.metrics_writer import MetricsWriter
from rinq_jax.training.state import TrainState, create_train_state, learning_rate_schedule


class NonFiniteLossError(RuntimeError):
    """Training met a NaN/Inf loss or gradient norm; the message names the step."""


# Config fields that change the training trajectory: a resume must not change them.
_TRAJECTORY_FIELDS = (
    "model",
    "input_kind",
    "target",
    "learning_rate",
    "batch_size",
    "seed",
    "target_transform",
    "lr_schedule",
    "warmup_steps",
    "final_lr_fraction",
    "grad_clip_norm",
    "t1_offset_ms",
    "t2_offset_ms",
    "t1_scale_ms",
    "t2_scale_ms",
    "model_overrides",
    "values",
    "data_dir",
    "val_fraction",
    "test_fraction",
)


def evaluate(
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
                for key in ("x", "y_ms", "tissue")
                if key in batch
            }
            padded["weight"] = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
            out = jax.device_get(eval_fn(state, steps.shard_batch(padded, mesh)))
            sums = out if sums is None else jax.tree.map(np.add, sums, out)
            seen += n
            if max_patches is not None and seen >= max_patches:
                break
    if sums is None:
        raise ValueError("the validation set yielded no batches")
    return steps.finalize_eval(sums)


class _NoWriter:
    """Stands in for MetricsWriter on hosts other than the first."""

    def write(self, step, split, metrics) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fill learning rate and batch size from the model's `ModelSpec` (paper Table 5)."""
    spec = model_spec(config.model, config.input_kind)
    return config.replace(
        learning_rate=config.learning_rate or spec.learning_rate,
        batch_size=config.batch_size or spec.batch_size,
    )


def _check_resume(
    saved: dict[str, Any], config: TrainConfig, run_dir: Path, new_data_hash: str
) -> None:
    """Refuse to continue a run whose trajectory-defining settings or data have changed."""
    old = TrainConfig.from_dict(saved["config"])
    changed = [f for f in _TRAJECTORY_FIELDS if getattr(old, f) != getattr(config, f)]
    if saved.get("data_hash") != new_data_hash:
        changed.append("data")
    if changed:
        diff = ", ".join(
            f"{f}: {getattr(old, f)!r} -> {getattr(config, f)!r}"
            if f != "data"
            else f"data files/sequence hash {saved.get('data_hash')} -> {new_data_hash}"
            for f in changed
        )
        raise InputError(
            f"{run_dir} holds a run with different settings ({diff}); "
            "resume with the same settings or use a new --workdir"
        )


def train_and_evaluate(
    config: TrainConfig, *, datasets: Datasets | None = None, model=None
) -> dict[str, Any]:
    """Train `config.model`, evaluate every epoch, checkpoint, resume from `config.workdir`.

    Args:
      config: the run's settings; learning rate and batch size default to the model's spec.
      datasets: train/val data (default: `build_datasets(config)`); anything with the
        `PatchSource` interface works, e.g. a small in-memory dataset in tests.
      model: flax module (default: the registry's `get_model(config.model, ...)`).

    Returns:
      Summary dict: best_val_loss_ms, best_step, best_checkpoint, final_step, final_val (the last
      evaluation's metrics), steps_per_epoch, patches_per_s (training throughput, compile and
      evaluation excluded), wall_s, workdir.

    Raises:
      NonFiniteLossError: a step produced a NaN/Inf loss or gradient norm; the message names the
        step, and no checkpoint after the last good one is written.

    """
    with contextlib.ExitStack() as cleanup:
        return _train_and_evaluate(config, datasets, model, cleanup)


def _train_and_evaluate(
    config: TrainConfig, datasets: Datasets | None, model, cleanup: contextlib.ExitStack
) -> dict[str, Any]:
    """Body of `train_and_evaluate`; `cleanup` closes the checkpoint managers on any exit."""
    t_start = time.perf_counter()
    config = resolve_config(config)
    run_dir = Path(config.workdir)
    run_dir.mkdir(parents=True, exist_ok=True)

    # --- devices: one 1-D data mesh over all local devices
    mesh = steps.make_mesh()
    steps.check_batch_divisible(config.batch_size, mesh.devices.size)

    # --- model and input
    if model is None:
        model = get_model(config.model, config.input_kind, **dict(config.model_overrides))
    if datasets is None:
        datasets = build_datasets(config, model_spec(config.model, config.input_kind).patch_size)
    config = resolve_target_norm(config, datasets)
    target_mean_ms = target_stats(datasets)[0]
    train_ds, val_ds = datasets.train, datasets.val
    steps_per_epoch = train_ds.n_patches // config.batch_size
    if steps_per_epoch == 0:
        raise InputError(
            f"training set has {train_ds.n_patches} patches, fewer than one batch of "
            f"{config.batch_size}"
        )
    total_steps = config.steps or config.epochs * steps_per_epoch
    with closing(train_ds.batches(1, seed=0, epoch=0, start_batch=0)) as it:
        first = next(iter(it))
    sample_x = np.asarray(first["x"])
    patch_size, channels = sample_x.shape[1], sample_x.shape[-1]

    # --- state: init, then restore the latest checkpoint of the workdir if there is one
    init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    schedule = learning_rate_schedule(
        config.learning_rate,
        total_steps,
        config.lr_schedule,
        config.warmup_steps,
        config.final_lr_fraction,
    )
    state = create_train_state(model, init_rng, sample_x, schedule, config.grad_clip_norm)
    latest_mgr = ckpt.make_manager(run_dir / ckpt.LATEST_DIR, config.keep_checkpoints)
    best_mgr = ckpt.make_manager(run_dir / ckpt.BEST_DIR, 1)
    cleanup.callback(latest_mgr.close)
    cleanup.callback(best_mgr.close)
    best: dict[str, Any] | None = None
    restored = ckpt.restore_latest(latest_mgr, ckpt.state_to_tree(state, train_rng))
    if restored is not None:
        tree, saved_meta = restored
        _check_resume(saved_meta, config, run_dir, data_hash(datasets))
        state = state.replace(
            params=tree["params"],
            batch_stats=tree["batch_stats"],
            opt_state=tree["opt_state"],
            step=tree["step"],
        )
        train_rng, best = tree["rng"], saved_meta["best"]
        if jax.process_index() == 0:
            print(f"resuming {run_dir} from step {int(state.step)}", flush=True)
    state = steps.replicate(state, mesh)
    train_rng = steps.replicate(train_rng, mesh)
    step = int(state.step)

    # --- update and eval steps (jitted, data-parallel, state donated)
    p_train_step = steps.make_train_step(mesh, config.target_norm)
    p_eval_step = steps.make_eval_step(mesh, config.target_norm)
    eval_batch = 4 * config.batch_size  # no gradients: larger batches, fewer dispatches

    # --- checkpointing
    def meta(at_step: int, metrics=None):
        saved = ckpt.make_metadata(
            config,
            patch_size=patch_size,
            channels=channels,
            n_reps=train_ds.n_reps,
            signal_normalisation=datasets.signal_normalisation,
            sequence_hash=datasets.sequence_hash,
            trajectory=datasets.trajectory,
            data_hash=data_hash(datasets),
            data_files=datasets.files,
            step=at_step,
            epoch=at_step // steps_per_epoch,
            batch_in_epoch=at_step % steps_per_epoch,
            best=best,
            metrics=metrics,
            train_target_mean_ms=target_mean_ms,
        )
        # Train losses not yet logged: a resumed run then logs the same averages.
        return {**saved, "pending_losses": list(losses)}

    def save_latest(at_step: int, metrics=None):
        tree = jax.device_get(ckpt.state_to_tree(state, train_rng))
        ckpt.save(latest_mgr, tree, meta(at_step, metrics), at_step)

    # --- the loop
    # Several hosts (jax.distributed) all run this loop; only the first one writes and prints.
    chief = jax.process_index() == 0
    writer = MetricsWriter(run_dir, resume_step=step) if chief else _NoWriter()
    cleanup.callback(writer.close)
    bar = tqdm(
        total=total_steps, initial=step, disable=not (config.progress and chief), dynamic_ncols=True
    )

    def say(text: str, flush: bool = True) -> None:
        """Print on the first host only, above the progress bar."""
        if chief:
            tqdm.write(text)
            sys.stdout.flush()

    # Train losses since the last log row (restored, see `meta`).
    losses: list[float] = list(restored[1].get("pending_losses", [])) if restored else []
    session_start = step
    train_time, train_patches = 0.0, 0
    t_log = time.perf_counter()
    final_val: dict[str, float] | None = None
    while step < total_steps:
        epoch, start_batch = divmod(step, steps_per_epoch)
        with closing(
            train_ds.batches(
                config.batch_size,
                seed=config.seed,
                epoch=epoch,
                start_batch=start_batch,
                drop_remainder=True,
            )
        ) as batches:
            for batch in batches:
                t0 = time.perf_counter()
                state, metrics = p_train_step(state, steps.shard_batch(batch, mesh), train_rng)
                metrics = jax.device_get(metrics)  # the finite check needs it now
                if not metrics["finite"]:
                    last = latest_mgr.latest_step()
                    where = run_dir / ckpt.LATEST_DIR / str(last) if last is not None else "none"
                    bar.close()
                    raise NonFiniteLossError(
                        f"non-finite loss ({metrics['loss']}) or gradient norm "
                        f"({metrics['grad_norm']}) at step {step} (epoch {epoch}, batch "
                        f"{step % steps_per_epoch}); training stopped, parameters not updated; "
                        f"last good checkpoint: {where}"
                    )
                if step > session_start:  # the session's first step includes compilation
                    train_time += time.perf_counter() - t0
                    train_patches += config.batch_size
                step += 1
                losses.append(float(metrics["loss"]))
                bar.update(1)
                if step % config.log_every_steps == 0 or step == total_steps:
                    now = time.perf_counter()
                    rate = len(losses) * config.batch_size / (now - t_log)
                    row = {
                        "epoch": epoch,
                        "loss": float(np.mean(losses)),
                        "grad_norm": float(metrics["grad_norm"]),
                        "patches_per_s": rate,
                        "wall_s": now - t_start,
                    }
                    writer.write(step, "train", row)
                    bar.set_postfix(loss=f"{row['loss']:.4g}", patches_s=f"{rate:.0f}")
                    losses, t_log = [], now
                epoch_end = step % steps_per_epoch == 0
                periodic = config.eval_every_steps and step % config.eval_every_steps == 0
                if epoch_end or periodic or step == total_steps:
                    val = evaluate(
                        p_eval_step,
                        state,
                        val_ds,
                        mesh,
                        eval_batch,
                        config.seed,
                        config.max_val_patches,
                    )
                    final_val = val
                    wall_s = time.perf_counter() - t_start
                    writer.write(step, "val", {"epoch": epoch, **val, "wall_s": wall_s})
                    say(
                        f"step {step} epoch {epoch}: val loss {val['val_loss_ms']:.1f} ms "
                        f"(RMSE T1 {val['rmse_t1_ms']:.1f} ms, T2 {val['rmse_t2_ms']:.1f} ms)"
                    )
                    if best is None or val["val_loss_ms"] < best["val_loss_ms"]:
                        best = {"val_loss_ms": val["val_loss_ms"], "step": step}
                        inference_tree = jax.device_get(
                            {"params": state.params, "batch_stats": state.batch_stats}
                        )
                        ckpt.save(best_mgr, inference_tree, meta(step, val), step)
                    save_latest(step, val)
                    t_log = time.perf_counter()  # evaluation time is not training throughput
                elif config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
                    save_latest(step)
                if step >= total_steps:
                    break
    bar.close()

    best_path = None
    if best is not None:
        best_path = str((run_dir / ckpt.BEST_DIR / str(best["step"])).resolve())
        say(
            f"best validation loss {best['val_loss_ms']:.2f} ms (sqrt of MSE over T1 and T2) "
            f"at step {best['step']}; checkpoint {best_path}",
            flush=True,
        )
    return {
        "best_val_loss_ms": best["val_loss_ms"] if best else None,
        "best_step": best["step"] if best else None,
        "best_checkpoint": best_path,
        "final_step": step,
        "final_val": final_val,
        "steps_per_epoch": steps_per_epoch,
        "patches_per_s": train_patches / train_time if train_time > 0 else None,
        "wall_s": time.perf_counter() - t_start,
        "workdir": str(run_dir.resolve()),
    }
