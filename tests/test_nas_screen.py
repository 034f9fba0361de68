"""The training-free screen of nas.search (``--screen F``): the ranking rule by hand, the
objective on a real Optuna study with a screen whose scores are known, and the command line
end to end with real NASWOT scores."""

from __future__ import annotations

import dataclasses
import random

import optuna
import pandas as pd
import pytest

from conftest import TINY_SPACE
from latency import load_lut
from nas.objective import Objective
from nas.progress import Progress, count_evaluated
from nas.proxy import QUICK, train_proxy
from nas.screens import naswot, passes_screen
from nas.search import main
from nas.study import make_sampler
from nas.vocabulary import Status, StudyAttr, TrialAttr, status_of
from repghost import NetConfig
from space import arch_id, load_space

from helpers import search_args, search_error


def test_the_screen_passes_the_top_share_of_the_candidates_so_far_by_hand():
    assert passes_screen(0.0, [], 3)  # the first candidate always goes on
    assert passes_screen(6.0, [5.0, 4.0], 3) and not passes_screen(3.0, [5.0, 4.0], 3)  # top 1 of 3
    earlier = [5.0, 4.0, 3.0, 2.0, 1.0]  # with the candidate, 6: the top 2 pass
    assert passes_screen(4.5, earlier, 3) and passes_screen(4.0, earlier, 3)  # a tie ranks as high as it can
    assert not passes_screen(3.9, earlier, 3)
    assert all(passes_screen(-1.0, earlier, 1) for _ in range(2))  # factor 1: no screen
    with pytest.raises(ValueError, match="1 or more"):
        passes_screen(1.0, earlier, 0)


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_over_a_stream_about_one_in_factor_passes(factor):
    rng = random.Random(factor)
    scores: list[float] = []
    passed = 0
    for _ in range(600):
        score = rng.gauss(0.0, 1.0)
        passed += passes_screen(score, scores, factor)
        scores.append(score)
    assert 0.8 / factor < passed / 600 < 1.25 / factor


def _quick_trainer(trained: list[str]):
    proxy = dataclasses.replace(QUICK, data="synthetic", threads=1)

    def train(config, report):
        trained.append(arch_id(config))
        result = train_proxy(config, proxy, report)
        return result.accuracy, list(result.val_accuracies), result.train_seconds

    return train


def test_the_objective_trains_only_what_the_screen_passes(tmp_path, tiny_lut_path, budget_ms):
    """On a real TPE study: every screened trial holds a score, and it was trained exactly when
    the rule passes that score against the earlier trials' scores of other architectures; the
    screened ones are pruned, never trained and not counted, and the target is reached."""
    space, lut = load_space(TINY_SPACE), load_lut(tiny_lut_path)
    trained: list[str] = []
    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id="p", train=_quick_trainer(trained), epochs=1,
                          screen=lambda config: float(int(arch_id(config)[:8], 16)), screen_factor=3)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize", sampler=make_sampler("tpe", 0))
    study.optimize(objective, n_trials=200, callbacks=[Progress(4, 0)])
    trials = study.get_trials(deepcopy=False)
    screened = [t for t in trials if TrialAttr.SCREEN_SCORE in t.user_attrs]
    assert count_evaluated(study) == 4  # trained or cached (the tiny space repeats itself): the screened ones do not count
    out = [t for t in screened if status_of(t) == Status.SCREENED]
    assert out and all(t.state == optuna.trial.TrialState.PRUNED for t in out)
    for trial in screened:
        arch = trial.user_attrs[TrialAttr.ARCH_ID]
        earlier = {t.user_attrs[TrialAttr.ARCH_ID]: t.user_attrs[TrialAttr.SCREEN_SCORE] for t in screened
                   if t.number < trial.number and t.user_attrs[TrialAttr.ARCH_ID] != arch}
        passed = passes_screen(trial.user_attrs[TrialAttr.SCREEN_SCORE], earlier.values(), 3)
        assert passed == (status_of(trial) == Status.TRAINED), trial.number
    assert trained == [t.user_attrs[TrialAttr.ARCH_ID] for t in screened if status_of(t) == Status.TRAINED]


