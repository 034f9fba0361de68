"""nas.search end to end on real Optuna studies (SQLite), synthetic data and the tiny space."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import optuna
import pandas as pd
import pytest

from conftest import TINY_SPACE
from helpers import search_args, search_error
from latency import load_lut
from nas.budget import parse_budget
from nas.errors import UserError
from nas.evaluations import all_evaluations
from nas.objective import Objective
from nas.proxy import QUICK, train_proxy
from nas.search import main
from nas.study import make_sampler, open_storage, open_study
from nas.vocabulary import StudyAttr
from space import arch_id, load_space

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text,ms", [("30ms", 30.0), ("0.03s", 30.0), ("30000us", 30.0), (" 12.5 ms", 12.5)])
def test_budget_strings(text, ms):
    assert parse_budget(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["30", "30 sec", "-3ms", "0ms", "fast", ""])
def test_bad_budget_strings(text):
    with pytest.raises(UserError, match="budget"):
        parse_budget(text)


def test_search_writes_every_output(tmp_path, tiny_lut_path, budget_ms, capsys):
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "6", "--seed", "3")) == 0
    out = capsys.readouterr().out
    assert "trial" in out and "trials ETA" in out
    announced = int(re.search(r"confirmation trains up to (\d+) more proxy runs", out).group(1))
    assert 0 < int(re.search(r"trainings stored, (\d+) to go", out).group(1)) <= announced
    folder = tmp_path / "t"
    trials = pd.read_csv(folder / "trials.csv")
    evaluated = trials[trials["status"].isin(["trained", "cached", "pruned"])]
    assert len(evaluated) >= 6
    # Infeasible candidates end at once: no training, no accuracy, no cached evaluation.
    infeasible = trials[trials["status"] == "infeasible"]
    assert (infeasible["latency_ms"] > budget_ms).all()
    assert (infeasible["epoch_accuracies"] == "[]").all()
    assert (trials[trials["status"].isin(["trained", "cached"])]["latency_ms"] <= budget_ms).all()
    pareto = pd.read_csv(folder / "pareto.csv")
    assert not pareto.empty and pareto["latency_ms"].is_monotonic_increasing and pareto["score"].is_monotonic_increasing
    # The best is the confirmed candidate with the highest mean over its fresh seeds.
    best = json.loads((folder / "best.json").read_text())
    confirmed = trials[(trials["confirmed_seeds"] > 0) & (trials["latency_ms"] <= budget_ms)]
    assert best["latency_ms"] <= budget_ms and best["confirmation"]["mean"] == confirmed["confirmed_mean"].max()
    assert best["arch_id"] in set(confirmed[confirmed["confirmed_mean"] == confirmed["confirmed_mean"].max()]["arch_id"])
    assert best["seed"] == 3  # nas.train holds out the validation split this seed drew
    session = ort.InferenceSession(str(folder / "best.onnx"), providers=["CPUExecutionProvider"])
    resolution = load_space(TINY_SPACE).resolution
    assert session.run(None, {"input": np.zeros((1, 3, resolution, resolution), np.float32)})[0].shape == (1, 10)
    assert (folder / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"budget: {budget_ms:g} ms" in (folder / "summary.md").read_text()
    # Rerunning the same command resumes: nothing is lost, nothing is trained again.
    before = len(trials)
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "6", "--seed", "3")) == 0
    assert "already has" in capsys.readouterr().out
    assert len(pd.read_csv(folder / "trials.csv")) == before


def _feasible(space, lut, budget_ms: float, seed: int):
    """(params, config) of the first random candidate whose predicted latency fits the budget."""
    rng = random.Random(seed)
    while True:
        params, config = space.sample_params(rng)
        if lut.predict(config) <= budget_ms:
            return params, config


def test_duplicates_are_not_trained_again(tmp_path, tiny_lut_path, budget_ms):
    space, lut = load_space(TINY_SPACE), load_lut(tiny_lut_path)
    params, config = _feasible(space, lut, budget_ms, seed=1)
    trained = []

    def train(cfg, report):
        trained.append(arch_id(cfg))
        result = train_proxy(cfg, dataclasses.replace(QUICK, data="synthetic", threads=1), report)
        return result.accuracy, list(result.val_accuracies), result.train_seconds

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id="p", train=train, epochs=QUICK.epochs)
    for _ in range(3):
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=3)
    assert trained == [arch_id(config)]
    statuses = [t.user_attrs["status"] for t in study.trials]
    assert statuses == ["trained", "cached", "cached"]
    assert len({t.value for t in study.trials}) == 1
    assert list(all_evaluations(study, "p")) == [arch_id(config)]


@pytest.mark.parametrize("epochs", [1, 2])
def test_pruner_stops_early_epochs_but_never_after_the_last(tmp_path, tiny_lut_path, budget_ms, epochs):
    """A pruner that prunes everything (accuracy must exceed 1) stops a 2-epoch run after epoch 1
    and leaves a 1-epoch run alone: after the last epoch there is nothing left to save."""
    space, lut = load_space(TINY_SPACE), load_lut(tiny_lut_path)
    params, config = _feasible(space, lut, budget_ms, seed=2)
    proxy = dataclasses.replace(QUICK, data="synthetic", threads=1, epochs=epochs)

    def train(cfg, report):
        result = train_proxy(cfg, proxy, report)
        return result.accuracy, list(result.val_accuracies), result.train_seconds

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.0 + 1e-9))
    study.enqueue_trial(params)
    study.optimize(Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id="p", train=train, epochs=epochs), n_trials=1)
    trial = study.trials[0]
    if epochs == 2:
        assert (trial.state, trial.user_attrs["status"], len(trial.user_attrs["epoch_accuracies"])) == (optuna.trial.TrialState.PRUNED, "pruned", 1)
    else:
        assert (trial.state, trial.user_attrs["status"]) == (optuna.trial.TrialState.COMPLETE, "trained")


def test_the_random_sampler_is_a_setting_of_the_study(tmp_path, tiny_lut_path, budget_ms, capsys):
    """--sampler random runs a real study with Optuna's RandomSampler, says so in the summary,
    and a rerun with the default sampler is refused (the two do not mix in one study)."""
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "1", "--no-baselines", "--confirm-top", "0", "--sampler", "random")) == 0
    assert "sampler: random" in (tmp_path / "t" / "summary.md").read_text()
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    assert study.user_attrs[StudyAttr.SETTINGS]["sampler"] == "random"
    capsys.readouterr()
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "2", "--no-baselines", "--confirm-top", "0")) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "sampler: 'random' -> None" in line and "rerun with the same ones" in line
    storage = open_storage(f"sqlite:///{tmp_path / 'other.db'}")
    opened = open_study(name="s", storage=storage, multi_objective=False, seed=0, pruner="none", settings={}, sampler="random")
    assert isinstance(opened.sampler, optuna.samplers.RandomSampler)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # Optuna's, on ask() outside optimize()
@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_resumed_study_draws_new_candidates_not_the_first_runs_again(tmp_path, sampler):
    """A rerun reseeds the sampler by what the study holds: with the first run's seed it would
    draw that run's candidates again (each a wasted trial, a cached one counted as evaluated)."""
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    kwargs = dict(name="s", storage=storage, multi_objective=False, seed=0, pruner="none", settings={}, sampler=sampler)

    def run(study, n):
        drawn = []
        for _ in range(n):
            trial = study.ask()
            drawn.append(trial.suggest_float("x", 0.0, 1.0))
            study.tell(trial, drawn[-1])
        return drawn

    first = run(open_study(**kwargs), 3)
    assert first == run(optuna.create_study(sampler=make_sampler(sampler, 0)), 3)  # a fresh study keeps the seed's stream
    resumed = run(open_study(**kwargs), 3)
    assert not set(resumed) & set(first)
    again = open_storage(f"sqlite:///{tmp_path / 'again.db'}")  # the same resume draws the same candidates
    assert run(open_study(**{**kwargs, "storage": again}), 3) == first and run(open_study(**{**kwargs, "storage": again}), 3) == resumed


