"""Metrics to `metrics.csv` and TensorBoard event files, with no TensorFlow dependency.

TensorBoard reads TFRecord files of `Event` protocol buffers. Only scalars are written, so the
two messages needed are encoded by hand (about 40 lines) instead of pulling in tensorboardX and
protobuf: Event{wall_time=1: double, step=2: int64, file_version=3: string, summary=5: Summary},
Summary{value=1: repeated Value}, Value{tag=1: string, simple_value=2: float}.
TFRecord framing: uint64 length, uint32 masked CRC-32C of the length, data, masked CRC of data.
"""

from __future__ import annotations

import csv
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path

# ---------------------------------------------------------------------------- CRC-32C (Castagnoli)


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()  # constant lookup table, not state


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (crc32c(b"123456789") == 0xE3069283)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the payload, its masked CRC."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", _masked_crc(length))
        + data
        + struct.pack("<I", _masked_crc(data))
    )


# ---------------------------------------------------------------------------- protobuf encoding


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64 as two's complement, as protobuf does
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_event(
    wall_time: float, step: int, *, scalars: Mapping[str, float] | None = None, file_version=None
) -> bytes:
    """Serialise an `Event` with scalar summaries (or the file-version header event)."""
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        msg += _len_field(3, file_version.encode())
    if scalars:
        values = b"".join(
            _len_field(1, _len_field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", v))
            for tag, v in scalars.items()
        )
        msg += _len_field(5, values)
    return msg


def read_records(path: str | Path) -> list[bytes]:
    """Payloads of a TFRecord file, CRCs checked (used by tests and for inspection)."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        (c,) = struct.unpack_from("<I", data, pos + 8)
        if c != _masked_crc(data[pos : pos + 8]):
            raise ValueError(f"{path}: bad length CRC at byte {pos}")
        payload = data[pos + 12 : pos + 12 + n]
        (c,) = struct.unpack_from("<I", data, pos + 12 + n)
        if c != _masked_crc(payload):
            raise ValueError(f"{path}: bad data CRC at byte {pos}")
        out.append(payload)
        pos += 16 + n
    return out


# ---------------------------------------------------------------------------- writers

CSV_COLUMNS = (
    "step",
    "epoch",
    "split",
    "loss",
    "grad_norm",
    "val_loss_ms",
    "rmse_t1_ms",
    "rmse_t2_ms",
    *(
        f"{metric}_{tissue}_{unit}"
        for tissue in ("wm", "gm", "csf")
        for metric, unit in (("val_loss", "ms"), ("rme_t1", "pct"), ("rme_t2", "pct"))
    ),
    "patches_per_s",
    "wall_s",
)


class MetricsWriter:
    """Appends rows to `workdir/metrics.csv` and scalars to a TensorBoard event file.

    On resume from step `resume_step`, CSV rows logged after that step (by the run that was
    interrupted, after its last checkpoint) are dropped, so the file reads like one unbroken run.
    """

    def __init__(self, workdir: str | Path, resume_step: int = 0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.workdir / "metrics.csv"
        rows = []
        if self.csv_path.exists():
            with self.csv_path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.csv_path.open("w", newline="") as f:  # rewrite: header plus the kept rows
            w = csv.DictWriter(f, CSV_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        tb_dir = self.workdir / "tensorboard"
        tb_dir.mkdir(exist_ok=True)
        now = time.time()
        self.tb_path = tb_dir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
        with self.tb_path.open("ab") as f:
            f.write(tfrecord(encode_event(now, 0, file_version="brain.Event:2")))

    def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        """One CSV row (known columns only) and TensorBoard scalars "<split>/<name>"."""
        row = {"step": step, "split": split}
        row.update({k: v for k, v in metrics.items() if k in CSV_COLUMNS})
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, CSV_COLUMNS).writerow(row)
        scalars = {
            f"{split}/{k}": float(v)
            for k, v in metrics.items()
            if k not in ("step", "epoch") and isinstance(v, int | float)
        }
        with self.tb_path.open("ab") as f:
            f.write(tfrecord(encode_event(time.time(), step, scalars=scalars)))
