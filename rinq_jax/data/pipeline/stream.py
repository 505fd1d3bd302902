"""Training batches drawn fresh from the compartment model: new tissue values, B1 and noise.

An epoch visits every brain pixel of the training slices once (`SyntheticStream.n_patches`),
in an order set by ``(seed, epoch)``, like `rinq_jax.data.pipeline.loader.PatchDataset`; but each
batch's signals are made anew from the slices' gridded compartment maps
(`rinq_jax.data.datasets.brain_slices.SliceCompartments`, model in
`rinq_jax.data.acquisition.compartments`):

* the run's `tissue_values.ValueDistribution`'s ``draws_per_batch`` draws of tissue values, B1
  amplitude and global phase (`tissue_values.training_values`); patch ``i`` of the batch uses
  draw ``i mod draws``;
* the aliased noiseless series of each patch pixel, ``sum_k G_g(t) M_k (r) C_k(t)``;
* noise: for every patch and repetition ``t`` an independently chosen image of the noise
  bank's group ``g(t)`` and an independently chosen window position. The gridded noise is
  stationary, so each window is an exact draw of the noise of that repetition, with its true
  correlation between neighbouring pixels; scaled to the slice's SNR times the patch's factor
  (log-uniform in the distribution's ``snr_factor_range``).

With ``b1_input``, each batch also holds the patch pixels' measured B1 as a scanner's B1 map
gives it, ``(1 + a G * beta)(1 + e)`` (`rinq_jax.data.subjects.b1_map`: the slice's stored blur
``G * beta`` of its B1 pattern at the draw's amplitude ``a``, times a fresh draw of the map's
smoothed 3 % noise per patch), drawn after everything else so that the other arrays are the
same with and without it.

With ``neighbour_targets`` (RNN3's ``neighbour_loss``, `rinq_jax.training.steps.train_step`), each
batch also holds the target of every patch pixel that is a brain pixel, under the patch's draw,
and a weight of 1 for those pixels, 0 for the rim outside the brain mask (whose target is then
the centre's).

Batch ``b`` of epoch ``e`` depends only on ``(seed, e, b)`` (`numpy.random.SeedSequence`), so a
resumed run replays the same batches and no two batches of a run share a draw. Signals are then
normalised exactly as on disk (`transforms.normalise_signals`, `transforms.to_channels`), and the
targets are the draw's true maps of the centre pixels: the rate-weighted truth
(`compartments.true_maps`) or, with a ``single_fit``, the single-compartment truth
(`compartments.single_compartment_maps` at the centre's true B1, fitted by
`rinq_jax.physics.fit.GridFit`): what one fingerprint of the pixel's noiseless signal says.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from rinq_jax.data.acquisition import compartments, spiral
from rinq_jax.data.pipeline import batching, transforms
from rinq_jax.data.subjects import b1_map, tissue_values
from rinq_jax.physics.fit import GridFit
from rinq_jax.physics.sequence import FispSequence

_STREAM_KEY = 0x5EED  # separates the stream's seeds from every other use of the run seed


class SyntheticStream:
    """`PatchSource` over training slices' compartment maps (module docstring).

    Args:
        slices: `SliceCompartments` of the training slices.
        noise_bank: complex64[R, n, H, W] unit gridded noise (`compartments.noise_bank`).
        seq: the acquisition schedule (T repetitions).
        cfg: the acquisition (its interleaf pattern and SNR).
        patch_size: 1 or 3.
        input_kind: "complex" or "magnitude".
        distribution: what the tissue values, B1 and SNR are drawn from (None: brain-like
            values only, `tissue_values.ValueDistribution()`).
        prefetch: batches prepared ahead in a background thread.
        b1_input: also yield each patch's measured B1 (module docstring).
        basis: complex64[r, T]: project each series onto it before the normalisation
            (`transforms.project`, ``TrainConfig.subspace_input``); None: as acquired.
        single_fit: targets are the single-compartment truth by this fit (module docstring);
            None: the rate-weighted truth.
        neighbour_targets: also yield every patch pixel's target (module docstring; P = 3).
    """

    def __init__(
        self,
        slices: Sequence,
        noise_bank: np.ndarray,
        seq: FispSequence,
        cfg: spiral.AcquisitionConfig,
        patch_size: int = 3,
        input_kind: str = "complex",
        *,
        distribution: tissue_values.ValueDistribution | None = None,
        prefetch: int = 2,
        b1_input: bool = False,
        basis: np.ndarray | None = None,
        single_fit: GridFit | None = None,
        neighbour_targets: bool = False,
    ):
        if patch_size not in transforms.PATCH_SIZES:
            raise ValueError(
                f"patch_size must be one of {transforms.PATCH_SIZES}, got {patch_size}"
            )
        if input_kind not in transforms.INPUT_CHANNELS:
            raise ValueError(f"input_kind must be one of {tuple(transforms.INPUT_CHANNELS)}")
        if not slices:
            raise ValueError("SyntheticStream needs at least one training slice")
        if cfg.snr is None:
            raise ValueError("SyntheticStream needs an acquisition with an SNR")
        if neighbour_targets and patch_size != 3:
            raise ValueError("neighbour_targets needs 3 x 3 patches")
        self.slices = list(slices)
        self.noise_bank = noise_bank
        self.seq = seq
        self.patch_size = patch_size
        self.input_kind = input_kind
        self.distribution = distribution or tissue_values.ValueDistribution()
        self.prefetch = prefetch
        self.b1_input = b1_input
        self.basis = basis
        self.single_fit = single_fit
        self.neighbour_targets = neighbour_targets
        self._sigma = np.array([s.noise_rms / cfg.snr for s in self.slices], np.float32)
        self._pattern = spiral.interleaf_pattern(cfg, seq.n_reps)
        counts = np.array([s.centres.size for s in self.slices])
        self._slice_of = np.repeat(np.arange(len(self.slices)), counts)
        self._centre_of = np.concatenate([np.arange(c) for c in counts])
        # per slice, each stored pixel's centre index (-1: the rim outside the brain mask)
        self._centre_index = []
        for sl in self.slices:
            index = np.full(sl.pixels.shape[0], -1, np.int64)
            index[sl.centres] = np.arange(sl.centres.size)
            self._centre_index.append(index)

    @property
    def n_patches(self) -> int:
        """Brain pixels of all training slices (patches per epoch)."""
        return int(self._slice_of.size)

    @property
    def n_reps(self) -> int:
        """Repetitions T."""
        return self.seq.n_reps

    @property
    def channels(self) -> int:
        """Channels C of ``x``."""
        return transforms.INPUT_CHANNELS[self.input_kind]

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """int64[n_patches]: the epoch's permutation of patch ids."""
        rng = np.random.default_rng([_STREAM_KEY, seed, epoch])
        return rng.permutation(self.n_patches)

    def batches(
        self,
        batch_size: int,
        seed: int,
        epoch: int,
        start_batch: int = 0,
        drop_remainder: bool = True,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield the epoch's batches from ``start_batch`` on.

        Each is ``{"x": float32[B, P, P, T, C], "y_ms": float32[B, 2], "tissue": int32[B],
        "index": int64[B]}`` (``tissue``: the centre's dominant label), with ``b1_input``
        ``"b1": float32[B, P, P]``, with ``neighbour_targets`` ``"y_patch_ms": float32[B, P, P,
        2]`` and ``"patch_weight": float32[B, P, P]``.
        """
        if batch_size < 1 or start_batch < 0:
            raise ValueError(
                f"need batch_size >= 1 and start_batch >= 0, got {batch_size, start_batch}"
            )
        order = self.epoch_order(seed, epoch)
        n_batches = batching.n_batches(order.size, batch_size, drop_remainder)

        def produce():
            for b in range(start_batch, n_batches):
                ids = order[b * batch_size : (b + 1) * batch_size]
                yield self.make_batch(ids, np.random.default_rng([_STREAM_KEY, seed, epoch, b]))

        return batching.prefetched(produce, self.prefetch)

    def make_batch(self, ids: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The batch of patch ids ``ids``, every random choice drawn from ``rng``."""
        n, p = ids.size, self.patch_size
        draws = [
            tissue_values.training_values(rng, self.distribution)
            for _ in range(self.distribution.draws_per_batch)
        ]
        coef = compartments.fingerprint_coefficients(self.seq, draws)  # [D, K, T]
        which = np.arange(n) % len(draws)
        slice_ids, centre_ids = self._slice_of[ids], self._centre_of[ids]
        gridded, b1_blurred = [], []
        for s, c in zip(slice_ids, centre_ids, strict=True):
            sl = self.slices[s]
            pixels = sl.neighbours[c].ravel() if p == 3 else sl.centres[c : c + 1]
            gridded.append(sl.gridded[:, :, pixels])
            if self.b1_input:
                b1_blurred.append(sl.b1_blurred[pixels])
        if self.neighbour_targets:
            pixel = np.stack(  # [n, P*P] each patch pixel's centre index, -1 on the rim
                [
                    self._centre_index[s][self.slices[s].neighbours[c].ravel()]
                    for s, c in zip(slice_ids, centre_ids, strict=True)
                ]
            )
            i, j = np.nonzero(pixel >= 0)  # the centre (j = 4) always is a brain pixel
            y_patch = np.zeros((n, p * p, 2), np.float32)
            y_patch[i, j] = self._targets(slice_ids[i], pixel[i, j], which[i], draws, coef)
            y_ms = y_patch[:, p * p // 2].copy()
            rim = np.nonzero(pixel < 0)
            y_patch[rim] = y_ms[rim[0]]
        else:
            y_ms = self._targets(slice_ids, centre_ids, which, draws, coef)
        series = compartments.gridded_series(np.stack(gridded), coef[which], self._pattern)
        snr_factor = np.exp(rng.uniform(*np.log(self.distribution.snr_factor_range), n))
        sigma = self._sigma[slice_ids] / snr_factor.astype(np.float32)
        series += self._noise(rng, n) * sigma[:, None, None]
        if self.basis is not None:
            series = transforms.project(series, self.basis)
        normalised, _ = transforms.normalise_signals(series)  # [B, P*P, T]
        x = transforms.to_channels(normalised, self.input_kind)
        tissue = np.array(
            [self.slices[s].tissue[c] for s, c in zip(slice_ids, centre_ids, strict=True)], np.int32
        )
        x = x.reshape(n, p, p, self.n_reps, -1)
        batch = {"x": x, "y_ms": y_ms, "tissue": tissue, "index": ids}
        if self.neighbour_targets:
            batch["y_patch_ms"] = y_patch.reshape(n, p, p, 2)
            batch["patch_weight"] = (pixel >= 0).astype(np.float32).reshape(n, p, p)
        if self.b1_input:
            amplitude = np.array([d.b1_amplitude for d in draws], np.float32)[which]
            true_blurred = 1.0 + amplitude[:, None] * np.stack(b1_blurred)  # [B, P*P]
            noise = b1_map.patch_noise(rng, n, p)
            batch["b1"] = true_blurred.reshape(n, p, p) * (1.0 + noise)
        return batch

    def _targets(self, slice_ids, centre_ids, draw_of, draws, coefficients) -> np.ndarray:
        """float32[n, 2] (T1, T2) ms of brain pixels under their draws (module docstring).

        ``slice_ids``, ``centre_ids``, ``draw_of``: int[n] each pixel's slice, index among the
        slice's centres and draw; ``draws``, ``coefficients``: the batch's draws and their
        `compartments.fingerprint_coefficients` [D, K, T].
        """
        centres = [(self.slices[s], c) for s, c in zip(slice_ids, centre_ids, strict=True)]
        fractions = np.stack([sl.fractions[:, c] for sl, c in centres], axis=1)  # [N_CLASSES, n]
        if self.single_fit is None:
            y = [compartments.true_maps(fractions[:, i], draws[d]) for i, d in enumerate(draw_of)]
            return np.array(y, np.float32)
        beta = np.array([sl.b1_shape[c] for sl, c in centres])
        maps = compartments.single_compartment_maps(
            self.seq, fractions, draws, beta, self.single_fit, coefficients, draw_of
        )
        return np.stack(maps, -1)

    def sample_targets(self, n: int, seed: int = 0) -> np.ndarray:
        """float64[n, 2] true (T1, T2) in ms of random patches under random draws.

        This is the distribution the network is trained on (for the target normalisation),
        in the rate-weighted truth also for a ``single_fit`` stream: fitting 65,536 samples
        would cost minutes, and the normalisation needs only their mean and spread.
        """
        rng = np.random.default_rng([_STREAM_KEY, seed, 2**31])
        ids = rng.integers(0, self.n_patches, n)
        fractions = np.stack(
            [
                self.slices[s].fractions[:, c]
                for s, c in zip(self._slice_of[ids], self._centre_of[ids], strict=True)
            ],
            axis=1,
        )  # [N_CLASSES, n]
        y = np.empty((n, 2))
        for start in range(0, n, 256):  # one draw per 256 samples
            draw = tissue_values.training_values(rng, self.distribution)
            y[start : start + 256] = np.stack(
                compartments.true_maps(fractions[:, start : start + 256], draw), -1
            )
        return y

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """complex64[n, P*P, T]: per patch and repetition a random bank image and window."""
        p, n_reps = self.patch_size, self.n_reps
        n_bank, height, width = self.noise_bank.shape[1:]
        image = rng.integers(0, n_bank, (n, n_reps))
        row = rng.integers(0, height - p + 1, (n, n_reps))
        col = rng.integers(0, width - p + 1, (n, n_reps))
        offsets = np.arange(p)
        window = self.noise_bank[
            self._pattern[None, :, None, None],
            image[:, :, None, None],
            row[:, :, None, None] + offsets[:, None],
            col[:, :, None, None] + offsets,
        ]  # [n, T, P, P]
        return window.reshape(n, n_reps, p * p).transpose(0, 2, 1)