def test_a_trial_killed_before_its_first_heartbeat_is_failed_on_resume(tmp_path):
    """A worker killed between creating a trial and naming itself leaves a RUNNING trial with no
    heartbeat, which Optuna's staleness check never sees: opening the study fails it."""
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_seconds=1)
    kwargs = dict(name="s", storage=storage, multi_objective=False, seed=0, pruner="none", settings={"a": 1})
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: ask() does not beat
        orphan = open_study(**kwargs).ask()  # created, never run: no heartbeat, no worker
    young = open_study(**kwargs)
    assert young.trials[orphan.number].state == optuna.trial.TrialState.RUNNING  # within the grace period: left alone
    time.sleep(3.5)
    lines = []
    study = open_study(**kwargs, log=lines.append)
    assert study.trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert study.trials[orphan.number + 1 :] == []  # it drew no candidate: nothing to queue once more
    assert lines == [f"trial {orphan.number} of a stopped run marked failed (worker gone); not queued again "
                     f"(a retry already, or stopped before its candidate was whole): {orphan.number}"]


def test_killed_search_resumes_without_losing_trials(tmp_path, tiny_lut_path, budget_ms, capsys):
    args = search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "40", "--heartbeat-seconds", "1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "nas.search", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = tmp_path / "t" / "study.db"
    deadline = time.monotonic() + 240
    done = []
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        if db.exists():
            try:
                with sqlite3.connect(db) as connection:
                    done = connection.execute("select number from trials where state = 'COMPLETE'").fetchall()
            except sqlite3.OperationalError:
                continue
            if len(done) >= 3:
                break
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    storage = f"sqlite:///{db}"
    before = {t.number: t for t in optuna.load_study(study_name="t", storage=storage).trials}
    finished_before = {n for n, t in before.items() if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(finished_before) >= 3
    time.sleep(3.5)  # past the grace period of a 1 s heartbeat: the interrupted trial is stale
    capsys.readouterr()
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "8", "--heartbeat-seconds", "1")) == 0
    out = capsys.readouterr().out
    after = {t.number: t for t in optuna.load_study(study_name="t", storage=storage).trials}
    for number in finished_before:  # every finished trial is intact
        assert after[number].state == optuna.trial.TrialState.COMPLETE
        assert after[number].values == before[number].values
    interrupted = [n for n, t in before.items() if t.state == optuna.trial.TrialState.RUNNING]
    for number in interrupted:  # never counted as done, and the resumed run says so
        assert after[number].state == optuna.trial.TrialState.FAIL
        assert "of a stopped run marked failed" in out and str(number) in out
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in after.values())


