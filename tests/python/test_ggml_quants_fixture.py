"""The committed ggml quantisation fixture is what its references produce today.

tests/python/fixtures/ggml_quants.txt holds ggml's bytes (the `gguf` package's quantisers and a
NumPy port of ggml-cpu's activation quantisers) for crafted rows; trueno's Rust test
`quant::tests::quantisers_equal_ggml_fixture` checks its quantisers against it byte for byte.
Regenerating here means a hand-edited or stale fixture fails instead of vouching for trueno.
"""

from __future__ import annotations

import ggml_quants_gen


def test_fixture_is_regenerated_bit_for_bit():
    committed = ggml_quants_gen.FIXTURE.read_text()
    assert committed == ggml_quants_gen.render()


def test_fixture_covers_ties_where_the_two_roundings_disagree():
    # On the tie row (step 1, values k + 0.5) the reference rounds half away from zero and the
    # CPU backend half to even: the two Q8_0 encodings must differ, or the fixture proves nothing.
    lines = [ln.split(" ") for ln in ggml_quants_gen.render().splitlines()]
    by_input: dict[str, dict[str, str]] = {}
    for kind, inp, want in lines:
        by_input.setdefault(inp, {})[kind] = want
    differ = [k for k in by_input.values() if k["q8_0"] != k["row_q8_0"]]
    assert differ, "no row separates roundf from round-half-even"
