"""Fixtures shared by several test modules of the wheels.

``smollm2_f32``: SmolLM2's Q4_1 file rewritten as F32 by ``realizar.quantize_gguf`` (540 MB),
written once per test session for every module that needs it and deleted at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import realizar
from smollm2_reference import gguf_path


@pytest.fixture(scope="session")
def smollm2_f32(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Any]]]:
    """(path, per-tensor report) of the F32 copy of the course's model."""
    dst = tmp_path_factory.mktemp("gguf-f32") / "smollm2-F32.gguf"
    report = realizar.quantize_gguf(gguf_path(), dst, "F32")
    yield dst, report
    dst.unlink(missing_ok=True)
