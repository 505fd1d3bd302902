"""`train_and_evaluate`: the one trainer.

`_prepare` builds the run (config defaults, devices, model, data, state), `_Checkpoints`
restores and saves it, `_Loop` runs its steps; the host waits for the device only at log,
validation and checkpoint steps.

Resuming: the global step `s` fixes the position in the data, epoch `s // steps_per_epoch` and
batch `s % steps_per_epoch` of it, and the per-step key `fold_in(rng, s)`. The input's batch
order depends only on (seed, epoch), so a run restored from checkpoint `s` replays exactly the
batches an uninterrupted run would have seen, and ends with the same parameters.

The data: `rinq_jax.training.input_pipeline`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import sys
import time
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from rinq_jax.errors import InputError
from rinq_jax.models import get_model, model_spec
from rinq_jax.training import checkpoints as ckpt
from rinq_jax.training import steps
from rinq_jax.training.config import TrainConfig, resolve_config, run_length
from rinq_jax.training.input_pipeline import (
    Datasets,
    build_datasets,
    closing,
    data_hash,
    resolve_target_norm,
    target_stats,
)
from rinq_jax.training.metrics_writer import MetricsWriter, NoWriter
from rinq_jax.training.state import TrainState, create_train_state, learning_rate_schedule


@dataclasses.dataclass(frozen=True)
class TrainSummary:
    """What `train_and_evaluate` returns.

    Attributes:
      best_val_loss_ms, best_step, best_checkpoint: the best validation (`steps.paper_loss_ms`),
        its step and checkpoint folder; None without a validation.
      final_step, final_val: the last step and validation (`steps.evaluate_patches`), if any.
      steps_per_epoch: optimiser steps per pass over the training set.
      patches_per_s: training throughput, compilation and validation excluded (None: no step
        timed in this session); wall_s: wall time of this session.
      workdir: the run's folder, absolute.
    """

    best_val_loss_ms: float | None
    best_step: int | None
    best_checkpoint: str | None
    final_step: int
    final_val: dict[str, float] | None
    steps_per_epoch: int
    patches_per_s: float | None
    wall_s: float
    workdir: str


class NonFiniteLossError(RuntimeError):
    """Training met a NaN/Inf loss or gradient norm; the message names the step."""


@dataclasses.dataclass
class _Run:
    """A prepared run: its resolved config, data, devices, state and where it stands."""

    config: TrainConfig
    datasets: Datasets
    mesh: Mesh
    state: TrainState
    rng: jax.Array
    steps_per_epoch: int
    total_steps: int
    patch_size: int
    channels: int
    target_mean_ms: tuple[float, float]
    best: ckpt.BestEval | None
    pending_losses: list[float]


def _prepare(config: TrainConfig, datasets: Datasets | None, model) -> _Run:
    """Resolve the config's defaults, build devices, model, data and the initial state."""
    config = resolve_config(config)
    mesh = steps.make_mesh()  # one 1-D data mesh over all local devices
    steps.check_batch_divisible(config.batch_size, mesh.devices.size)
    if model is None:
        model = get_model(config.model, config.input_kind, **config.model_kwargs)
    if datasets is None:
        datasets = build_datasets(config, model_spec(config.model, config.input_kind).patch_size)
    config = resolve_target_norm(config, datasets)
    steps_per_epoch = datasets.train.n_patches // config.batch_size
    if steps_per_epoch == 0:
        raise InputError(
            f"training set has {datasets.train.n_patches} patches, fewer than one batch of "
            f"{config.batch_size}"
        )
    Path(config.workdir).mkdir(parents=True, exist_ok=True)  # only once the data are good
    total_steps = run_length(config, datasets.streamed, steps_per_epoch)
    with closing(datasets.train.batches(1, seed=0, epoch=0, start_batch=0)) as it:
        sample = next(iter(it))
    sample_x = np.asarray(sample["x"])
    init_rng, rng = jax.random.split(jax.random.PRNGKey(config.seed))
    warmup = int(config.warmup_fraction * total_steps)
    schedule = learning_rate_schedule(
        config.learning_rate, total_steps, config.lr_schedule, warmup, config.final_lr_fraction
    )
    state = create_train_state(
        model, init_rng, sample_x, schedule, config.grad_clip_norm, steps.model_inputs(sample)
    )
    return _Run(
        config=config,
        datasets=datasets,
        mesh=mesh,
        state=state,
        rng=rng,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        patch_size=sample_x.shape[1],
        channels=sample_x.shape[-1],
        target_mean_ms=target_stats(datasets)[0],
        best=None,
        pending_losses=[],
    )