def test_ctrl_c_is_one_line_and_the_interrupted_candidate_is_trained_on_resume(tmp_path, tiny_lut_path, budget_ms, capfd, monkeypatch):
    """Ctrl-C during the second proxy training (the hook raises it there, as the signal would):
    one line says what was kept, no traceback, and the rerun trains that very candidate."""
    trainings = []

    def interrupted_second(*args, **kwargs):
        trainings.append(1)
        if len(trainings) == 2:
            raise KeyboardInterrupt
        return train_proxy(*args, **kwargs)

    monkeypatch.setattr("nas.search.train_proxy", interrupted_second)
    args = search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "3", "--no-baselines", "--confirm-top", "0")
    assert main(args) == 130
    err = capfd.readouterr().err
    assert "interrupted: every finished trial" in err and "rerun the same command to resume" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "failed with" not in err
    storage = f"sqlite:///{tmp_path / 't' / 'study.db'}"
    (stopped,) = [t for t in optuna.load_study(study_name="t", storage=storage).trials if t.state == optuna.trial.TrialState.FAIL]
    monkeypatch.setattr("nas.search.train_proxy", train_proxy)
    assert main(args) == 0
    assert f"still queued from a stopped run: the candidate of trial {stopped.number}\n" in capfd.readouterr().out
    assert "1 interrupted" in (tmp_path / "t" / "summary.md").read_text()
    assert pd.read_csv(tmp_path / "t" / "trials.csv").set_index("number").loc[stopped.number, "status"] == "interrupted"
    retries = [t for t in optuna.load_study(study_name="t", storage=storage).trials if t.user_attrs.get("retry_of") == stopped.number]
    assert [(t.state, t.params) for t in retries] == [(optuna.trial.TrialState.COMPLETE, stopped.params)]


def test_bad_inputs(tmp_path, tiny_lut_path, capsys):
    assert "budget" in search_error(capsys, ["--budget", "fast", "--lut", str(tiny_lut_path)])
    assert "fastest architecture" in search_error(capsys, search_args(tmp_path, tiny_lut_path, 0.001))
    assert "LUT" in search_error(capsys, search_args(tmp_path, tmp_path / "missing.json", 1.0))
    other_space = ROOT / "space" / "repghost.yaml"
    assert "another space" in search_error(capsys, ["--budget", "1ms", "--lut", str(tiny_lut_path), "--space", str(other_space)])
    missing_data = search_args(tmp_path, tiny_lut_path, 1.0) + ["--data", "imagefolder:/nonexistent/folder"]
    assert "nonexistent" in search_error(capsys, missing_data)
    assert "--trials" in search_error(capsys, search_args(tmp_path, tiny_lut_path, 1.0, "--trials", "0"))


def test_resume_with_other_settings_is_refused(tmp_path, tiny_lut_path, budget_ms, capsys):
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "1", "--no-baselines")) == 0
    err = search_error(capsys, search_args(tmp_path, tiny_lut_path, budget_ms * 1.5, "--trials", "1", "--no-baselines"))
    assert "other settings" in err and "budget_ms" in err


def test_a_lut_marked_poor_is_said_on_start_and_in_the_summary(tmp_path, tiny_lut_path, budget_ms, capsys):
    """A user reading only summary.md learns that the latencies come from a build marked poor."""
    data = json.loads(tiny_lut_path.read_text())
    data.update(quality="poor", quality_notes=["chunk at entry 2: the drift reference moved 7.5% (limit 3%) in each of 2 tries"])
    lut = tmp_path / "poor.json"
    lut.write_text(json.dumps(data))
    assert main(search_args(tmp_path, lut, budget_ms, "--trials", "1", "--no-baselines", "--confirm-top", "0")) == 0
    (warning,) = load_lut(lut).warnings()
    assert warning in capsys.readouterr().err
    (shown,) = load_lut(lut).warnings(str(lut.resolve()))  # outputs name files as the settings do
    assert f"- {shown}\n" in (tmp_path / "t" / "summary.md").read_text()


