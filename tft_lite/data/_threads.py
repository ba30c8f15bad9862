"""Background threads for prefetch, parallel map and parallel interleave.

numpy, pyarrow, zlib and the C Example codec release the GIL, so threads overlap file
reading, decompression and parsing. Two rules keep threads from outliving their use:

* every producer thread is a daemon that checks a stop event at least every 0.1 s while its
  queue is full, so a consumer that stops early (take(), break, garbage collection) frees it
  and nothing blocks interpreter exit;
* exceptions raised in a thread are re-raised, unchanged, in the consumer.
This module imports only the standard library.
"""
from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

_POLL_SECONDS = 0.1


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Blocking put that gives up (returns False) once `stop` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _produce(make_iterator, q, stop):
    iterator = None
    try:
        iterator = make_iterator()
        for item in iterator:
            if not _put(q, (True, item), stop):
                return
        _put(q, (False, None), stop)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        _put(q, (False, exc), stop)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def background(make_iterator, maxsize: int, name: str = "tft_lite.data"):
    """Yields the items of make_iterator() produced ahead on a daemon thread.

    At most `maxsize` items wait in the queue. Closing this generator stops the thread.
    """
    q: queue.Queue = queue.Queue(max(1, maxsize))
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(make_iterator, q, stop), daemon=True,
                              name=name)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if ok:
                yield item
            elif item is None:
                return
            else:
                raise item
    finally:
        stop.set()


def parallel_map(fn, items, num_workers: int, deterministic: bool = True):
    """Yields fn(item) for each item, computed on `num_workers` threads.

    In input order when `deterministic`; otherwise in completion order. At most
    2 * num_workers calls are in flight, so an infinite input is fine.
    """
    pool = ThreadPoolExecutor(num_workers, thread_name_prefix="tft_lite.data.map")
    pending: collections.deque = collections.deque()
    window = 2 * num_workers
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield from _ready(pending, deterministic)
        while pending:
            yield from _ready(pending, deterministic)
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _ready(pending: collections.deque, deterministic: bool):
    """Waits for (and yields the results of) the oldest call, or any finished calls."""
    if deterministic:
        yield pending.popleft().result()
        return
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in [f for f in pending if f in done]:
        pending.remove(future)
        yield future.result()
