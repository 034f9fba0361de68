"""Opening a study: storage (resumable, safe against killed workers), sampler, pruner, and the
settings a study was started with (a rerun must use the same ones)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

PRUNERS = ("median", "hyperband", "none")
# Where the LUT and space files live may differ between workers; their content is compared
# through the space hash and the LUT fingerprint.
LOCATION_SETTINGS = ("lut", "space")


def default_storage_url(study_dir: Path) -> str:
    return f"sqlite:///{(study_dir / 'study.db').resolve()}"


def open_storage(url: str, *, heartbeat_seconds: int = 10) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats: a worker killed mid-trial leaves a trial that goes stale
    after ``3 * heartbeat_seconds``; it is then marked failed and queued once more."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"storage {url!r} is not a URL: use e.g. sqlite:///results/s/study.db or postgresql://user@host/db")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url,
            heartbeat_interval=heartbeat_seconds,
            grace_period=3 * heartbeat_seconds,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {list(PRUNERS)}, got {name!r}")


def open_study(
    *, name: str, storage: optuna.storages.BaseStorage, multi_objective: bool, seed: int, pruner: str, settings: dict[str, Any]
) -> optuna.Study:
    """Create the study or load it; on load, refuse settings that differ from the first run's
    (a study mixes results only when they are comparable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
    directions = ["maximize", "minimize"] if multi_objective else ["maximize"]
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=make_pruner(pruner),
        directions=directions,
        load_if_exists=True,
    )
    if len(study.directions) != len(directions):
        raise ValueError(f"study {name!r} was started {'without' if multi_objective else 'with'} --multi-objective: rerun it the same way or pick another --study")
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", settings)
    else:
        compared = (set(saved) | set(settings)) - set(LOCATION_SETTINGS)
        changed = sorted(k for k in compared if saved.get(k) != settings.get(k))
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise ValueError(f"study {name!r} was started with other settings ({details}): rerun with the same ones or pick another --study")
    # A trial whose worker was killed is failed (and queued again) now, not only when this run
    # starts a trial: a rerun that merely writes outputs must not leave it RUNNING.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study
