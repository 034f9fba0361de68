"""Ctrl-C (a real SIGINT to this process) that lands where Optuna's trial loop does not catch it
(while a trial is created, while a result is told) or where it would split a result from its
record. The search stops with code 130, leaves no trial RUNNING in its storage, and never
records a trained result it has not stored (or the reverse)."""

from __future__ import annotations

import os
import signal

import optuna
import pytest

import nas.objective

from conftest import TINY_SPACE
from nas.evaluations import all_evaluations
from nas.interrupts import TrialLoopInterrupts
from nas.search import main
from nas.vocabulary import TrialAttr

State = optuna.trial.TrialState
BUDGET_MS = 1000.0  # every candidate of the tiny space fits: each trial trains


@pytest.fixture(autouse=True)
def sigint_as_in_a_terminal():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal: a test run started in the background
    (`&` in a script, `nohup`) inherits SIGINT ignored, and the search rightly leaves that alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _search(tmp_path, lut, baselines: bool = False) -> int:
    return main(["--budget", f"{BUDGET_MS}ms", "--lut", str(lut), "--space", str(TINY_SPACE), "--data", "synthetic", "--quick",
                 "--threads", "1", "--results", str(tmp_path), "--study", "t", "--trials", "4", "--confirm-top", "0",
                 *([] if baselines else ["--no-baselines"])])


def _trials(tmp_path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}").trials


def test_sigint_while_a_trial_is_created(tmp_path, tiny_lut_path, monkeypatch):
    asked = []
    before_trial = optuna.samplers.TPESampler.before_trial

    def interrupted_third(self, study, trial):
        asked.append(trial.number)
        before_trial(self, study, trial)
        if len(asked) == 3:
            _interrupt()  # inside study.ask(): the trial exists in the storage, the objective has not begun

    monkeypatch.setattr(optuna.samplers.TPESampler, "before_trial", interrupted_third)
    assert _search(tmp_path, tiny_lut_path) == 130
    trials = _trials(tmp_path)
    assert [(t.number, t.state) for t in trials] == [(0, State.COMPLETE), (1, State.COMPLETE), (2, State.FAIL)]
    assert trials[2].user_attrs[TrialAttr.STATUS] == "interrupted"  # not a "fail" in trials.csv and the summary
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_queued_candidate_whose_trial_takes_the_interrupt_is_queued_again(tmp_path, tiny_lut_path, monkeypatch):
    """The interrupt lands as the first queued paper model becomes a trial, before its objective
    begins: that trial ends interrupted, and the rerun trains the paper model in a trial of its own."""
    before_trial = optuna.samplers.TPESampler.before_trial

    def interrupted_first(self, study, trial):
        before_trial(self, study, trial)
        if trial.number == 0:
            _interrupt()

    monkeypatch.setattr(optuna.samplers.TPESampler, "before_trial", interrupted_first)
    assert _search(tmp_path, tiny_lut_path, baselines=True) == 130
    (stopped, *_) = _trials(tmp_path)
    assert stopped.state == State.FAIL and stopped.user_attrs[TrialAttr.STATUS] == "interrupted" and not stopped.params
    queued = stopped.system_attrs["fixed_params"]  # a paper model, as the search queued it
    monkeypatch.setattr(optuna.samplers.TPESampler, "before_trial", before_trial)
    assert _search(tmp_path, tiny_lut_path, baselines=True) == 0
    retries = [t for t in _trials(tmp_path) if t.user_attrs.get(TrialAttr.RETRY_OF) == stopped.number]
    assert [(t.state, t.params) for t in retries] == [(State.COMPLETE, queued)]


def test_sigint_while_a_result_is_told(tmp_path, tiny_lut_path, monkeypatch):
    told = []
    storage_class = optuna.storages.RDBStorage
    set_trial_state_values = storage_class.set_trial_state_values

    def interrupted_second_result(self, trial_id, state, values=None):
        if state == State.COMPLETE:
            told.append(trial_id)
            if len(told) == 2:
                _interrupt()  # the result is being written: it lands, and the next trial takes the interrupt
        return set_trial_state_values(self, trial_id, state, values)

    monkeypatch.setattr(storage_class, "set_trial_state_values", interrupted_second_result)
    assert _search(tmp_path, tiny_lut_path) == 130
    trials = _trials(tmp_path)
    assert [(t.number, t.state) for t in trials] == [(0, State.COMPLETE), (1, State.COMPLETE), (2, State.FAIL)]
    assert trials[1].value is not None and TrialAttr.WORKER not in trials[2].user_attrs  # stopped before its objective began
    assert trials[2].user_attrs[TrialAttr.STATUS] == "interrupted"


def test_sigint_between_a_result_and_its_record(tmp_path, tiny_lut_path, monkeypatch):
    """The second training has returned and its trial says "trained": the interrupt waits until
    the result is stored and told, so a rerun finds it instead of training the candidate again."""
    stored = []
    store = nas.objective.store

    def interrupted_second_store(study, proxy_id, evaluation):
        stored.append(evaluation.arch_id)
        if len(stored) == 2:
            _interrupt()
        store(study, proxy_id, evaluation)

    monkeypatch.setattr(nas.objective, "store", interrupted_second_store)
    assert _search(tmp_path, tiny_lut_path) == 130
    trials = _trials(tmp_path)
    assert [(t.number, t.state) for t in trials] == [(0, State.COMPLETE), (1, State.COMPLETE), (2, State.FAIL)]
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    proxy_id = study.user_attrs["settings"]["proxy_id"]
    assert sorted(all_evaluations(study, proxy_id)) == sorted(stored)
    assert trials[1].user_attrs[TrialAttr.STATUS] == "trained"


def test_an_interrupt_after_the_last_objective_still_stops():
    interrupts = TrialLoopInterrupts()
    with pytest.raises(KeyboardInterrupt):
        with interrupts.installed():
            _interrupt()  # as the loop's last result is told: no objective follows to raise it
            assert interrupts.pending
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_held_interrupt_lets_the_trial_finish():
    interrupts, done = TrialLoopInterrupts(), []

    def objective(trial):
        interrupts.hold_until_told()
        _interrupt()
        done.append(trial)
        return 1.0

    run = interrupts.taken_in(objective)
    with pytest.raises(KeyboardInterrupt), interrupts.installed():
        assert run("first") == 1.0  # its result is told
        run("second")  # raised before it begins
    assert done == ["first"]


def test_an_ignored_sigint_stays_ignored():
    """A search started with `nohup ... &` ignores SIGINT, and the guard does not change that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupts = TrialLoopInterrupts()
        with interrupts.installed():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            _interrupt()
        assert not interrupts.pending
    finally:
        signal.signal(signal.SIGINT, previous)
