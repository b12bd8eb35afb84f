"""``python -m realizar.bench --only embeddings`` on a short corpus, one round (no speed bar):
the NumPy and onnxruntime baselines agree with realizar and both tables are written."""

from __future__ import annotations

from realizar.bench import PACKAGES, bench_embeddings, embeddings_markdown
from trueno.bench.machine import machine_info


def test_embeddings_section_reports_both_baselines() -> None:
    result = bench_embeddings(rounds=1, min_time=0.0, seed=0, sentences=8)
    ort = result["onnxruntime"]
    assert (ort["intra_op_num_threads"], ort["inter_op_num_threads"]) == (1, 1)
    assert ort["graph_optimization_level"] == "ORT_ENABLE_ALL"
    for agreement in (result["correctness"], ort["vs_numpy"], ort["vs_realizar"]):
        assert agreement["passed"]
        assert agreement["min_cosine"] >= 0.99999
        assert agreement["max_abs_diff"] <= 1e-4
    assert [(c["batch_size"], c["sentences"]) for c in result["cases"].values()] == [
        (1, 2),
        (32, 8),
    ]
    for case in result["cases"].values():
        for key in ("speedup_vs_numpy", "speedup_vs_onnxruntime"):
            s = case[key]
            assert 0 < s["q1"] <= s["median"] <= s["q3"]
        assert case["onnxruntime_emb_per_s"] > 0
    command = "python -m realizar.bench --only embeddings"
    md = embeddings_markdown(result, command, machine_info(packages=PACKAGES))
    assert command in md
    assert "| realizar / onnxruntime (median [IQR]) |" in md
    assert md.count("| 32 | 8 |") == 2
    assert "onnxruntime 1." in md
