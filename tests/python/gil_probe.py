"""Does a call release the GIL? Count a spinning Python thread's ticks inside it.

While a call holds the GIL, no other Python thread runs, so a spinner cannot record a
single timestamp inside the call's time window. Released, it records thousands, provided
it gets a core: on a loaded machine a short call can end before the spinner is scheduled,
so the call repeats until its windows add up to ``min_seconds`` (a held GIL gives zero
ticks however long the windows are).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def ticks_during(call: Callable[[], object], repeats: int = 3, min_seconds: float = 0.2) -> int:
    """Spinner ticks inside at least `repeats` runs of `call`, `min_seconds` of them in all."""
    ticks: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())

    spinner = threading.Thread(target=spin)
    spinner.start()
    windows = []
    try:
        time.sleep(0.01)
        while len(windows) < repeats or sum(hi - lo for lo, hi in windows) < min_seconds:
            t0 = time.perf_counter()
            call()
            windows.append((t0, time.perf_counter()))
    finally:
        stop.set()
        spinner.join()
    return sum(1 for tick in ticks for (lo, hi) in windows if lo < tick < hi)
