"""Python twin of crates/source-fingerprint: the same hash over the same files.

Used by test_wheels_fresh.py to prove the installed extension was compiled from
the Rust sources in this work tree.
"""

from __future__ import annotations

from pathlib import Path

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1
ROOT = Path(__file__).resolve().parents[2]


def fnv1a(h: int, data: bytes) -> int:
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK
    return h


def _collect(directory: Path) -> list[Path]:
    found: list[Path] = []
    for entry in directory.iterdir():
        if entry.is_dir():
            if entry.name not in {"target", "python"}:
                found.extend(_collect(entry))
        elif entry.suffix in {".rs", ".toml"}:
            found.append(entry)
    return found


def fingerprint(crate_dirs: list[str], root: Path = ROOT) -> str:
    files = [f for d in crate_dirs for f in _collect(root / d)]
    files += [root / top for top in ("Cargo.toml", "Cargo.lock") if (root / top).exists()]
    h = FNV_OFFSET
    for key, path in sorted((f.relative_to(root).as_posix(), f) for f in files):
        h = fnv1a(h, key.encode())
        h = fnv1a(h, b"\0")
        h = fnv1a(h, path.read_bytes())
        h = fnv1a(h, b"\0")
    return f"{h:016x}"
