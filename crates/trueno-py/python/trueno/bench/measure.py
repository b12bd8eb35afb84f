"""Measurement: the correctness gate, calibrated samples, interleaved rounds, two clocks.

:func:`run_case` checks one case against NumPy and times it; :func:`_summarise` turns
the samples into ratios and a verdict (a :class:`Result`). :func:`_settle_multi` waits for
spinning BLAS workers and then a fixed idle time before a multi-threaded sample;
:func:`_blas_limit` pins BLAS.
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import statistics
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trueno.bench.cases import Case, _close
from trueno.bench.machine import MachineModel, machine_model


@dataclass
class Result:
    kernel: str
    size: str
    group: str
    level: str
    nbytes: int
    flops: float
    status: str  # ok | unavailable | incorrect | error
    target: float | None
    note: str = ""
    numpy_s: float | None = None
    trueno_s: float | None = None
    ratio: float | None = None
    ratio_q1: float | None = None
    ratio_q3: float | None = None
    ratios: list[float] = field(default_factory=list)
    rounds: int = 0
    numpy_cpu_s: float | None = None
    trueno_cpu_s: float | None = None
    ratio_cpu: float | None = None
    ratio_cpu_q1: float | None = None
    ratio_cpu_q3: float | None = None
    cpu_share: float | None = None  # process CPU time / wall time while sampling
    clock: str = ""  # which ratio decides pass/miss: "cpu" or "wall"
    max_abs_err: float | None = None
    throughput: float | None = None  # of trueno, in throughput_unit
    throughput_unit: str = ""
    roofline_s: float | None = None
    roofline_pct: float | None = None
    roofline_basis: str = ""  # which ceiling sets the roofline, with its measured value
    passed: bool | None = None
    error: str = ""


def _blas_limit(threads: int) -> contextlib.AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def _calibrate(fn: Callable[[], Any], min_time: float) -> int:
    """Repetitions that make one sample at least ``min_time`` seconds."""
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return reps
        # Aim 20 % past the target so the sample stays above it despite jitter.
        reps = max(reps + 1, math.ceil(reps * 1.2 * min_time / max(dt, 1e-9)))


def _sample(fn: Callable[[], Any], reps: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per call."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(reps):
        fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return (t1 - t0) / reps, (c1 - c0) / reps


def _quiesce(window: float = 0.02, idle_share: float = 0.05, limit: float = 2.0) -> float:
    """Sleep until this process uses less than ``idle_share`` of a core over a
    ``window`` (no thread of it is spinning: OpenBLAS's workers spin-wait for new work
    after a call before they sleep), at most ``limit`` seconds; returns the time taken.

    Without this, a sample of trueno on two threads right after NumPy's finds OpenBLAS
    still burning one of the two cores (measured on 2 vCPUs: CPU share 194 % with no
    speed-up), and the ratio measures the harness, not the kernels."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(window)
        if (time.process_time() - c0) < idle_share * (time.perf_counter() - t0):
            break
    return time.perf_counter() - start


# Multi-threaded rows: every sample starts after the same idle time, and lasts long
# enough that a first call after idle is a small part of it. Why: on the 2026-12-04 Xeon
# (2 vCPUs under KVM) the first 1024^3 product after 300 ms of sleep took about 1 ms
# longer than the next ones, for OpenBLAS (one thread and two) and trueno alike (in one
# series a two-thread trueno product took 6.0 ms after 1-20 ms of sleep and 9.8 ms after
# 30-50 ms; the host's idle states, not the kernels: no page faults, user time only).
# `_quiesce` alone left the idle time to the peer that ran before: after OpenBLAS's call
# the caller's CPU idled the ~100 ms its workers spin, after trueno's only one 20 ms
# window, so a two-call sample of trueno after OpenBLAS paid the cold start and
# OpenBLAS's after trueno did not.
MULTI_IDLE_S = 0.15
MULTI_MIN_TIME_S = 0.1


def _settle_multi() -> float:
    """`_quiesce`, then a fixed sleep: each multi-threaded sample starts from the same
    idle state, whichever library ran before it."""
    waited = _quiesce()
    time.sleep(MULTI_IDLE_S)
    return waited + MULTI_IDLE_S


def _quantiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


