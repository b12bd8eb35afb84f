"""``python -m realizar.bench --only precision`` end to end, one short round (no speed bar)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from realizar.bench_precision import PRECISIONS, run_precision_section
from trueno.bench.machine import machine_info


def test_precision_section_writes_its_reports(tmp_path: Path) -> None:
    args = argparse.Namespace(rounds=1, min_time=0.0, seed=0, out=str(tmp_path))
    command = "python -m realizar.bench --only precision --rounds 1 --min-time 0"
    assert run_precision_section(args, command, machine_info())
    data = json.loads((tmp_path / "realizar_precision.json").read_text())
    assert data["section"] == "precision"
    assert data["command"] == command
    md = (tmp_path / "realizar_precision.md").read_text()
    assert command in md
    enc, llm = data["encoder"], data["llm"]
    for p in PRECISIONS:
        # Accuracy as the opt-ins' tests state it (test_realizar_*_precision.py).
        assert enc["accuracy"][p]["min_cosine_to_f32"] >= (0.9995 if p == "bf16" else 0.98)
        assert 0 < llm["accuracy"][p]["max_diff_over_spread"] <= (0.08 if p == "bf16" else 0.4)
        assert enc["accuracy"][p]["path"] in {
            "amx_bf16",
            "amx_int8",
            "avx512_bf16",
            "avx512_vnni",
            "reference",
        }
        for case in [*enc["cases"].values(), *llm["cases"].values()]:
            s = case["speedup_vs_f32"][p]
            assert 0 < s["q1"] <= s["median"] <= s["q3"]
        assert f"| {p} |" in md
    assert set(enc["cases"]) == {"batch1", "batch32"}
    assert set(llm["cases"]) == {"prompt32", "prompt128"}
