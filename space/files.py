"""How a file of the space is named in records (LUT fingerprints, study settings): one rule.

A path inside the project is recorded relative to the project root (the folder that holds the
``space`` package), so ``space/repghost.yaml`` is the packaged default on every clone and every
install; a path outside it is recorded absolute. Reading a record applies the same rule back,
whatever the current directory.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def record_path(path: str | Path) -> str:
    """``path`` as a record names it: relative to the project when inside it, else absolute."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(resolved)


def resolve_record(recorded: str | Path) -> Path:
    """The file a record names (a relative record is taken from the project root)."""
    path = Path(recorded)
    return path if path.is_absolute() else PROJECT_ROOT / path