class _Checkpoints:
    """The run's two Orbax managers: the latest steps (resume) and the best validation."""

    def __init__(self, run: _Run, cleanup: contextlib.ExitStack):
        run_dir = Path(run.config.workdir)
        self.run = run
        self.latest = ckpt.make_manager(run_dir / ckpt.LATEST_DIR, run.config.keep_checkpoints)
        self.best = ckpt.make_manager(run_dir / ckpt.BEST_DIR, 1)
        cleanup.callback(self.latest.close)
        cleanup.callback(self.best.close)

    def restore(self) -> None:
        """Continue from the latest checkpoint, if any (`_check_resume` guards the settings)."""
        run = self.run
        restored = ckpt.restore_latest(self.latest, ckpt.state_to_tree(run.state, run.rng))
        if restored is not None:
            tree, saved = restored
            run_dir = Path(run.config.workdir)
            saved = ckpt.CheckpointMetadata.from_json(saved, run_dir)
            ckpt.check_resume(saved, run.config, run_dir, data_hash(run.datasets))
            run.state = run.state.replace(
                params=tree["params"],
                batch_stats=tree["batch_stats"],
                opt_state=tree["opt_state"],
                step=tree["step"],
            )
            run.rng, run.best = tree["rng"], saved.best
            run.pending_losses = list(saved.pending_losses)
            if jax.process_index() == 0:
                print(f"resuming {run.config.workdir} from step {int(run.state.step)}", flush=True)
        run.state = steps.replicate(run.state, run.mesh)
        run.rng = steps.replicate(run.rng, run.mesh)

    def metadata(self, step: int, metrics=None) -> ckpt.CheckpointMetadata:
        """The run's `ckpt.CheckpointMetadata` at ``step``."""
        run, data = self.run, self.run.datasets
        return ckpt.CheckpointMetadata(
            config=run.config,
            patch_size=run.patch_size,
            channels=run.channels,
            n_reps=data.train.n_reps,
            signal_normalisation=data.signal_normalisation,
            sequence_hash=data.sequence_hash,
            trajectory=data.trajectory,
            data_hash=data_hash(data),
            data_files=data.files,
            data_dir_abs=str(run.config.data_path.resolve()),
            step=step,
            epoch=step // run.steps_per_epoch,
            batch_in_epoch=step % run.steps_per_epoch,
            best=run.best,
            metrics=metrics,
            train_target_mean_ms=run.target_mean_ms,
            pending_losses=tuple(run.pending_losses),
        )

    def save_latest(self, step: int, metrics=None) -> None:
        """Everything a resume needs (state, key, metadata)."""
        tree = jax.device_get(ckpt.state_to_tree(self.run.state, self.run.rng))
        ckpt.save(self.latest, tree, self.metadata(step, metrics), step)

    def save_best(self, step: int, metrics) -> None:
        """What inference needs (parameters and BatchNorm statistics)."""
        state = self.run.state
        tree = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
        ckpt.save(self.best, tree, self.metadata(step, metrics), step)

    def last_good(self) -> str:
        """The latest checkpoint's folder, for error messages."""
        last = self.latest.latest_step()
        return (
            "none"
            if last is None
            else str(Path(self.run.config.workdir) / ckpt.LATEST_DIR / str(last))
        )


