"""Hypothesis profiles shared by every test suite.

Locally, property tests draw fresh random examples on every run, so each run can
find something new. In CI (``CI`` set, as `.ci/run` is invoked) the draw is
derandomized: the same examples every run, so a red build is reproducible and a
green one does not depend on luck. A failure found locally is replayed from the
example database (``.hypothesis/``) and belongs in a regression test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
