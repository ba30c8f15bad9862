"""Background threads: order, errors, and stopping when the consumer stops."""
from __future__ import annotations

import threading
import time

import pytest

from tft_lite.data import _threads


def test_background_yields_everything_in_order():
    assert list(_threads.background(lambda: iter(range(100)), 3)) == list(range(100))


def test_background_reraises_the_producers_exception():
    def failing():
        yield 1
        raise OSError("disk gone")
    gen = _threads.background(failing, 2)
    assert next(gen) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(gen)


def test_background_thread_stops_and_closes_its_source_when_closed():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()
    gen = _threads.background(endless, 1, name="tft_lite.data.test")
    next(gen)
    gen.close()
    assert closed.wait(5)


def test_parallel_map_order_and_window():
    running, peak = [0], [0]
    lock = threading.Lock()

    def work(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.001)
        with lock:
            running[0] -= 1
        return x * 2
    assert list(_threads.parallel_map(work, range(40), 3)) == [x * 2 for x in range(40)]
    assert peak[0] <= 3


def test_parallel_map_on_an_endless_input_stops_early():
    out = _threads.parallel_map(lambda x: x, iter(int, 1), 2)  # iter(int, 1): endless zeros
    assert [next(out) for _ in range(5)] == [0] * 5
    out.close()
