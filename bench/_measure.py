"""Timing helpers shared by the benchmarks: run for a fixed time, print ``name: value unit`` lines."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_second(fn: Callable[[], object], seconds: float = 1.5) -> float:
    """Calls of ``fn`` per second of wall time, after one warm-up call."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def report(name: str, value: float, unit: str) -> None:
    shown = f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    print(f"{name}: {shown} {unit}", flush=True)
