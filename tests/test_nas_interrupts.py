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


# Storage writes of the third trial, in its objective: (RDBStorage method, attr key or None, what
# the stopped trial then holds). ``_set_trial_param`` is what the cached storage Optuna wraps it in calls.
STORAGE_WRITES = {
    "while a drawn parameter is stored": ("_set_trial_param", None, lambda t: TrialAttr.ARCH in t.user_attrs),
    "while training records an epoch": ("set_trial_user_attr", TrialAttr.EPOCH_ACCURACIES,
                                        lambda t: len(t.user_attrs[TrialAttr.EPOCH_ACCURACIES]) == 1),
}


@pytest.mark.parametrize("when", list(STORAGE_WRITES))
def test_sigint_inside_a_storage_call_waits_for_it_to_end(tmp_path, tiny_lut_path, monkeypatch, when):
    """Ctrl-C inside a storage write of the third trial's objective: the write completes, the
    interrupt is raised after it (as the candidate is counted, or as the epoch's record ends), and
    the stopped trial is told, marked and queued whole. Raised inside the storage call, it could
    leave the connection mid-transaction and the trial unrecordable (SQLite: "database is locked")."""
    method, key, holds = STORAGE_WRITES[when]
    storage_class = optuna.storages.RDBStorage
    original = getattr(storage_class, method)
    written = []

    def interrupted_write(self, trial_id, *args, **kwargs):
        name = args[0] if args else kwargs["key"]  # a parameter's name, or a user attr's key
        mine = self.get_trial_number_from_id(trial_id) == 2 and key in (None, name)
        if mine and not written:
            _interrupt()
        original(self, trial_id, *args, **kwargs)
        if mine:
            written.append(name)

    monkeypatch.setattr(storage_class, method, interrupted_write)
    assert _search(tmp_path, tiny_lut_path) == 130
    trials = _trials(tmp_path)
    assert [(t.number, t.state) for t in trials[:3]] == [(0, State.COMPLETE), (1, State.COMPLETE), (2, State.FAIL)]
    stopped = trials[2]
    assert stopped.user_attrs[TrialAttr.STATUS] == "interrupted" and holds(stopped)
    assert [(t.state, t.system_attrs["fixed_params"], t.user_attrs[TrialAttr.RETRY_OF]) for t in trials[3:]] == [(State.WAITING, stopped.params, 2)]


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


def test_an_interrupt_lands_only_in_a_raised_here_block():
    """Outside ``raised_here`` (and in ``held`` within it) an interrupt waits: for the end of
    ``held``, the next ``raised_here`` block or the next objective; a trial whose objective ends
    before any of those is told its result."""
    interrupts, events = TrialLoopInterrupts(), []

    def objective(trial):
        _interrupt()  # held: the objective goes on
        events.append(f"{trial}: after the interrupt")
        if trial == "second":
            with interrupts.raised_here():
                events.append("never: the held interrupt is raised as the block starts")
        return 1.0

    def on_interrupt(trial):
        events.append(f"{trial}: interrupted")

    run = interrupts.taken_in(objective, on_interrupt)
    with pytest.raises(KeyboardInterrupt), interrupts.installed():
        assert run("first") == 1.0  # its result is told
        run("second")  # raised before it begins
    assert events == ["first: after the interrupt", "second: interrupted"]

    with pytest.raises(KeyboardInterrupt), interrupts.installed():
        with interrupts.raised_here():
            with interrupts.held():
                _interrupt()
                events.append("the held block ends")
            events.append("never: raised as the held block ends")
    assert events[-1] == "the held block ends"


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
