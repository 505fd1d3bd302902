"""Tissue classes of the brain phantoms and their population values at 3 T.

The labels of ``Phantom.tissue`` and indices of ``Phantom.fractions``
(`rinq_jax.data.subjects.phantom`, `rinq_jax.data.subjects.anatomy`), the brain classes a network is
trained and evaluated on, each tissue's literature T1, T2 (ms) and proton density (relative to CSF =
1) with its between-subject and texture spread (sources cited at ``TISSUE_PROPERTIES``), the paper's
dictionary range that every value must lie in, and the dominant tissue and brain mask of
partial-volume pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "BACKGROUND",
    "BONE",
    "BRAIN_LABELS",
    "CSF",
    "DICT_T1_RANGE_MS",
    "DICT_T2_RANGE_MS",
    "FAT",
    "GM",
    "LESION",
    "MUSCLE_SKIN",
    "N_CLASSES",
    "TISSUES",
    "TISSUE_PROPERTIES",
    "WM",
    "TissueProperties",
    "SCORED_TISSUES",
    "dominant_tissue",
]


# Tissue labels (values of ``Phantom.tissue``; index of ``Phantom.fractions``).
BACKGROUND, WM, GM, CSF, FAT, MUSCLE_SKIN, BONE, LESION = range(8)
N_CLASSES = 8

TISSUES: Mapping[int, str] = MappingProxyType(
    {
        BACKGROUND: "background",
        WM: "wm",
        GM: "gm",
        CSF: "csf",
        FAT: "fat",
        MUSCLE_SKIN: "muscle_skin",
        BONE: "bone",
        LESION: "lesion",
    }
)
"""Label -> tissue name for ``Phantom.tissue``."""

BRAIN_LABELS: tuple[int, ...] = (WM, GM, CSF, LESION)
"""Labels inside the brain mask: the pixels a network is trained and evaluated on."""

SCORED_TISSUES: Mapping[str, int] = MappingProxyType({"wm": WM, "gm": GM, "csf": CSF})
"""Name -> label of the tissues whose errors validation and evaluation report one by one."""

# The paper's dictionary range (Hoppe et al. 2019, Sect. "Ground-truth data"): every phantom
# value must be representable so that dictionary matching can recover it.
DICT_T1_RANGE_MS = (10.0, 4500.0)
DICT_T2_RANGE_MS = (2.0, 3000.0)


@dataclass(frozen=True)
class TissueProperties:
    """Population mean relaxation times and proton density of one tissue at 3 T.

    Attributes:
        name: tissue name, as in :data:`TISSUES`.
        t1_ms: population mean longitudinal relaxation time, ms.
        t2_ms: population mean transverse relaxation time, ms.
        pd: proton density (water content) relative to CSF = 1.
        subject_cv: relative standard deviation of the per-subject mean (T1 and T2 each;
            PD gets half of it).
        texture_cv: relative standard deviation of pixel-to-pixel texture.

    """

    name: str
    t1_ms: float
    t2_ms: float
    pd: float
    subject_cv: float
    texture_cv: float


# Values at 3 T. Brain tissue: T1 from Wansapura et al., JMRI 9:531 (1999) (WM 832 ms, GM
# 1331 ms) and Lu et al., JMRI 22:13 (2005) (CSF ~4160 ms); T2 chosen inside the span between
# spin-echo values (Wansapura 1999; Stanisz et al., MRM 54:507 (2005)) and the lower MRF-FISP
# in-vivo values (Jiang et al., MRM 74:1621 (2015)), since the phantom stands in for MRF
# ground truth. Fat and muscle: Gold et al., AJR 183:343 (2004) (subcutaneous fat T1 ~370-380
# ms; muscle T1 ~1400 ms, T2 ~32 ms) and Stanisz 2005 (muscle T1 1412 ms, T2 50 ms); skin is
# lumped with muscle. PD: water content WM 0.69, GM 0.80 (Neeb et al., NeuroImage 31:1156
# (2006)). Cortical bone: T1 ~140-260 ms, T2* ~0.4-0.5 ms (Reichert et al., MRI 23:611
# (2005)); its T2 is raised to the dictionary's 2 ms floor, and with PD 0.05 it is nearly
# dark, as in a FISP scan. Lesion: an MS-like demyelinating lesion, values chosen inside the
# range reported for chronic lesions at 3 T (T1 ~1100-1600 ms, T2 ~90-180 ms); no single
# study. Diploe (skull marrow) uses the fat class.
TISSUE_PROPERTIES: Mapping[int, TissueProperties] = MappingProxyType(
    {
        BACKGROUND: TissueProperties("background", 0.0, 0.0, 0.0, 0.0, 0.0),
        WM: TissueProperties("wm", 830.0, 60.0, 0.69, 0.04, 0.02),
        GM: TissueProperties("gm", 1330.0, 85.0, 0.80, 0.04, 0.025),
        CSF: TissueProperties("csf", 4100.0, 1800.0, 1.00, 0.015, 0.01),
        FAT: TissueProperties("fat", 375.0, 95.0, 0.90, 0.04, 0.03),
        MUSCLE_SKIN: TissueProperties("muscle_skin", 1350.0, 40.0, 0.75, 0.04, 0.03),
        BONE: TissueProperties("bone", 250.0, 2.0, 0.05, 0.05, 0.03),
        LESION: TissueProperties("lesion", 1350.0, 130.0, 0.80, 0.08, 0.04),
    }
)
"""Label -> population values at 3 T (citations in the module source)."""


def dominant_tissue(fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label map and brain mask from area fractions.

    A pixel is brain when brain classes cover at least half of it; its label is then the
    largest brain class, otherwise the largest non-brain class. Mask and labels therefore
    always agree (``mask == isin(tissue, BRAIN_LABELS)``).
    """
    is_brain = np.zeros(N_CLASSES, bool)
    is_brain[list(BRAIN_LABELS)] = True
    brain_fraction = fractions[is_brain].sum(axis=0)
    mask = brain_fraction >= 0.5
    brain_best = np.where(is_brain[:, None, None], fractions, -1.0).argmax(axis=0)
    other_best = np.where(is_brain[:, None, None], -1.0, fractions).argmax(axis=0)
    tissue = np.where(mask, brain_best, other_best).astype(np.uint8)
    return tissue, mask
