"""Batch counting and background prefetching, shared by the slice-file loader and the stream.

:func:`prefetched` runs a batch generator in a background thread (``prefetch`` items ahead,
bounded queue); closing the consumer (``close()``, ``break`` from a ``for`` loop, or garbage
collection) stops and joins the thread. Used by ``rinq_jax.data.pipeline.loader.PatchDataset`` and
``rinq_jax.data.pipeline.stream.SyntheticStream``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless the consumer has gone; returns whether the item was queued."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def n_batches(n_patches: int, batch_size: int, drop_remainder: bool = True) -> int:
    """Batches of ``batch_size`` in an epoch of ``n_patches`` (the last, short one kept or not)."""
    full, rest = divmod(n_patches, batch_size)
    return full + (0 if drop_remainder or rest == 0 else 1)


def prefetched(make_items: Callable[[], Iterator], prefetch: int) -> Iterator:
    """Run ``make_items()`` in a background thread, ``prefetch`` items ahead.

    Errors in the thread are re-raised in the consumer. When the consumer stops (exhausted,
    ``close()``, ``break``, garbage collection) the thread is told to stop and joined.
    """
    if prefetch <= 0:
        yield from make_items()
        return
    q: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def work():
        items = make_items()
        try:
            for item in items:
                if not _put(q, ("item", item), stop):
                    return
            _put(q, ("done", None), stop)
        except BaseException as err:  # forwarded to the consumer, which re-raises it
            _put(q, ("error", err), stop)
        finally:
            items.close()

    thread = threading.Thread(target=work, name="rinq-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)
