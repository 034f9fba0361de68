"""Many workers, one study, for real: ``python -m nas.search --workers 2`` on a journal file
(interrupted, then resumed) and against a PostgreSQL server. The study ends with exactly the
evaluations asked for, and no architecture is trained twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import psycopg
import pytest

from conftest import TINY_SPACE
from latency import load_lut
from nas.evaluations import all_evaluations
from nas.progress import count_evaluated
from nas.study import journal_url, open_storage
from space import load_space

ROOT = Path(__file__).resolve().parent.parent
TRIALS = 10


@pytest.fixture(scope="module")
def budget_ms(tiny_lut_path) -> float:
    """A budget near the middle of the tiny space's predicted latencies: some candidates fit."""
    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    rng = random.Random(0)
    latencies = sorted(lut.predict(space.sample(rng)) for _ in range(200))
    return round(latencies[len(latencies) // 2], 6)


def _command(tmp_path: Path, lut: Path, budget_ms: float, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nas.search", "--budget", f"{budget_ms}ms", "--lut", str(lut), "--space", str(TINY_SPACE),
            "--data", "synthetic", "--quick", "--resolution", "16", "--trials", str(TRIALS), "--workers", "2", "--results", str(tmp_path), "--study", "w", *extra]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _check_study(study: optuna.Study) -> None:
    """Exactly TRIALS evaluations, each architecture trained once (baselines included), nothing
    left running, and both workers took part."""
    trials = study.get_trials(deepcopy=False)
    assert count_evaluated(study) == TRIALS
    assert not [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    proxy_id = study.user_attrs["settings"]["proxy_id"]
    evaluations = all_evaluations(study, proxy_id)
    trained = Counter(t.user_attrs["arch_id"] for t in trials if t.user_attrs.get("status") == "trained")
    assert trained and max(trained.values()) == 1, trained
    for arch, evaluation in evaluations.items():
        if evaluation.source.startswith("baseline"):
            assert arch not in trained  # a baseline found again is taken from the cache
        else:
            assert trained[arch] == 1 and study.trials[int(evaluation.source.split()[1])].user_attrs["arch_id"] == arch
    assert set(trained) <= set(evaluations)
    workers = {t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs}
    assert len(workers) >= 2


def _evaluated_so_far(storage: optuna.storages.BaseStorage) -> int:
    try:
        return count_evaluated(optuna.load_study(study_name="w", storage=storage))
    except KeyError:  # the study is not created yet
        return 0


# Loaded by the workers of the interrupted run (sitecustomize, through PYTHONPATH): once two
# proxy trainings have finished in the workers, every further one waits until the interrupt.
HOLD_AFTER_TWO = """
import fcntl, os, sys, time
if "--worker-index" in sys.argv:
    import nas.proxy
    train, counter = nas.proxy.train_proxy, os.environ["REPGHOST_TEST_HOLD_FILE"]

    def held(*args, **kwargs):
        with open(counter, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            finished = len(f.read())
        while finished >= 2:
            time.sleep(0.5)
        result = train(*args, **kwargs)
        with open(counter, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write("x")
        return result

    nas.proxy.train_proxy = held
"""


def test_two_workers_on_a_journal_file_interrupted_and_resumed(tmp_path, tiny_lut_path, budget_ms):
    """Interrupted at a known point (two trainings done, the workers held in their next one),
    then resumed by the same command. The search starts with SIGINT ignored, as a background
    shell (`nohup ... &`) starts it: the workers must stop anyway."""
    command = _command(tmp_path, tiny_lut_path, budget_ms)
    url = journal_url(tmp_path / "w" / "study.journal")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_AFTER_TWO)
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{ROOT}", "REPGHOST_TEST_HOLD_FILE": str(tmp_path / "finished")}
    parent = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 300  # a bound on a hung test, not a timing the verdict rests on
    watched = open_storage(url)  # one reader: it replays only what was appended since its last look
    while parent.poll() is None and time.monotonic() < deadline and _evaluated_so_far(watched) < 2:
        time.sleep(0.2)
    assert parent.poll() is None, "the search ended before it could be interrupted:\n" + parent.communicate()[1][-3000:]
    parent.send_signal(signal.SIGTERM)  # as a scheduler or `kill` would
    out, err = parent.communicate(timeout=120)
    assert parent.returncode == 130, err[-3000:]
    assert "interrupted" in out and "rerun the same command" in out
    storage = open_storage(url)
    before = {t.number: t for t in optuna.load_study(study_name="w", storage=storage).trials}
    finished = {n for n, t in before.items() if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL}
    assert not [n for n, t in before.items() if t.state == optuna.trial.TrialState.RUNNING]  # the workers recorded the interrupt
    assert 2 <= count_evaluated(optuna.load_study(study_name="w", storage=storage)) < TRIALS

    done = _run(command)  # the same command resumes
    assert "worker 1/2 | trial" in done.stdout and "worker 2/2 | trial" in done.stdout
    study = optuna.load_study(study_name="w", storage=open_storage(url))
    for number in finished:  # nothing finished was lost or changed
        assert study.trials[number].state == before[number].state and study.trials[number].values == before[number].values
    _check_study(study)
    assert (tmp_path / "w" / "trials.csv").is_file() and (tmp_path / "w" / "best.onnx").is_file()


def _postgres_url() -> str:
    """The test server's URL; without one, a clear skip (a failure in CI, which always has one)."""
    url = os.environ.get("REPGHOST_TEST_POSTGRES_URL")
    problem = None
    if not url:
        problem = "REPGHOST_TEST_POSTGRES_URL is not set: `make test` starts a throwaway PostgreSQL server and sets it (or `make postgres`)"
    else:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as error:
            problem = f"no PostgreSQL server reachable at REPGHOST_TEST_POSTGRES_URL={url}: {str(error).strip().splitlines()[0]}"
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(problem + " (CI always starts one: see `make postgres`)")
        pytest.skip(problem)
    return url


@pytest.fixture
def postgres_database() -> str:
    """A fresh database on the test server, dropped afterwards; yields its URL."""
    url = _postgres_url()
    name = f"repghost_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_workers_on_postgresql(tmp_path, tiny_lut_path, budget_ms, postgres_database):
    done = _run(_command(tmp_path, tiny_lut_path, budget_ms, "--storage", postgres_database, "--no-baselines"))
    assert f"2 workers on {postgres_database}" in done.stdout
    assert "worker 1/2 | trial" in done.stdout and "worker 2/2 | trial" in done.stdout
    study = optuna.load_study(study_name="w", storage=open_storage(postgres_database))
    _check_study(study)
    assert not (tmp_path / "w" / "study.db").exists() and not (tmp_path / "w" / "study.journal").exists()
