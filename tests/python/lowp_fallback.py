"""What the reduced-precision fallback note must name on this CPU (realizar/src/precision.rs).

Under ``TRUENO_BACKEND=scalar`` the reference path runs; the note names the backend when the
CPU has the AVX-512 kernel's features, and the missing features when it does not (an AVX2
CPU), so a test must expect the reason that applies to the machine it runs on.
"""

from __future__ import annotations

import trueno

# The features each AVX-512 kernel needs, spelled as trueno.machine() reports them.
_KERNEL_FEATURES = {
    "bf16": {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"},
    "int8": {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"},
}


def fallback_reason(precision: str) -> str:
    """The words the note gives for the reference path under TRUENO_BACKEND=scalar."""
    features = set(trueno.machine(probe=False)["cpu"]["features"])
    if _KERNEL_FEATURES[precision] <= features:
        return 'the active trueno backend is "scalar"'
    return "this CPU lacks"