def test_a_retry_is_ranked_as_its_first_trial_was(tmp_path, tiny_lut_path, budget_ms):
    """A candidate queued again (its first trial's worker died or was interrupted) had passed
    the screen then: it is ranked against what was screened before its first trial, not after."""
    space, lut = load_space(TINY_SPACE), load_lut(tiny_lut_path)
    trained: list[str] = []
    lowest = {}

    def screen(config):
        return lowest.get(arch_id(config), float(int(arch_id(config)[:8], 16)))

    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id="p", train=_quick_trainer(trained), epochs=1,
                          screen=screen, screen_factor=2)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize", sampler=make_sampler("random", 1))
    study.optimize(objective, n_trials=60, callbacks=[Progress(3, 0)])
    seen = {t.user_attrs.get(TrialAttr.ARCH_ID) for t in study.trials}
    rng, fresh = random.Random(5), []
    for _ in range(10_000):  # two feasible architectures no trial has seen, scored below every other
        params, config = space.sample_params(rng)
        if lut.predict(config) <= budget_ms and arch_id(config) not in seen | {arch_id(c) for _, c in fresh}:
            fresh.append((params, config))
            lowest[arch_id(config)] = -1.0
        if len(fresh) == 2:
            break
    assert len(fresh) == 2, "the tiny space has no two feasible architectures left unseen"
    first = min(t.number for t in study.trials if TrialAttr.SCREEN_SCORE in t.user_attrs)
    study.enqueue_trial(fresh[0][0], user_attrs={TrialAttr.RETRY_OF: first})  # ranked as trial `first` was: it passes
    study.enqueue_trial(fresh[1][0])  # a new candidate: ranked against everything before it
    study.optimize(objective, n_trials=2)
    retry, new = study.trials[-2:]
    assert status_of(retry) == Status.TRAINED and trained[-1] == arch_id(fresh[0][1])
    assert status_of(new) == Status.SCREENED and new.user_attrs[TrialAttr.SCREEN_SCORE] == -1.0


def test_search_with_a_screen_end_to_end(tmp_path, tiny_lut_path, budget_ms, capsys):
    """Real NASWOT scores on synthetic data: the search announces the screen, screens about F
    candidates per candidate trained, says so in the summary, and keeps the factor a setting."""
    assert main(search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "3", "--no-baselines", "--confirm-top", "0", "--screen", "3")) == 0
    out = capsys.readouterr().out
    assert "screen: NASWOT ranks each feasible candidate" in out and "screened" in out
    trials = pd.read_csv(tmp_path / "t" / "trials.csv")
    scored = trials[trials["screen_score"].notna()]
    assert trials["status"].isin(["trained", "cached"]).sum() == 3 and (scored["status"] == "screened").sum() >= 2
    assert set(scored["status"]) <= {"trained", "screened"} and trials[trials["status"] == "infeasible"]["screen_score"].isna().all()
    summary = (tmp_path / "t" / "summary.md").read_text()
    assert "screen: naswot, top 1/3 trained" in summary and f"{(trials['status'] == 'screened').sum()} screened" in summary
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    assert study.user_attrs[StudyAttr.SETTINGS]["screen"] == {"score": "naswot", "factor": 3}
    first_scored = study.trials[int(scored.iloc[0]["number"])]
    config = NetConfig.from_json(first_scored.user_attrs[TrialAttr.ARCH])
    assert first_scored.user_attrs[TrialAttr.SCREEN_SCORE] == naswot(config, dataclasses.replace(QUICK, data="synthetic", seed=0, split_seed=0, threads=1))
    err = search_error(capsys, search_args(tmp_path, tiny_lut_path, budget_ms, "--trials", "4", "--no-baselines", "--confirm-top", "0", "--screen", "2"))
    assert "screen" in err and "other settings" in err
    assert "--screen" in search_error(capsys, search_args(tmp_path, tiny_lut_path, budget_ms, "--screen", "0"))
