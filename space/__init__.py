"""The search space as data: a YAML file, validated on load, decoded into ``repghost`` configs.

``load_space()`` reads ``space/repghost.yaml`` (or any file in its format) into a
``SearchSpace``; ``arch_id`` names an architecture by a hash of its canonical JSON.
"""

from __future__ import annotations

from pathlib import Path

from .files import PROJECT_ROOT, record_path, resolve_record
from .ids import arch_id
from .schema import BaseBlock, SpaceData, Stage, read_space_file
from .search_space import DEFAULT_SPACE, Decision, SearchSpace


def load_space(path: str | Path | None = None) -> SearchSpace:
    """Read and validate a space file; ``None`` gives the packaged default (the RepGhostNet
    space). Raises ValueError naming the file, the key path and the fix."""
    if path is None:
        path = DEFAULT_SPACE
    if not isinstance(path, (str, Path)):
        raise ValueError(f"path must be a str or Path, got {type(path).__name__}")
    return SearchSpace(read_space_file(Path(path)))


__all__ = [
    "DEFAULT_SPACE",
    "PROJECT_ROOT",
    "BaseBlock",
    "Decision",
    "SearchSpace",
    "SpaceData",
    "Stage",
    "arch_id",
    "load_space",
    "record_path",
    "resolve_record",
]
