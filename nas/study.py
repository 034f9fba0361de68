"""Opening a study: storage (resumable, safe against killed workers, shared by many workers),
sampler, pruner, and the settings a study was started with (a rerun must use the same ones)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState

from .coordination import fail_dead_trials, fail_stale, retry_once
from .errors import UserError
from .vocabulary import JOURNAL_FILE, SQLITE_FILE, STORAGE_FILES, StudyAttr, TrialAttr

PRUNERS = ("median", "hyperband", "none")
# tpe: the default; random: the baseline a sampler has to beat (random search is strong in NAS).
SAMPLERS = ("tpe", "random")
DEFAULT_SAMPLER = "tpe"
# Where the LUT and space files live may differ between workers; their content is compared
# through the space hash and the LUT fingerprint.
LOCATION_SETTINGS = ("lut", "space")
JOURNAL = "journal:"


def journal_url(path: Path) -> str:
    return f"{JOURNAL}{Path(path).resolve()}"


def default_storage_url(study_dir: Path, workers: int = 1) -> str:
    """The study's storage inside its folder: the one already there, else a SQLite file for
    one process, or a journal file (which several processes append to safely) for ``workers > 1``
    (nas.search first moves a SQLite study that several workers are to continue: ``move_to_journal``)."""
    db, journal = study_dir / SQLITE_FILE, study_dir / JOURNAL_FILE
    if db.exists() or (workers <= 1 and not journal.exists()):
        return f"sqlite:///{db.resolve()}"
    return journal_url(journal)


MOVED_SUFFIX = ".moved-to-journal"


def move_to_journal(study_dir: Path, log: Callable[[str], None] = print) -> None:
    """Copy every study of ``study.db`` into ``study.journal`` (trials, their numbers and
    attributes kept) and rename the SQLite file aside: several worker processes on one SQLite
    file wait on its lock, a journal file is made for them."""
    db, journal = study_dir / SQLITE_FILE, study_dir / JOURNAL_FILE
    if journal.exists():
        raise UserError(f"{study_dir} holds both {SQLITE_FILE} and {JOURNAL_FILE}: keep one (move the other away) and rerun")
    source = open_storage(f"sqlite:///{db.resolve()}")
    target = open_storage(journal_url(journal))
    for name in optuna.get_all_study_names(storage=source):
        optuna.copy_study(from_study_name=name, from_storage=source, to_storage=target)
    db.rename(db.with_name(db.name + MOVED_SUFFIX))
    log(f"several workers: study moved from {db} to {journal} (the SQLite file is kept as {db.name}{MOVED_SUFFIX})")


def latest_study_dir(results: Path) -> Path:
    """The study folder under ``results`` whose storage changed last."""
    found = [f for name in STORAGE_FILES for f in Path(results).glob(f"*/{name}")]
    if not found:
        raise UserError(f"no study under {results} (no */study.db or */study.journal): run python -m nas.search first or name a storage")
    return max(found, key=lambda f: f.stat().st_mtime).parent


def open_storage(url: str, *, heartbeat_seconds: int = 10) -> optuna.storages.BaseStorage:
    """``journal:PATH``: a journal file (Optuna's JournalStorage), for workers on one machine or
    a shared file system. Any other URL: an RDB storage (SQLite, PostgreSQL, MySQL) with
    heartbeats: a worker killed mid-trial leaves a trial that goes stale after
    ``3 * heartbeat_seconds``; it is then marked failed and queued once more. Journal files
    have no heartbeats of their own: the objective stamps its trial instead
    (``nas.coordination.Heartbeat``), and other workers fail a trial whose stamps stopped."""
    if not isinstance(url, str) or ("://" not in url and not url.startswith(JOURNAL)):
        raise UserError(f"storage {url!r} is not a URL: use e.g. sqlite:///results/s/study.db, journal:results/s/study.journal or postgresql://user@host/db")
    if url.startswith(JOURNAL):
        path = url[len(JOURNAL):]
        path = path[2:] if path.startswith("//") else path  # journal:///abs/path reads as /abs/path
        if not path:
            raise UserError(f"storage {url!r} names no file: use journal:PATH, e.g. journal:results/s/study.journal")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]  # the driver we install (psycopg 3), whatever SQLAlchemy's default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_seconds,
                grace_period=3 * heartbeat_seconds,
                heartbeat_stale_trial_callback=retry_once,
            )
        except ModuleNotFoundError as error:
            raise UserError(f"storage {url.split('://')[0]}:// needs the database driver {error.name}: pip install 'psycopg[binary]' (PostgreSQL) or the driver SQLAlchemy names") from None
        except sqlalchemy.exc.ArgumentError:  # an unknown dialect, or a URL SQLAlchemy cannot parse
            raise UserError(f"storage {url!r} is no storage URL Optuna knows: use sqlite:///PATH, postgresql://user@host/db, mysql://user@host/db or journal:PATH") from None
        except sqlalchemy.exc.OperationalError as error:
            shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
            reason = str(error.orig or error).strip().splitlines()[0]
            if url.startswith("sqlite:"):
                raise UserError(f"cannot open SQLite file of storage {shown} ({reason}): check that its folder exists and is writable") from None
            raise UserError(f"cannot open storage {shown} ({reason}): check that the database server runs and the URL is right") from None


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate, group
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {name!r}")


def resumed_seed(seed: int, trials: int) -> int:
    """The sampler's seed for a run that resumes a study holding ``trials`` trials: a fresh
    stream for each resume, the same one for the same resume (a fresh study keeps ``seed``)."""
    return int(np.random.SeedSequence([seed, trials]).generate_state(1)[0])


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {list(PRUNERS)}, got {name!r}")


def open_study(
    *,
    name: str,
    storage: optuna.storages.BaseStorage,
    multi_objective: bool,
    seed: int,
    pruner: str,
    settings: dict[str, Any],
    sampler: str = DEFAULT_SAMPLER,
    log: Callable[[str], None] = print,
) -> optuna.Study:
    """Create the study or load it; on load, refuse settings that differ from the first run's
    (a study mixes results only when they are comparable), reseed the sampler by what the study
    holds (``resumed_seed``), and fail (saying so) the trials that a stopped run left running."""
    directions = ["maximize", "minimize"] if multi_objective else ["maximize"]
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(sampler, seed),
        pruner=make_pruner(pruner),
        directions=directions,
        load_if_exists=True,
    )
    earlier = len(study.get_trials(deepcopy=False))
    if earlier:  # a resumed run: the seed's own stream would draw the first run's candidates again
        study.sampler = make_sampler(sampler, resumed_seed(seed, earlier))
    if len(study.directions) != len(directions):
        raise UserError(f"study {name!r} was started {'without' if multi_objective else 'with'} --multi-objective: rerun it the same way or pick another --study")
    saved = study.user_attrs.get(StudyAttr.SETTINGS)
    if saved is None:
        study.set_user_attr(StudyAttr.SETTINGS, settings)
    else:
        compared = (set(saved) | set(settings)) - set(LOCATION_SETTINGS)
        changed = sorted(k for k in compared if saved.get(k) != settings.get(k))
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise UserError(f"study {name!r} was started with other settings ({details}): rerun with the same ones or pick another --study")
    # A trial whose worker was killed is failed (and queued again) now, not only when this run
    # starts a trial: a rerun that merely writes outputs must not leave it RUNNING.
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    fail_stale(study)
    # A live worker names itself on a new trial within milliseconds; the heartbeat's grace
    # period (or, without heartbeats, the declaration window) is ample.
    grace = getattr(storage, "grace_period", None)
    fail_dead_trials(study, **({"undeclared_after_s": float(grace)} if grace else {}))
    failed = sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in running)
    queued = {t.user_attrs.get(TrialAttr.RETRY_OF) for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))} - {None}
    if failed:
        again, not_again = ([n for n in failed if (n in queued) == flag] for flag in (True, False))
        line = f"trial{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} of a stopped run marked failed (worker gone)"
        if again:
            line += f"; queued once more: the candidate{'s' if len(again) > 1 else ''} of {', '.join(map(str, again))}"
        if not_again:
            line += f"; not queued again (a retry already, or stopped before its candidate was whole): {', '.join(map(str, not_again))}"
        log(line)
    earlier_stops = sorted(queued - set(failed))  # by Ctrl-C, or found dead by an earlier rerun
    if earlier_stops:
        plural = "s" if len(earlier_stops) > 1 else ""
        log(f"still queued from a stopped run: the candidate{plural} of trial{plural} {', '.join(map(str, earlier_stops))}")
    return study
