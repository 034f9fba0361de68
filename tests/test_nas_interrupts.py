"""Ctrl-C (a real SIGINT to this process) that lands outside the objective, where Optuna's trial
loop does not catch it: while a trial is created, and while a result is told. The search stops
with code 130 and leaves no trial RUNNING in its storage."""

from __future__ import annotations

import os
import signal

import optuna
import pytest

from conftest import TINY_SPACE
from nas.interrupts import ObjectiveOnlyInterrupts
from nas.search import main
from nas.vocabulary import TrialAttr

State = optuna.trial.TrialState
BUDGET_MS = 1000.0  # every candidate of the tiny space fits: each trial trains


def _interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _search(tmp_path, lut) -> int:
    return main(["--budget", f"{BUDGET_MS}ms", "--lut", str(lut), "--space", str(TINY_SPACE), "--data", "synthetic", "--quick",
                 "--threads", "1", "--results", str(tmp_path), "--study", "t", "--trials", "4", "--no-baselines", "--confirm-top", "0"])


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
    assert [(t.number, t.state) for t in _trials(tmp_path)] == [(0, State.COMPLETE), (1, State.COMPLETE), (2, State.FAIL)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


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


def test_an_interrupt_after_the_last_objective_still_stops():
    guard = ObjectiveOnlyInterrupts(lambda trial: 1.0)
    with pytest.raises(KeyboardInterrupt):
        with guard.installed():
            _interrupt()  # as the loop's last result is told: no objective follows to raise it
            assert guard.pending
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored():
    """A search started with `nohup ... &` ignores SIGINT, and the guard does not change that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        guard = ObjectiveOnlyInterrupts(lambda trial: 1.0)
        with guard.installed():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            _interrupt()
        assert not guard.pending
    finally:
        signal.signal(signal.SIGINT, previous)
