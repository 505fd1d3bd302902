"""FISP schedules: the paper's ranges, a stable hash, file round trips and clear errors."""

import hashlib
import struct

import numpy as np
import pytest

from rinq_jax.physics.schedule_files import load_sequence, save_sequence
from rinq_jax.physics.sequence import FispSequence, paper_sequence


def test_paper_sequence_matches_the_papers_ranges():
    seq = paper_sequence()
    assert seq.n_reps == 3000
    assert seq.flip_deg.min() == pytest.approx(5.0) and seq.flip_deg.max() == pytest.approx(74.0)
    assert 12.0 <= seq.tr_ms.min() and seq.tr_ms.max() <= 15.0
    assert seq.tr_ms.max() - seq.tr_ms.min() > 2.0
    assert seq.ti_ms is not None and np.all(seq.phase_deg == 0)
    # Smooth lobes: neighbouring repetitions differ by far less than the range.
    assert np.abs(np.diff(seq.flip_deg)).max() < 2.0
    assert np.abs(np.diff(seq.tr_ms)).max() < 0.2


def test_hash_is_stable_and_sensitive():
    assert paper_sequence(seed=0).hash == paper_sequence(seed=0).hash
    assert paper_sequence(seed=0).hash != paper_sequence(seed=1).hash
    seq = paper_sequence(100)
    assert FispSequence(seq.flip_deg, seq.tr_ms, seq.phase_deg, seq.te_ms, None).hash != seq.hash
    # Pinned digests: dictionaries and slice files record the schedule's hash, so a change to
    # the paper schedule or to the digest would orphan every file written before it.
    assert paper_sequence().hash == "b73cb583f6345ce6"
    small = FispSequence([10.0, 20.0], [12.0, 13.0], [0.0, 0.0], 2.0, 20.0)
    assert small.hash == "48c93f369fbed1f3"
    # ... and the digest is the documented one: SHA-256 over each field's name and float32
    # little-endian values, then "te_ms=..;ti_ms=..", first 16 hex digits.
    digest = hashlib.sha256()
    for name, values in (("flip_deg", (10, 20)), ("tr_ms", (12, 13)), ("phase_deg", (0, 0))):
        digest.update(name.encode() + struct.pack("<2f", *values))
    digest.update(b"te_ms=2.0;ti_ms=20.0")
    assert small.hash == digest.hexdigest()[:16]
    assert (
        FispSequence.from_dict({"flip_deg": [10, 20], "tr_ms": [12, 13], "te_ms": 2, "ti_ms": 20})
        == small
    )


def test_dict_npz_and_csv_round_trips(tmp_path):
    seq = paper_sequence(50, seed=4)
    assert FispSequence.from_dict(seq.to_dict()) == seq
    save_sequence(seq, tmp_path / "seq.npz")
    assert load_sequence(tmp_path / "seq.npz") == seq
    assert list(tmp_path.iterdir()) == [tmp_path / "seq.npz"]
    rows = "\n".join(
        f"{f!r},{t!r}" for f, t in zip(seq.flip_deg.tolist(), seq.tr_ms.tolist(), strict=True)
    )
    (tmp_path / "seq.csv").write_text(
        f"# te_ms = {seq.te_ms}\n# ti_ms = {seq.ti_ms}\nflip_deg,tr_ms\n{rows}\n"
    )
    assert load_sequence(tmp_path / "seq.csv") == seq
    no_inversion = load_sequence(tmp_path / "seq.csv", ti_ms="none")
    assert no_inversion.ti_ms is None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"flip_deg": [10.0, 20.0], "tr_ms": [12.0]}, "tr_ms: expected 2 repetitions"),
        ({"flip_deg": [10.0], "tr_ms": [-1.0]}, "TR must be > 0"),
        ({"flip_deg": [10.0], "tr_ms": [12.0], "te_ms": 13.0}, "te_ms"),
        ({"flip_deg": [np.nan], "tr_ms": [12.0]}, "NaN"),
        ({"flip_deg": [10.0], "tr_ms": [12.0], "ti_ms": -5.0}, "ti_ms"),
    ],
)
def test_invalid_sequences_are_refused(kwargs, match):
    fields = {"phase_deg": np.zeros(len(kwargs["flip_deg"])), "te_ms": 2.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        FispSequence(**fields)


def test_load_names_the_file_and_field(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("flip_deg\n10\n20\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*tr_ms"):
        load_sequence(path, te_ms=2.0)
