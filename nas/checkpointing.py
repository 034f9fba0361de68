"""A ``nas.train`` run's state on disk, written after every epoch so that a killed run (``kill
-9`` included) resumes where its last epoch ended and finishes as an uninterrupted run would.

The state file (``STATE_FILE`` in the run's folder) is a ``torch.save`` dict (``TrainingState``):
the settings that fix the result, the epochs done, the model, optimizer and scheduler states,
every random generator's state, the accuracies so far and the time spent. Every file is written
to a temporary name, synced and renamed into place, so a kill leaves the previous file whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from .errors import UserError

STATE_FILE = "resume.pt"
FORMAT = 1


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, sync it and rename it to ``path``."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(path, lambda handle: handle.write(text.encode()))


@dataclass
class TrainingState:
    """Everything a run needs to go on after ``epoch`` epochs.

    Attributes:
        settings: what fixes the result (architecture, data, split, recipe, seed); a run resumes
            only under the same settings.
        epoch: epochs done.
        model, optimizer, scheduler: the ``state_dict()`` of each.
        rng: generator states by name (``torch`` is the global one, used by dropout).
        val_accuracies: validation accuracy after each epoch done.
        cpu_seconds, wall_seconds: spent so far, over every session of the run.
        resumed_after: the epoch counts at which the run was resumed.
        train_seconds: wall time of the training steps alone (validation excluded).
        test_accuracy: accuracy on the data set's test split once it was read (``--test``),
            kept so that every later report of the run says it was read.
    """

    settings: dict[str, Any]
    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, torch.Tensor]
    val_accuracies: list[float]
    cpu_seconds: float
    wall_seconds: float
    resumed_after: list[int] = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0
    test_accuracy: float | None = None

    def save(self, folder: Path) -> None:
        payload = {"format": FORMAT, **dataclasses.asdict(self)}
        write_atomic(folder / STATE_FILE, lambda handle: torch.save(payload, handle))

    @classmethod
    def load(cls, folder: Path) -> "TrainingState | None":
        """The state saved in ``folder``, or None when there is none."""
        path = folder / STATE_FILE
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a damaged file
            raise UserError(f"{path} cannot be read ({type(error).__name__}); delete it to train from scratch") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise UserError(f"{path} is not a nas.train state of format {FORMAT}; delete it to train from scratch")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in fields})


def check_same_settings(saved: dict[str, Any], wanted: dict[str, Any], folder: Path) -> None:
    """Refuse to resume a run whose settings differ, naming the differences."""
    if saved == wanted:
        return
    differences = []
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            if isinstance(wanted.get(key), dict) or isinstance(saved.get(key), dict):
                inner = sorted(k for k in set(saved.get(key) or {}) | set(wanted.get(key) or {})
                               if (saved.get(key) or {}).get(k) != (wanted.get(key) or {}).get(k))
                differences.append(f"{key} ({', '.join(inner)})" if key != "architecture" else "architecture")
            else:
                differences.append(f"{key} {wanted.get(key)!r} here, {saved.get(key)!r} there")
    raise UserError(
        f"{folder} holds a run with other settings ({'; '.join(differences)}): "
        f"repeat that run's settings to resume it, or pass another --out"
    )