@contextlib.contextmanager
def _gc_paused() -> Generator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_case(
    case: Case,
    rounds: int,
    min_time: float,
    rng: np.random.Generator,
    model: MachineModel | None = None,
) -> Result:
    """Check ``case`` against NumPy, then time it in interleaved rounds."""
    model = model or machine_model()
    roof_s, basis = case.roofline(model)
    res = Result(
        case.kernel,
        case.size,
        case.group,
        case.level(model),
        case.nbytes,
        case.flops,
        "ok",
        case.target,
        case.note,
        roofline_s=roof_s,
        roofline_basis=basis,
    )
    if case.trueno_fn is None:
        res.status = "unavailable"
        res.error = "not available in this build"
        return res
    data = case.setup(rng)
    tfn = case.trueno_fn
    try:
        want = case.numpy_fn(data)
        want = want.copy() if isinstance(want, np.ndarray) else want
        got = tfn(data)
    except LookupError as e:
        res.status, res.error = "unavailable", str(e)
        return res
    except Exception as e:  # a crashing kernel is a reported result, not a crash
        res.status, res.error = "error", f"{type(e).__name__}: {e}"
        return res
    compare = case.compare or _close(case.rtol, case.atol)
    ok, err = compare(want, got)
    res.max_abs_err = err
    if not ok:
        res.status = "incorrect"
        res.error = (
            f"trueno differs from NumPy: max |diff| = {err:.3g} "
            f"(rtol={case.rtol:g}, atol={case.atol:g})"
        )
        return res

    fns = {"numpy": lambda: case.numpy_fn(data), "trueno": lambda: tfn(data)}
    # Multi-threaded rows: OpenBLAS's workers spin for a while after each call (and
    # would take the second core from trueno's second thread, or trueno's from
    # OpenBLAS's if it ever spun); every sample starts once the process is idle, after
    # the same further pause, and lasts long enough to amortise a cold first call.
    multi = case.cores > 1
    settle = _settle_multi if multi else (lambda: 0.0)
    min_time = max(min_time, MULTI_MIN_TIME_S) if multi else min_time
    with _gc_paused():
        for fn in fns.values():  # warm-up: page faults, allocator, caches, lazy init
            fn()
            settle()
        reps = {}
        for name, fn in fns.items():
            reps[name] = _calibrate(fn, min_time)
            settle()
        wall: dict[str, list[float]] = {name: [] for name in fns}
        cpu: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(rounds):
            order = list(fns)
            random.shuffle(order)
            for name in order:
                settle()
                w, c = _sample(fns[name], reps[name])
                wall[name].append(w)
                cpu[name].append(c)
    _summarise(res, case, wall, cpu, rounds)
    return res


def _summarise(
    res: Result,
    case: Case,
    wall: Mapping[str, list[float]],
    cpu: Mapping[str, list[float]],
    rounds: int,
) -> None:
    """Ratios per round on both clocks; the verdict clock decides pass/miss.

    Single-threaded rows are judged on process CPU time: it is what the kernel cost when
    it was on a core, so a shared machine descheduling the benchmark (visible as a CPU
    share below 1) does not move it. Multi-threaded rows are judged on wall time, since
    CPU time would sum the threads (and count OpenBLAS's spin-waiting).
    """
    res.rounds = rounds
    res.ratios = [n / t for n, t in zip(wall["numpy"], wall["trueno"], strict=True)]
    res.ratio_q1, res.ratio, res.ratio_q3 = _quantiles(res.ratios)
    res.numpy_s = statistics.median(wall["numpy"])
    res.trueno_s = statistics.median(wall["trueno"])
    res.numpy_cpu_s = statistics.median(cpu["numpy"])
    res.trueno_cpu_s = statistics.median(cpu["trueno"])
    shares = [c / w for name in wall for c, w in zip(cpu[name], wall[name], strict=True) if w > 0]
    res.cpu_share = statistics.median(shares) if shares else None
    cpu_ok = all(c > 0 for name in cpu for c in cpu[name])
    if cpu_ok:
        ratios_cpu = [n / t for n, t in zip(cpu["numpy"], cpu["trueno"], strict=True)]
        res.ratio_cpu_q1, res.ratio_cpu, res.ratio_cpu_q3 = _quantiles(ratios_cpu)
    use_cpu = case.cores == 1 and cpu_ok
    res.clock = "cpu" if use_cpu else "wall"
    verdict_ratio = res.ratio_cpu if use_cpu else res.ratio
    t = res.trueno_cpu_s if use_cpu else res.trueno_s
    if case.compute_bound:
        res.throughput, res.throughput_unit = case.flops / t / 1e9, "GFLOP/s"
    else:
        res.throughput, res.throughput_unit = case.nbytes / t / 1e9, "GB/s"
    if res.roofline_s:
        res.roofline_pct = 100.0 * res.roofline_s / t
        if res.roofline_pct > 100.0:
            # A kernel cannot beat the hardware: the probe missed a faster way (or was
            # run on a busier machine). Say so; never clip the number.
            res.note = (
                f"{res.note}; FASTER THAN THE PROBED CEILING ({res.roofline_basis}): the "
                "probe is wrong; re-measure with --remeasure on an idle machine"
            ).lstrip("; ")
    if case.target is not None and verdict_ratio is not None:
        res.passed = verdict_ratio >= case.target
    if case.max_seconds is not None and res.passed is not False:
        res.passed = t <= case.max_seconds
        res.note = f"{res.note}; must take <= {case.max_seconds * 1e3:g} ms".lstrip("; ")
