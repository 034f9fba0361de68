"""The words nas/ shares with its storages and outputs, each spelled once: where the project
lives, what became of a trial, and the user-attribute keys under which trials and studies keep
their records (a report made elsewhere reads them back from the storage alone)."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from optuna.trial import FrozenTrial

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The latency table nas.search uses unless told otherwise: the first of these that exists.
DEFAULT_LUTS = ("results/lut/paper-phone.json", "results/lut/host-ort-t1.json")
# A study's storage inside its folder: SQLite for one process, a journal file for several.
SQLITE_FILE = "study.db"
JOURNAL_FILE = "study.journal"
STORAGE_FILES = (SQLITE_FILE, JOURNAL_FILE)
# Outputs of a search in its folder that other commands read (nas.train, nas.fidelity).
TRIALS_FILE = "trials.csv"
BASELINES_FILE = "baselines.csv"
BEST_FILE = "best.json"


def name_part(text: str) -> str:
    """``text`` as a piece of a folder name (a data set spec may hold slashes and dots)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


class Status(str, Enum):
    """What became of a trial (its user attr ``status``)."""

    TRAINED = "trained"  # proxy-trained by this trial
    CACHED = "cached"  # the same architecture's result, taken from the evaluation cache
    PRUNED = "pruned"  # stopped by the pruner after an epoch
    INFEASIBLE = "infeasible"  # predicted latency over the budget: never trained
    SURPLUS = "surplus"  # the study's evaluations were all taken by earlier trials
    SCREENED = "screened"  # ranked below the top 1/F by the training-free screen (--screen F): never trained
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C (a failed trial); its candidate, if whole, is queued again

    def __str__(self) -> str:
        return self.value


SCORED = frozenset({Status.TRAINED, Status.CACHED})  # have a proxy accuracy
COUNTED = frozenset({Status.TRAINED, Status.CACHED, Status.PRUNED})  # count towards --trials


class TrialAttr:
    """Keys of a trial's user attributes."""

    WORKER = "worker"  # host:pid of the process that ran it
    ARCH = "arch"  # NetConfig JSON
    ARCH_ID = "arch_id"
    PARAMS = "params"
    MACS = "macs"
    PROXY_ID = "proxy_id"
    LATENCY_MS = "latency_ms"  # written last: the candidate is then declared to other workers
    STATUS = "status"
    CACHED_FROM = "cached_from"
    EPOCH_ACCURACIES = "epoch_accuracies"
    TRAIN_SECONDS = "train_seconds"
    SCREEN_SCORE = "screen_score"  # the training-free score the screen ranked the candidate by (nas.screens)
    TICKET = "ticket"  # order of the trials' claims on their architectures (nas.coordination)
    TAKING_TICKET = "taking_ticket"
    RETRY_OF = "retry_of"  # number of the failed trial this one retries
    BEAT_AT = "beat_at"  # heartbeat of storages without their own (journal files): wall-clock seconds
    BEAT_EVERY_S = "beat_every_s"


class StudyAttr:
    """Keys (or key prefixes) of a study's user attributes."""

    SETTINGS = "settings"
    LUT_INFO = "lut_info"
    EVALUATION = "eval"  # eval:<proxy id>:<arch id> -> one proxy result (nas.evaluations)
    BASELINE = "baseline"  # baseline:<width> -> a paper model's candidate (nas.baselines)
    CONFIRMATION = "confirm"  # confirm:<proxy id>:<arch id>:<seed> -> one re-training (nas.confirmation)


def status_of(trial: FrozenTrial) -> Status | None:
    """The trial's status, or None when it recorded none (it failed or is still running)."""
    value = trial.user_attrs.get(TrialAttr.STATUS)
    return None if value is None else Status(value)


def is_scored(trial: FrozenTrial) -> bool:
    return status_of(trial) in SCORED and bool(trial.values)


def counts(trial: FrozenTrial) -> bool:
    """A finished trial that evaluated a feasible candidate (trained, pruned or cached)."""
    return status_of(trial) in COUNTED and trial.state.is_finished()
