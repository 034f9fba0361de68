"""Workers on one study, each fault played out at a known point on a real Optuna study (journal
file, as ``--workers`` uses): a worker that dies on another machine, and a requeued trial that
starts after a trial numbered above it."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import TINY_SPACE
from latency import load_lut
from nas.coordination import queue_interrupted, retry_once
from nas.objective import Objective
from nas.proxy import QUICK, train_proxy
from nas.study import journal_url, open_storage
from nas.vocabulary import Status, TrialAttr
from space import arch_id, load_space

ROOT = Path(__file__).resolve().parent.parent
PROXY = dataclasses.replace(QUICK, data="synthetic", threads=1, resolution=16)


@pytest.fixture(scope="module")
def candidate(tiny_lut_path):
    """(space, lut, budget, params, config) of a feasible candidate of the tiny space."""
    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    rng = random.Random(0)
    budget_ms = sorted(lut.predict(space.sample(rng)) for _ in range(200))[100]
    while True:
        params, config = space.sample_params(rng)
        if lut.predict(config) <= budget_ms:
            return space, lut, budget_ms, params, config


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=open_storage(journal_url(tmp_path / "s.journal")), direction="maximize")


def _real_train(cfg, report):
    result = train_proxy(cfg, PROXY, report)
    return result.accuracy, list(result.val_accuracies), result.train_seconds


def _bounded_sleep(limit_s: float):
    """The objective's waits, bounded: a wait past ``limit_s`` is the fault (it would never end)."""
    deadline = time.monotonic() + limit_s

    def sleep(seconds: float) -> None:
        assert time.monotonic() < deadline, f"still waiting after {limit_s} s on a trial whose worker is dead"
        time.sleep(seconds)

    return sleep


ELSEWHERE = """
import os, signal, socket, sys
socket.gethostname = lambda: "another-machine"  # this worker runs on another machine
import optuna
from latency import load_lut
from nas.objective import Objective
from nas.study import open_storage
from space import load_space

lut_path, space_path, url, budget_ms = sys.argv[1:]
study = optuna.load_study(study_name="s", storage=open_storage(url))

def train(config, report):
    print("training", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the machine goes away mid-training

objective = Objective(space=load_space(space_path), predict_ms=load_lut(lut_path).predict, budget_ms=float(budget_ms),
                      proxy_id="p", train=train, epochs=1, beat_every_s=0.5)
study.optimize(objective, n_trials=1)
"""


def test_a_worker_dead_on_another_machine_is_failed_and_nothing_waits_on_it(tmp_path, tiny_lut_path, candidate):
    space, lut, budget_ms, params, config = candidate
    study = _study(tmp_path)
    study.enqueue_trial(params)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = journal_url(tmp_path / "s.journal")
    done = subprocess.run([sys.executable, "-c", ELSEWHERE, str(tiny_lut_path), str(TINY_SPACE), url, str(budget_ms)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout == "training\n" and done.returncode == -9, done.stderr[-2000:]
    orphan = study.trials[0]
    assert orphan.state == TrialState.RUNNING and orphan.user_attrs[TrialAttr.WORKER].startswith("another-machine:")

    study.enqueue_trial(params)  # the same architecture, wanted here
    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id="p", train=_real_train, epochs=1,
                          beat_every_s=0.5, sleep=_bounded_sleep(60))
    study.optimize(objective, n_trials=1)
    trials = study.trials
    assert trials[0].state == TrialState.FAIL  # failed once its heartbeat stopped, by the worker that waited on it
    assert trials[1].state == TrialState.COMPLETE and trials[1].user_attrs[TrialAttr.STATUS] == Status.TRAINED
    assert trials[2].state == TrialState.WAITING and trials[2].user_attrs == {TrialAttr.RETRY_OF: 0}  # queued once more


def test_a_requeued_trial_that_starts_late_takes_the_result_of_the_one_training(tmp_path, candidate):
    """Trial 0 (a retry, queued) starts only after trial 1, on the same architecture, began
    training: trial numbers no longer order the starts, and trial 0 must still wait."""
    space, lut, budget_ms, params, config = candidate
    study = _study(tmp_path)
    study.enqueue_trial(params)  # trial 0: the requeued candidate, still waiting in the queue
    study.enqueue_trial(params)  # trial 1: taken first, by another worker
    storage = open_storage(journal_url(tmp_path / "s.journal"))  # a second worker's view of the same file
    later_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), 1)
    assert storage.set_trial_state_values(later_id, TrialState.RUNNING)
    later_study = optuna.load_study(study_name="s", storage=storage)
    later = optuna.trial.Trial(later_study, later_id)

    trained, training, release, waiting = [], threading.Event(), threading.Event(), threading.Event()

    def train(cfg, report):
        trained.append(arch_id(cfg))
        training.set()
        assert release.wait(120)
        return _real_train(cfg, report)

    def sleep(seconds: float) -> None:
        waiting.set()
        time.sleep(seconds)

    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id="p", train=train, epochs=1, sleep=sleep)
    first = threading.Thread(target=lambda: later_study.tell(later, objective(later)))
    first.start()
    assert training.wait(120)
    second = threading.Thread(target=lambda: study.optimize(objective, n_trials=1))
    second.start()
    deadline = time.monotonic() + 120
    while not waiting.is_set() and len(trained) < 2 and time.monotonic() < deadline:  # trial 0 waits, or (the fault) trains
        time.sleep(0.02)
    release.set()
    first.join(120)
    second.join(120)
    assert trained == [arch_id(config)]
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs[TrialAttr.STATUS] == Status.CACHED and trials[0].user_attrs[TrialAttr.CACHED_FROM] == "trial 1"
    assert trials[0].value == trials[1].value


@pytest.mark.parametrize("how", ["failed", "interrupted"])
def test_a_stopped_trial_is_queued_again_whole_or_not_at_all(tmp_path, candidate, how):
    """A trial stopped while drawing its candidate is queued again with the candidate it was
    queued with (a paper baseline), or with the one it drew once declared; one drawn only in part
    is left to the sampler (its parameters queued would have the rest drawn afresh: another
    architecture). Failed: a dead worker's trial (``retry_once``); interrupted: Ctrl-C in the
    objective (``queue_interrupted``)."""
    params = candidate[3]
    study = _study(tmp_path)
    study.enqueue_trial(params)
    queued = study.ask()  # stopped before drawing anything
    partial = study.ask()  # the sampler's, stopped part-way
    partial.suggest_float("x", 0.0, 1.0)
    declared = study.ask()
    declared.suggest_float("x", 0.0, 1.0)
    declared.set_user_attr(TrialAttr.ARCH, "{}")
    for trial in (queued, partial, declared):
        if how == "interrupted":
            queue_interrupted(trial)
        study.tell(trial, state=TrialState.FAIL)
        if how == "failed":
            retry_once(study, study.trials[trial.number])
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert [(t.user_attrs[TrialAttr.RETRY_OF], t.system_attrs["fixed_params"]) for t in waiting] == [
        (queued.number, params), (declared.number, {"x": declared.params["x"]})]