def _host_losses(pending: list[dict], first_step: int, run: _Run, checkpoints: _Checkpoints):
    """The losses of the steps since the last sync, fetched at once; stops on a non-finite one.

    A non-finite step left the parameters as they were (`steps.make_train_step`); the loop
    checks here, before anything is logged or saved, and names that step.
    """
    host = jax.device_get(pending)
    for i, metrics in enumerate(host):
        if not metrics["finite"]:
            step = first_step + i
            raise NonFiniteLossError(
                f"non-finite loss ({metrics['loss']}) or gradient norm ({metrics['grad_norm']}) "
                f"at step {step} (epoch {step // run.steps_per_epoch}, batch "
                f"{step % run.steps_per_epoch}); its update was skipped and training stopped; "
                f"last good checkpoint: {checkpoints.last_good()}"
            )
    return [float(m["loss"]) for m in host], float(host[-1]["grad_norm"])


def _validate(run: _Run, eval_step, step: int, epoch: int, wall_s: float, writer, say):
    """Validation metrics at ``step`` (of ``epoch``), written and printed, as a dict."""
    config = run.config
    val = steps.evaluate_patches(
        eval_step,
        run.state,
        run.datasets.val,
        run.mesh,
        4 * config.batch_size,  # no gradients: larger batches, fewer dispatches
        config.seed,
        config.max_val_patches,
    )
    writer.write(step, "val", {"epoch": epoch, **val, "wall_s": wall_s})
    say(
        f"step {step} epoch {epoch}: val loss {val['val_loss_ms']:.1f} ms "
        f"(RMSE T1 {val['rmse_t1_ms']:.1f} ms, T2 {val['rmse_t2_ms']:.1f} ms)"
    )
    return val


