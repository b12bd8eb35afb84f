"""The machine a benchmark ran on: one description shared by every benchmark of the stack.

:func:`machine_info` is the one function trueno's harness and realizar's benchmark modules
(``realizar.bench``, ``bench_serving``, ``bench_llm``, ``bench_aprender``, ``bench_rag``)
describe the machine with: trueno's measured model (``trueno.machine()``: caches,
features, probe, GEMM blocking) plus the run-time facts a reader needs to judge the
numbers (CPU brand and SIMD flags, CPU count, load average, BLAS build and threads,
versions, OpenBLAS environment). :func:`machine_model` turns trueno's probe into the
ceilings the rooflines are computed from; :func:`is_busy` is the one busy-machine rule.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------
# The machine model: measured by trueno itself (``trueno.machine()``: cache sizes from
# the OS, peak FLOP/s and bandwidth per level from its probe, cached per machine), plus
# the Python call floor measured here. Nothing about any particular CPU is written down.
# --------------------------------------------------------------------------------------

BUSY_LOAD_PER_CPU = 0.75  # loadavg above this x nproc (1.5 on 2 cores) flags a busy run
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REMOVED_ENV_MARK = "TRUENO_BENCH_REMOVED_ENV"
LEVELS = ("L1", "L2", "L3", "DRAM")


@dataclass(frozen=True)
class MachineModel:
    """The ceilings every row's roofline is computed from.

    ``caches``: bytes per level (``L1`` data, ``L2``, ``L3``; 0 when absent).
    ``read`` / ``rw``: bytes/s of one core per level, for pure reads (best of 1, 2 and 4
    streams) and for a ``c = a + b`` read-write mix (best of cached and streaming
    stores). ``peak``: f32 FLOP/s of one core per backend. ``call_floor_s``: the
    cheapest call into the extension (``trueno.sum`` of an empty array).
    """

    caches: Mapping[str, int]
    read: Mapping[str, float]
    rw: Mapping[str, float]
    peak: Mapping[str, float]
    call_floor_s: float
    backend: str
    origin: str = ""
    probe_loadavg: Sequence[float] | None = None

    def level_of(self, nbytes: int) -> str:
        """The smallest cache level a working set of ``nbytes`` fits in, else DRAM."""
        for level in ("L1", "L2", "L3"):
            if nbytes <= self.caches.get(level, 0):
                return level
        return "DRAM"

    def bandwidth(self, level: str, traffic: str) -> float:
        table = self.rw if traffic == "rw" else self.read
        if level in table:
            return table[level]
        # A CPU without that level (no L3): the next level out bounds it.
        for lv in LEVELS[LEVELS.index(level) :]:
            if lv in table:
                return table[lv]
        return min(table.values())

    def peak_flops(self, elem_bytes: int = 4, backend: str | None = None) -> float:
        """FLOP/s of one core: f32 FMA chains of ``backend`` (default: the active one);
        f64 runs at half the lanes."""
        return self.peak[backend or self.backend] * 4 / elem_bytes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "caches": dict(self.caches),
            "read": dict(self.read),
            "rw": dict(self.rw),
            "peak": dict(self.peak),
        }


def _call_floor_s() -> float:
    """The cheapest Python call into the extension, best of many samples: no kernel
    called from Python can take less."""
    import trueno  # noqa: PLC0415

    empty = np.empty(0, dtype=np.float32)
    fn = trueno.sum
    best = math.inf
    for _ in range(30):
        t0 = time.perf_counter()
        for _ in range(1000):
            fn(empty)
        best = min(best, (time.perf_counter() - t0) / 1000)
    return best


_MODEL: MachineModel | None = None


def machine_model(refresh: bool = False) -> MachineModel:
    """The model for this process: trueno's probe (cached per machine; ``refresh``
    re-measures it) and the call floor measured now. Memoised."""
    global _MODEL  # noqa: PLW0603  (one model per benchmark process)
    if _MODEL is not None and not refresh:
        return _MODEL
    import trueno  # noqa: PLC0415

    m = trueno.machine(refresh=refresh)
    probe = m["probe"]
    caches = m["caches"]
    _MODEL = MachineModel(
        caches={"L1": caches["l1d_bytes"], "L2": caches["l2_bytes"], "L3": caches["l3_bytes"]},
        read={b["level"]: b["read"] for b in probe["bandwidth"]},
        rw={b["level"]: b["add"] for b in probe["bandwidth"]},
        peak={p["backend"]: p["f32_flops"] for p in probe["peaks"]},
        call_floor_s=_call_floor_s(),
        backend=_trueno_backend(),
        origin=m["origin"],
        probe_loadavg=probe.get("loadavg"),
    )
    return _MODEL


def level_of(nbytes: int) -> str:
    """The cache level a working set of ``nbytes`` lives in on this machine."""
    return machine_model().level_of(nbytes)


# --------------------------------------------------------------------------------------
# Machine metadata
# --------------------------------------------------------------------------------------

_FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
)


def _cpuinfo() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), "x86_64"):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    return {"model": model, "flags": sorted(f for f in _FLAGS_OF_INTEREST if f in flags)}


def loadavg() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages, or None where the OS keeps none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _threadpools() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")
    return [{k: v for k, v in pool.items() if k in keep} for pool in threadpool_info()]


def _trueno_backend() -> str:
    import trueno  # noqa: PLC0415

    for name in ("backend", "active_backend", "get_backend"):
        fn = getattr(trueno, name, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                return str(fn())
        elif isinstance(fn, str):
            return fn
    return "unknown (this build does not report it)"


def _version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"not installed"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(
    model: MachineModel | None = None, *, packages: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything needed to judge (or reproduce) a run, including the measured machine
    model the rooflines come from (``roofline_model``) and trueno's own description
    (``trueno_machine``: caches, features, probe, GEMM blocking).

    ``packages``: further distributions whose versions the report records, under
    ``versions`` (``{"scikit-learn": "1.9.1", "mlflow": "not installed"}``); the key is
    present only when some are asked for, so trueno's own report keeps its schema.
    """
    import trueno  # noqa: PLC0415

    model = model or machine_model()

    trueno_version = _version("trueno")
    if trueno_version == "not installed":  # a source checkout, not a distribution
        trueno_version = getattr(trueno, "__version__", "unknown")
    removed = os.environ.get(_REMOVED_ENV_MARK)
    ncpu = os.cpu_count() or 1
    info = {
        "cpu": _cpuinfo(),
        "ncpu": ncpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "trueno": trueno_version,
        "trueno_source_hash": getattr(trueno, "__source_hash__", ""),
        "trueno_backend": _trueno_backend(),
        "trueno_backend_env": os.environ.get("TRUENO_BACKEND", ""),
        "threadpools": _threadpools(),
        "openblas_env": {k: os.environ[k] for k in OPENBLAS_ENV if k in os.environ},
        "openblas_env_removed": json.loads(removed) if removed else {},
        "loadavg_start": loadavg(),
        "roofline_model": model.as_dict(),
        "trueno_machine": trueno.machine(),
    }
    if packages:
        info["versions"] = {name: _version(name) for name in packages}
    return info


def is_busy(load: Sequence[float] | None, ncpu: int) -> bool:
    """Whether a 1-minute load average ``load`` means other work shared the CPUs."""
    return load is not None and load[0] > BUSY_LOAD_PER_CPU * ncpu


def describe(machine: Mapping[str, Any]) -> str:
    """One line for a report: CPU, CPU count and load average of a :func:`machine_info`,
    flagged when the machine was busy."""
    load = machine["loadavg_start"]
    busy = " (**busy: numbers are noisy**)" if is_busy(load, machine["ncpu"]) else ""
    shown = "unknown" if load is None else f"{load[0]:.2f}"
    return f"{machine['cpu']['model']}, {machine['ncpu']} CPUs, load average {shown}{busy}"
