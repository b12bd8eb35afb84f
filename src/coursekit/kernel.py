"""The "Databricks (local)" Jupyter kernel: ``python -m coursekit.kernel install``.

A notebook opened in Jupyter or VS Code with this kernel finds ``spark``, ``dbutils``,
``display`` and the Databricks magics defined before its first cell, exactly as the
executor (``python -m coursekit.run``) defines them: the kernel is ipykernel whose
start-up line is the executor's setup cell (:data:`coursekit.notebook.SETUP_SOURCE`).
The paired ``.ipynb`` (``python -m coursekit.notebook NOTEBOOK.py``) names this kernel and
keeps that setup cell too; running it again is a no-op.

``make setup`` (the ``setup`` nox session) installs the kernel for the learner's user,
pointing at the project's ``.venv`` interpreter.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from coursekit import notebook as nbsrc

KERNEL_NAME = nbsrc.KERNEL_NAME
DISPLAY_NAME = nbsrc.KERNEL_DISPLAY_NAME


def kernel_spec(python: str | None = None) -> dict[str, object]:
    """The kernel.json: ipykernel under ``python`` with the runtime's setup at start-up."""
    exe = python or sys.executable
    return {
        "argv": [
            exe,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            # One line: IPython runs exec_lines in the notebook's namespace.
            "--IPKernelApp.exec_lines=" + nbsrc.SETUP_SOURCE.replace("\n\n", "; "),
        ],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }


def install(*, user: bool = True, prefix: str | None = None, python: str | None = None) -> str:
    """Register the kernel with Jupyter; returns the directory it was installed into."""
    from jupyter_client.kernelspec import KernelSpecManager  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / KERNEL_NAME
        spec_dir.mkdir()
        (spec_dir / "kernel.json").write_text(json.dumps(kernel_spec(python), indent=2) + "\n")
        # The logo files ipykernel ships make the kernel recognisable in the launcher.
        from ipykernel.kernelspec import RESOURCES  # noqa: PLC0415

        for logo in Path(RESOURCES).glob("logo-*"):
            shutil.copy(logo, spec_dir / logo.name)
        return KernelSpecManager().install_kernel_spec(
            str(spec_dir), KERNEL_NAME, user=user and prefix is None, prefix=prefix
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.kernel",
        description=f"Register the {DISPLAY_NAME!r} Jupyter kernel (this interpreter).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("install", help="install the kernelspec")
    where = add.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", default=True, help="for this user")
    where.add_argument("--prefix", help="under PREFIX/share/jupyter/kernels (e.g. a venv)")
    sub.add_parser("spec", help="print the kernel.json")
    args = parser.parse_args(argv)
    if args.command == "spec":
        print(json.dumps(kernel_spec(), indent=2))
        return 0
    path = install(prefix=args.prefix)
    print(f"installed kernel {KERNEL_NAME!r} ({DISPLAY_NAME}) in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