def test_bad_storages_and_negative_budgets_are_one_line_and_leave_no_folder(tmp_path, tiny_lut_path, budget_ms, capsys):
    assert "no storage URL Optuna knows" in search_error(capsys, search_args(tmp_path, tiny_lut_path, budget_ms, "--storage", "bogus://x"))
    err = search_error(capsys, search_args(tmp_path, tiny_lut_path, budget_ms, "--storage", f"sqlite:///{tmp_path}/missing/folder/s.db"))
    assert "SQLite" in err and "folder exists" in err and "database server" not in err
    assert "above zero" in search_error(capsys, ["--budget", "-5ms", "--lut", str(tiny_lut_path)])
    assert not (tmp_path / "t").exists()  # failed runs leave no empty study folder behind


def test_a_bug_keeps_its_traceback(tmp_path, tiny_lut_path, budget_ms, monkeypatch):
    """Only user errors become one-line messages: an internal ValueError propagates."""
    import nas.search

    def broken(*args, **kwargs):
        raise ValueError("an internal fault")

    monkeypatch.setattr(nas.search, "evaluate_baselines", broken)
    with pytest.raises(ValueError, match="an internal fault"):
        main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "1"))


def test_workers_over_a_sqlite_study_move_it_to_a_journal_file(tmp_path, tiny_lut_path, budget_ms, capsys):
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "1", "--no-baselines")) == 0
    folder = tmp_path / "t"
    before = optuna.load_study(study_name="t", storage=f"sqlite:///{folder / 'study.db'}")
    capsys.readouterr()
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "1", "--no-baselines", "--workers", "2")) == 0
    assert "moved from" in capsys.readouterr().out
    assert not (folder / "study.db").exists() and (folder / "study.db.moved-to-journal").exists()
    after = optuna.load_study(study_name="t", storage=open_storage(f"journal:{folder / 'study.journal'}"))
    assert [(t.number, t.state, t.values, t.user_attrs) for t in after.trials] == [(t.number, t.state, t.values, t.user_attrs) for t in before.trials]
    assert after.user_attrs == before.user_attrs


def test_trial_counts_stay_integers_beside_failed_trials(tmp_path):
    from nas.outputs import trials_frame

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"status": "trained", "params": 123456, "macs": 7890123, "latency_ms": 1.0}))
    trials_frame(study).to_csv(tmp_path / "trials.csv", index=False)
    table = pd.read_csv(tmp_path / "trials.csv", dtype=str)
    assert table["params"].tolist()[1] == "123456" and table["macs"].tolist()[1] == "7890123"
    assert table["params"].isna().tolist() == [True, False]


def test_a_resumed_run_shows_an_eta_from_the_stored_pace_until_it_has_its_own(capsys):
    """Before its first evaluation a resumed run has no pace of its own: the trial lines take
    the stored trials' (wall seconds of every finished trial per evaluated one)."""
    from datetime import datetime, timedelta

    from optuna.trial import FrozenTrial, TrialState

    from nas.progress import Progress

    study = optuna.create_study(direction="maximize")
    start = datetime(2026, 12, 1, 12, 0, 0)
    for number, (status, seconds) in enumerate([("trained", 30), ("infeasible", 2), ("trained", 28), ("infeasible", 1)]):
        study.add_trial(FrozenTrial(number=number, trial_id=number, state=TrialState.COMPLETE, value=0.5 if status == "trained" else 0.0,
                                    datetime_start=start, datetime_complete=start + timedelta(seconds=seconds), params={},
                                    distributions={}, user_attrs={"status": status}, system_attrs={}, intermediate_values={}))
    Progress(target=5, done_before=2)(study, study.trials[-1])
    line = capsys.readouterr().out.rstrip()
    assert "2/5 evaluated" in line and line.endswith("trials ETA 1m32s")  # (30 + 2 + 28 + 1) / 2 x 3 left = 91.5 s
    fresh = optuna.create_study(direction="maximize")
    fresh.add_trial(study.trials[1])
    Progress(target=5, done_before=0)(fresh, fresh.trials[-1])
    line = capsys.readouterr().out.rstrip()
    assert line.endswith("trials ETA ?") and "| infeasible" in line and "| best -      |" in line  # no trial scored yet
    Progress(target=5, done_before=2)(study, study.trials[0])
    assert "| best 0.5000 |" in capsys.readouterr().out
