"""A Rust edit must reach the next test run: the installed wheels are current.

Each extension embeds a fingerprint of the Rust sources it was compiled from
(crates/source-fingerprint, computed by its build script). Here the same
fingerprint is recomputed from the work tree. A wheel left over from before a
kernel edit carries the old value and fails this test.
"""

from __future__ import annotations

import importlib

import pytest

from fingerprint import FNV_OFFSET, fingerprint, fnv1a

CRATES = {
    "trueno": ["crates/trueno", "crates/trueno-py"],
    # Every crate the realizar wheel links (see crates/realizar-py/build.rs).
    "realizar": [
        "crates/trueno",
        "crates/realizar",
        "crates/realizar-py",
        "crates/trueno-rag",
        "crates/pacha",
        "crates/aprender",
    ],
}


def test_fnv_matches_published_vectors() -> None:
    # The same vectors the Rust twin checks: both sides implement one hash.
    assert fnv1a(FNV_OFFSET, b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a(FNV_OFFSET, b"foobar") == 0x85944171F73967E8


@pytest.mark.parametrize("wheel", sorted(CRATES))
def test_installed_wheel_was_built_from_this_tree(wheel: str) -> None:
    module = importlib.import_module(wheel)
    expected = fingerprint(CRATES[wheel])
    assert module.__source_hash__ == expected, (
        f"the installed {wheel} wheel was built from other sources "
        f"({module.__source_hash__}) than the work tree ({expected}): it is stale"
    )


def test_shared_fixture_has_the_agreed_value(tmp_path) -> None:
    """The Rust twin's test builds the same tree and expects the same value."""
    for d in ("crates/k/src", "crates/k/target", "crates/k/python"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "crates/k/src/lib.rs").write_text("pub fn k() -> u8 { 1 }\n")
    (tmp_path / "crates/k/src/a.rs").write_text("// é unicode\n", encoding="utf-8")
    (tmp_path / "crates/k/Cargo.toml").write_text('[package]\nname = "k"\n')
    (tmp_path / "crates/k/target/x.rs").write_text("ignored")
    (tmp_path / "crates/k/python/y.rs").write_text("ignored")
    (tmp_path / "crates/k/README.md").write_text("ignored")
    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    assert fingerprint(["crates/k"], root=tmp_path) == "63f64dd5174155a1"


def test_an_edit_changes_the_fingerprint(tmp_path) -> None:
    src = tmp_path / "crates" / "k" / "src"
    src.mkdir(parents=True)
    (src / "lib.rs").write_text("pub fn k() -> u8 { 1 }")
    before = fingerprint(["crates/k"], root=tmp_path)
    (tmp_path / "crates" / "k" / "python").mkdir()
    (tmp_path / "crates" / "k" / "python" / "ignored.rs").write_text("x")
    assert fingerprint(["crates/k"], root=tmp_path) == before
    (src / "lib.rs").write_text("pub fn k() -> u8 { 2 }")
    assert fingerprint(["crates/k"], root=tmp_path) != before