class _Loop:
    """The optimiser steps of a prepared run, with its logging, validation and checkpoints.

    The host waits for the device only at a log, validation or checkpoint step: the metrics of
    the steps in between stay on the device until then (asynchronous dispatch).
    """

    def __init__(self, run: _Run, checkpoints: _Checkpoints, cleanup, t_start: float):
        config = run.config
        self.run, self.checkpoints, self.t_start = run, checkpoints, t_start
        self.train_step = steps.make_train_step(run.mesh, config.target_norm, config.neighbour_loss)
        self.eval_step = steps.make_eval_step(run.mesh, config.target_norm)
        evals = config.evals_per_run
        self.eval_every = max(1, run.total_steps // evals) if evals else 0
        # Several hosts (jax.distributed) all run this loop; only the first writes and prints.
        chief = jax.process_index() == 0
        self.step = self.session_start = int(run.state.step)
        self.writer = MetricsWriter(config.workdir, resume_step=self.step) if chief else NoWriter()
        cleanup.callback(self.writer.close)
        self.bar = tqdm(
            total=run.total_steps,
            initial=self.step,
            disable=not (config.progress and chief),
            dynamic_ncols=True,
        )
        cleanup.callback(self.bar.close)
        self.say = functools.partial(_say, chief)
        self.pending: list = []  # device metrics since the last sync
        self.final_val: dict[str, float] | None = None
        self.train_time, self.train_steps = 0.0, 0  # compilation, validation, saving left out
        self.t_sync = self.t_log = time.perf_counter()

    def run_steps(self) -> None:
        """Train from the current step to the run's last, epoch by epoch."""
        run, config = self.run, self.run.config
        while self.step < run.total_steps:
            epoch, start_batch = divmod(self.step, run.steps_per_epoch)
            batches = run.datasets.train.batches(
                config.batch_size, config.seed, epoch, start_batch, drop_remainder=True
            )
            with closing(batches):
                for batch in itertools.islice(batches, run.total_steps - self.step):
                    sharded = steps.shard_batch(batch, run.mesh)
                    run.state, metrics = self.train_step(run.state, sharded, run.rng)
                    self.pending.append(metrics)
                    self.step += 1
                    self.bar.update(1)
                    self._after_step(epoch)
        self.bar.close()

    def _after_step(self, epoch: int) -> None:
        """Log, validate and checkpoint where the step asks for it."""
        run, config, step = self.run, self.run.config, self.step
        last = step == run.total_steps
        log = step % config.log_every_steps == 0 or last
        every = self.eval_every and step % self.eval_every == 0
        validate = step % run.steps_per_epoch == 0 or last or every
        save = config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0
        if not (log or validate or save):
            return
        first = step - len(self.pending)
        losses, grad_norm = _host_losses(self.pending, first, run, self.checkpoints)
        run.pending_losses += losses
        now = time.perf_counter()
        if first > self.session_start:  # the session's first step compiles
            self.train_time += now - self.t_sync
            self.train_steps += len(self.pending)
        self.pending = []
        if log:
            row = {
                "epoch": epoch,
                "loss": float(np.mean(run.pending_losses)),
                "grad_norm": grad_norm,
                "patches_per_s": len(run.pending_losses) * config.batch_size / (now - self.t_log),
                "wall_s": now - self.t_start,
            }
            self.writer.write(step, "train", row)
            self.bar.set_postfix(loss=f"{row['loss']:.4g}")
            run.pending_losses, self.t_log = [], now
        if validate:
            wall_s = time.perf_counter() - self.t_start
            val = _validate(run, self.eval_step, step, epoch, wall_s, self.writer, self.say)
            if run.best is None or val["val_loss_ms"] < run.best.val_loss_ms:
                run.best = ckpt.BestEval(val["val_loss_ms"], step)
                self.checkpoints.save_best(step, val)
            self.checkpoints.save_latest(step, val)
            self.final_val, self.t_log = val, time.perf_counter()  # not training throughput
        elif save:
            self.checkpoints.save_latest(step)
        self.t_sync = time.perf_counter()


def train_and_evaluate(
    config: TrainConfig, *, datasets: Datasets | None = None, model=None
) -> TrainSummary:
    """Train `config.model`, validate, checkpoint, resume from `config.workdir`.

    Args:
      config: the run's settings; learning rate and batch size default to the model's spec.
      datasets: train/val data (default: `build_datasets(config)`); anything with the
        `PatchSource` interface works, e.g. a small in-memory dataset in tests.
      model: flax module (default: the registry's `get_model(config.model, ...)`).

    Returns:
      The run's `TrainSummary`.

    Raises:
      NonFiniteLossError: a step produced a NaN/Inf loss or gradient norm; the message names the
        step, and no checkpoint after the last good one is written.

    """
    t_start = time.perf_counter()
    with contextlib.ExitStack() as cleanup:
        run = _prepare(config, datasets, model)
        checkpoints = _Checkpoints(run, cleanup)
        checkpoints.restore()
        loop = _Loop(run, checkpoints, cleanup, t_start)
        loop.run_steps()
        return _summary(run, loop, t_start)


def _say(chief: bool, text: str) -> None:
    """Print on the first host only, above the progress bar."""
    if chief:
        tqdm.write(text)
        sys.stdout.flush()


def _summary(run: _Run, loop: _Loop, t_start: float) -> TrainSummary:
    """What `train_and_evaluate` returns (and prints about the best checkpoint)."""
    best, best_path = run.best, None
    if best is not None:
        best_path = str((Path(run.config.workdir) / ckpt.BEST_DIR / str(best.step)).resolve())
        loop.say(
            f"best validation loss {best.val_loss_ms:.2f} ms (sqrt of MSE over T1 and T2) "
            f"at step {best.step}; checkpoint {best_path}"
        )
    rate = loop.train_steps * run.config.batch_size / loop.train_time if loop.train_time else None
    return TrainSummary(
        best_val_loss_ms=best.val_loss_ms if best else None,
        best_step=best.step if best else None,
        best_checkpoint=best_path,
        final_step=loop.step,
        final_val=loop.final_val,
        steps_per_epoch=run.steps_per_epoch,
        patches_per_s=rate,
        wall_s=time.perf_counter() - t_start,
        workdir=str(Path(run.config.workdir).resolve()),
    )
