"""A real Optuna study (SQLite storage) driving the default space."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from repghost import REPGHOST_WIDTHS, NetConfig, repghostnet_config
from space import arch_id, load_space


@pytest.fixture(scope="module")
def space():
    return load_space()


@pytest.fixture(autouse=True)
def quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def _objective(space):
    def objective(trial: optuna.Trial) -> float:
        config = space.suggest(trial)
        trial.set_user_attr("config", config.to_json())
        # A cheap stand-in for accuracy: total expansion width (real training lives in nas/).
        return float(sum(block.mid for block in config.flat_blocks()))

    return objective


def test_study_runs_twenty_trials_on_sqlite(space, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="space-test", direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10))
    study.optimize(_objective(space), n_trials=20)
    reloaded = optuna.load_study(study_name="space-test", storage=storage)
    trials = reloaded.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 20
    names = {d.name for d in space.decisions}
    ids = set()
    for trial in trials:
        assert set(trial.params) <= names
        assert "width" in trial.params and "b07.se" in trial.params
        config = NetConfig.from_json(trial.user_attrs["config"])
        assert space.decode(trial.params) == config  # the stored params alone rebuild the network
        ids.add(arch_id(config))
    assert len(ids) == 20


def test_enqueued_paper_points_are_reproduced(space, tmp_path):
    # A journal file (the multi-process storage on one machine): SQLite on this disk commits
    # each of a trial's ~75 parameters separately, about 1.5 s per trial, already paid above.
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "paper.log")))
    study = optuna.create_study(storage=storage, study_name="paper", direction="maximize")
    for width in REPGHOST_WIDTHS:
        study.enqueue_trial(space.paper_point(width))
    study.optimize(_objective(space), n_trials=len(REPGHOST_WIDTHS))
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == len(REPGHOST_WIDTHS)
    for width, trial in zip(REPGHOST_WIDTHS, sorted(trials, key=lambda t: t.number)):
        assert trial.params == space.paper_point(width)
        assert NetConfig.from_json(trial.user_attrs["config"]) == repghostnet_config(width)
