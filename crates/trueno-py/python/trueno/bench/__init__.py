"""trueno vs NumPy: the honest benchmark (``python -m trueno.bench``).

What makes the numbers trustworthy (see docs/benchmarks.md):

1. **Correctness first.** Every kernel's trueno result is compared with NumPy's
   (``allclose``) before it is timed; a wrong kernel is reported and the exit code is 1.
2. **Ratios, interleaved.** Each round times NumPy and trueno back to back in a random
   order and records ``t_numpy / t_trueno``; the table reports the median ratio and its
   interquartile range. Absolute times on a shared VM drift by 20 %; ratios do not.
3. **Calibrated samples.** Each sample repeats the call until it is at least
   ``--min-time`` (10 ms) of work, after a warm-up call.
4. **Like with like.** BLAS is pinned to one thread (threadpoolctl) for the main table;
   ``out=`` is compared with ``out=``, allocating with allocating.
5. **Sizes by cache level** (L1 4 KiB, L2 256 KiB, L3 4 MiB, DRAM 512 MiB per operand),
   and each row carries its roofline: the fastest the machine could possibly go.
6. **The machine is recorded**: CPU, flags, load average, BLAS build and threads,
   versions and backend; a busy machine is flagged in every output.

Outputs (``--out``, default ``build/bench/``): ``bench.json``, ``bench.md``, ``bench.png``.
The exit code is 0 even when speed targets are missed (this is a report), and 1 when a
correctness check fails.

The harness is also an API: :func:`build_cases` returns the cases, :func:`run` times
them, and :func:`main` accepts ``overrides`` to swap in another implementation of a
kernel (the tests inject a wrong one to prove the correctness gate works).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from trueno.bench.cases import (
    _MAX_SECONDS,
    _TARGETS,
    MATMUL_SHAPES,
    MODES,
    Case,
    Fn,
    Mode,
    build_cases,
)
from trueno.bench.machine import (
    _REMOVED_ENV_MARK,
    BUSY_LOAD_PER_CPU,
    LEVELS,
    OPENBLAS_ENV,
    MachineModel,
    is_busy,
    level_of,
    machine_info,
    machine_model,
)
from trueno.bench.measure import Result, _blas_limit, _quiesce, _summarise, run_case
from trueno.bench.report import (
    SCHEMA,
    _ratio_str,
    _verdict,
    figure,
    plot,
    report_dict,
    to_markdown,
    write_outputs,
)

# The harness's API, re-exported from its modules: what notebooks, nox and the tests use
# (``bench.main``, ``bench.build_cases``, ``bench._TARGETS`` ...).
__all__ = [
    "BUSY_LOAD_PER_CPU",
    "LEVELS",
    "MATMUL_SHAPES",
    "MODES",
    "OPENBLAS_ENV",
    "SCHEMA",
    "_MAX_SECONDS",
    "_TARGETS",
    "Case",
    "Fn",
    "MachineModel",
    "Mode",
    "Result",
    "_quiesce",
    "_summarise",
    "build_cases",
    "figure",
    "is_busy",
    "level_of",
    "machine_info",
    "machine_model",
    "main",
    "parse_args",
    "plot",
    "report_dict",
    "run",
    "run_case",
    "to_markdown",
    "write_outputs",
]

# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def run(
    cases: Sequence[Case],
    *,
    rounds: int,
    min_time: float,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    model: MachineModel | None = None,
) -> list[Result]:
    """Check and time every case, BLAS pinned to one thread (two for 2-thread rows),
    each row's roofline from ``model`` (default: :func:`machine_model`)."""
    model = model or machine_model()
    rng = np.random.default_rng(seed)
    random.seed(seed)
    results = []
    for i, case in enumerate(cases, 1):
        with _blas_limit(case.cores):
            res = run_case(case, rounds, min_time, rng, model)
        results.append(res)
        gc.collect()
        if progress:
            if res.status == "ok":
                verdict = _verdict(res).strip("*")
                detail = f"{_ratio_str(res, res.clock).strip('*')} ({res.clock})  {verdict}"
            else:
                detail = f"{res.status}: {res.error}"
            progress(f"[{i}/{len(cases)}] {case.kernel} {case.size} ({case.group}): {detail}")
    return results


def _maybe_reexec_without_openblas_env(argv: Sequence[str], keep: bool) -> None:
    """OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are read when OpenBLAS loads and slow this
    NumPy's kernels; re-run this benchmark (only) without them, noting what was removed."""
    present = {k: os.environ[k] for k in OPENBLAS_ENV if k in os.environ}
    if keep or not present or _REMOVED_ENV_MARK in os.environ:
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_ENV}
    env[_REMOVED_ENV_MARK] = json.dumps(present)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "trueno.bench", *argv], env)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trueno.bench", description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--full",
        action="store_const",
        dest="mode",
        const="full",
        help="every size incl. DRAM (default)",
    )
    size.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        help="< 60 s: no DRAM sizes, fewer rounds",
    )
    size.add_argument(
        "--smoke",
        action="store_const",
        dest="mode",
        const="smoke",
        help="tiny sizes, 1 round (tests)",
    )
    p.add_argument("--out", type=Path, default=Path("build/bench"), help="output directory")
    p.add_argument("--kernels", default="", help="comma-separated kernel name prefixes to run")
    p.add_argument("--rounds", type=int, help="interleaved rounds per case")
    p.add_argument("--min-time", type=float, help="seconds of work per sample (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help=f"do not drop {' / '.join(OPENBLAS_ENV)} for this process",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--remeasure",
        action="store_true",
        help="re-run trueno's machine probe (peak, bandwidth) instead of its cached figures "
        "(the full mode always does)",
    )
    p.set_defaults(mode="full")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, overrides: Mapping[str, Fn] | None = None) -> int:
    """Run the benchmark; ``overrides`` maps a kernel name to a replacement trueno callable
    (taking the case's input dict). Returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(args_list)
    if argv is None:  # only the command-line entry point may replace the process
        _maybe_reexec_without_openblas_env(args_list, args.keep_openblas_env)
    mode = MODES[args.mode]
    rounds = args.rounds or mode.rounds
    min_time = args.min_time if args.min_time is not None else mode.min_time
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    cases = build_cases(mode, kernels)
    for case in cases:
        if overrides and case.kernel in overrides:
            case.trueno_fn = overrides[case.kernel]
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    model = machine_model(refresh=args.remeasure or mode.fresh_probe)
    say(f"machine model: {model.origin}")
    machine = machine_info(model)
    say(
        f"trueno.bench {mode.name}: {len(cases)} cases, {rounds} rounds, backend "
        f"{machine['trueno_backend']}, load {machine['loadavg_start']}"
    )
    if is_busy(machine["loadavg_start"], machine["ncpu"]):
        say("warning: the machine is busy; ratios will be noisier than usual")
    results = run(
        cases, rounds=rounds, min_time=min_time, seed=args.seed, progress=say, model=model
    )
    command = "python -m trueno.bench " + shlex.join(args_list)
    config = {
        "command": command.strip(),
        "rounds": rounds,
        "min_time": min_time,
        "seed": args.seed,
        "kernels": kernels,
    }
    report = report_dict(results, mode.name, machine, config)
    paths = write_outputs(report, args.out)
    s = report["summary"]
    say(
        f"{s['ok']} ok, {s['unavailable']} unavailable, {s['incorrect']} incorrect; "
        f"targets met {s['targets_met']}, missed {s['targets_missed']}"
    )
    for kind, path in paths.items():
        say(f"wrote {kind}: {path}")
    return 1 if s["incorrect"] else 0
