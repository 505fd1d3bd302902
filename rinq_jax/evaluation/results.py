"""What `rinq_jax.evaluation.evaluate.evaluate` returns, and the lines and figures it condenses to.

`EvaluationResult.to_json` is ``metrics.json`` (its layout: the module docstring of
`rinq_jax.evaluation.evaluate`); the experiments read the typed objects, not the JSON. The
metric tables inside (``aggregate``: `metrics.pooled_metrics`; ``regions``: per truth,
`metrics.region_metrics`) are the JSON those functions document.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

HEADLINE_TISSUES = ("wm", "gm")  # the pure-pixel medians printed first


@dataclasses.dataclass(frozen=True)
class MethodResult:
    """One method's scores (a network, a form of dictionary matching, a baseline).

    Attributes:
        aggregate: `metrics.pooled_metrics` over every slice with true maps, against the rate
            truth; None when the method did not score all of them.
        regions: per truth ("rate", "single"), `metrics.region_metrics` of the same pixels;
            None without tissue fractions.
        seconds_per_slice: mean wall time per slice (every slice).
        slices: per slice file name, its scores, or for a slice without truth its map summary
            (`summary.map_summary`).
        about: what the method is: a network's ``run_dir``, ``step``, ``model``,
            ``input_kind``; matching's ``dictionary``; the mean predictor's ``constant_ms``.
    """

    aggregate: dict[str, Any] | None
    regions: dict[str, Any] | None
    seconds_per_slice: float
    slices: dict[str, dict[str, Any]]
    about: dict[str, Any] = dataclasses.field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The paper's loss, RME +- std per parameter and the time per slice.

        Raises:
            ValueError: no slice with true maps was scored.
        """
        a = self.aggregate
        if a is None:
            raise ValueError("no slice with true maps was scored")
        return {
            "loss_ms": a["val_loss_ms"],
            "t1_rme_pct": a["t1"]["rme_pct"],
            "t1_rme_std_pct": a["t1"]["rme_std_pct"],
            "t2_rme_pct": a["t2"]["rme_pct"],
            "t2_rme_std_pct": a["t2"]["rme_std_pct"],
            "seconds_per_slice": self.seconds_per_slice,
        }

    def pure_truth(self) -> str | None:
        """The truth the pure-pixel medians are read against: "single" when scored, else "rate"."""
        if not self.regions:
            return None
        return "single" if "single" in self.regions else "rate"

    def pure_median_pct(self, tissue: str, parameter: str, truth: str | None = None) -> float:
        """Median relative error (%) of ``parameter`` ("t1", "t2") in pure ``tissue`` pixels."""
        pure = self.regions[truth or self.pure_truth()]["classes"]["pure"]
        return pure[tissue][parameter]["median_pct"]

    def tissue_rme_pct(self, tissue: str, parameter: str) -> float:
        """Relative mean error (%) of ``parameter`` over all ``tissue`` pixels (NaN: none)."""
        t = (self.aggregate.get("tissues") or {}).get(tissue)
        return t[parameter]["rme_pct"] if t else float("nan")

    def to_json(self) -> dict[str, Any]:
        """The method's entry of metrics.json's ``models``."""
        fields = ("aggregate", "regions", "seconds_per_slice", "slices")
        return {**{f: getattr(self, f) for f in fields}, **self.about}


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """An evaluation of methods on slice files.

    Attributes:
        files: the slice files, in order.
        files_without_truth: those without true maps (their maps are the output).
        pixel_classes: the definitions of the pixel classes and truths, in words.
        methods: per method label, its `MethodResult`.
    """

    files: list[str]
    files_without_truth: list[str]
    pixel_classes: dict[str, Any]
    methods: dict[str, MethodResult]

    def to_json(self) -> dict[str, Any]:
        """metrics.json."""
        return {
            "files": self.files,
            "files_without_truth": self.files_without_truth,
            "pixel_classes": self.pixel_classes,
            "models": {name: m.to_json() for name, m in self.methods.items()},
        }

    def summary_lines(self) -> list[str]:
        """Human-readable lines per method.

        The headline first: median relative T1 / T2 errors of pure white and grey matter
        (single-compartment truth when scored), then the paper's loss and RME over all pixels.
        """
        lines = []
        unscored = {Path(f).name for f in self.files_without_truth}
        for name, m in self.methods.items():
            truth = m.pure_truth()
            if truth:
                medians = " | ".join(
                    f"{t.upper()} {m.pure_median_pct(t, 't1'):5.1f} / "
                    f"{m.pure_median_pct(t, 't2'):5.1f} %"
                    for t in HEADLINE_TISSUES
                )
                lines.append(
                    f"{name:36s} pure pixels, median T1 / T2 error ({truth} truth): {medians}"
                )
            if m.aggregate is not None:
                h = m.headline()
                lines.append(
                    f"{name:36s} val loss {h['loss_ms']:8.2f} ms | "
                    f"T1 RME {h['t1_rme_pct']:6.2f} ± {h['t1_rme_std_pct']:6.2f} % | "
                    f"T2 RME {h['t2_rme_pct']:6.2f} ± {h['t2_rme_std_pct']:6.2f} % | "
                    f"{m.seconds_per_slice:.3f} s/slice"
                )
            maps_only = [s for n, s in m.slices.items() if n in unscored]
            if maps_only:
                t1 = np.median([s["t1_median_ms"] for s in maps_only])
                t2 = np.median([s["t2_median_ms"] for s in maps_only])
                lines.append(
                    f"{name:36s} maps only ({len(maps_only)} slice(s) without true maps): "
                    f"median T1 {t1:.0f} ms, T2 {t2:.0f} ms | "
                    f"{m.seconds_per_slice:.3f} s/slice"
                )
        return lines
