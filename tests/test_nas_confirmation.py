"""Confirmation: the statistics on given numbers (one-sided Welch t-test, Holm), and the
re-trainings on a real Optuna study with real proxy training (synthetic data): stored as they
finish, resumed without redoing finished seeds, reported from the storage alone."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import warnings

import optuna
import pytest
from scipy.stats import t as student_t

from nas.confirmation import Plan, confirm, fresh_seeds, holm, mean_std, stored_accuracies, stored_plan, table, targets, verdicts, welch_greater_p
from nas.outputs import trials_frame
from nas.proxy import QUICK, train_proxy
from nas.stored_study import load_stored_study, report_inputs

REFERENCE = [0.780, 0.790, 0.800]
CLEARLY_BETTER = [0.850, 0.860, 0.870]  # raw p 0.0005: better, with or without Holm
BETTER_ALONE = [0.800, 0.810, 0.825]  # raw p 0.042: below 0.05 alone, not after Holm over three
NO_BETTER = [0.770, 0.790, 0.810]  # same mean as the reference: p 0.5


def _welch_by_hand(sample, reference) -> float:
    """The one-sided Welch test written out: t, Welch-Satterthwaite degrees of freedom, upper tail."""
    va, vb = statistics.variance(sample) / len(sample), statistics.variance(reference) / len(reference)
    t = (statistics.fmean(sample) - statistics.fmean(reference)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(sample) - 1) + vb**2 / (len(reference) - 1))
    return float(student_t.sf(t, df))


@pytest.mark.parametrize("sample", [CLEARLY_BETTER, BETTER_ALONE, NO_BETTER])
def test_welch_p_is_the_one_sided_welch_test(sample):
    assert welch_greater_p(sample, REFERENCE) == pytest.approx(_welch_by_hand(sample, REFERENCE), rel=1e-9)


def test_welch_p_with_no_spread_on_one_side_is_quiet_and_exact():
    # Accuracies are counts over a fixed split: three seeds can score the same, and scipy warned
    # of catastrophic cancellation in the middle of a search's confirmation output.
    same = [0.8, 0.8, 0.8]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p_value = welch_greater_p(same, REFERENCE)
    assert p_value == pytest.approx(_welch_by_hand(same, REFERENCE), rel=1e-9)


def test_welch_p_where_the_test_is_undefined():
    assert welch_greater_p([0.8], REFERENCE) == 1.0  # one seed: no spread to test against
    assert welch_greater_p([0.8, 0.8], [0.7, 0.7]) == 1.0  # no spread at all: scipy gives nan


def test_holm_on_given_numbers():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01; max(2 x 0.03, 1 x 0.04)
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.6, 0.6]) == pytest.approx([1.0, 1.0])  # capped
    assert holm([]) == []


def test_verdicts_call_a_candidate_better_only_after_holm():
    found = verdicts({"a": CLEARLY_BETTER, "b": BETTER_ALONE, "c": NO_BETTER}, REFERENCE)
    raw = {name: _welch_by_hand(sample, REFERENCE) for name, sample in (("a", CLEARLY_BETTER), ("b", BETTER_ALONE), ("c", NO_BETTER))}
    assert raw["b"] < 0.05  # alone it would pass
    assert found["a"].p_holm == pytest.approx(3 * raw["a"]) and found["a"].better
    assert found["b"].p_holm == pytest.approx(2 * raw["b"]) and not found["b"].better
    assert found["c"].p_holm == pytest.approx(raw["c"]) and not found["c"].better
    assert found["b"].words.startswith("tied within noise") and found["a"].words.startswith("better")
    alone = verdicts({"b": BETTER_ALONE}, REFERENCE)  # one candidate: Holm changes nothing
    assert alone["b"].better


def test_seeds_and_spread():
    assert fresh_seeds(0, 3) == (1, 2, 3) and fresh_seeds(5, 2) == (6, 7)
    mean, std = mean_std([0.78, 0.79, 0.80])
    assert mean == pytest.approx(0.79) and std == pytest.approx(0.01)
    assert math.isnan(mean_std([0.8])[1])


def test_confirmation_on_a_study_resumes_and_is_reported_from_storage(tiny_study, tmp_path):
    """The tiny study's own confirmation (made by nas.search) is in its storage; a wider plan
    with one more seed, killed after one new training, resumes with the rest only."""
    study = load_stored_study(tiny_study.storage_url, tiny_study.name)
    settings, info, baselines = report_inputs(study, log=lambda line: None)
    plan = stored_plan(study)
    assert plan.seeds == (1, 2) and plan.reduced  # --quick: two seeds, and the summary says so
    chosen = targets(trials_frame(study), baselines, tiny_study.budget_ms, plan.top_k)
    candidates = [t for t in chosen if t.kind == "candidate"]
    assert 1 <= len(candidates) <= plan.top_k and all(t.latency_ms <= tiny_study.budget_ms for t in chosen)
    found = table(study, settings["proxy_id"], plan, chosen)
    assert (found["confirmed_seeds"] == 2).all()
    assert found["confirmed_mean"].is_monotonic_decreasing
    summary = (tiny_study.folder / "summary.md").read_text()
    assert "one-sided Welch t-test" in summary and "Holm" in summary and "Quick run: 2 seeds" in summary
    best = json.loads((tiny_study.folder / "best.json").read_text())
    assert best["arch_id"] == found.iloc[0]["arch_id"]  # ranked by the confirmed mean
    assert best["confirmation"]["mean"] == pytest.approx(statistics.fmean(best["confirmation"]["accuracies"]))

    # A copy of the study, confirmed with a third seed: killed after one new training, then resumed.
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    optuna.copy_study(from_study_name=tiny_study.name, from_storage=tiny_study.storage_url, to_storage=url, to_study_name="c")
    copy = optuna.load_study(study_name="c", storage=url)
    wider = Plan(plan.top_k, (1, 2, 3))
    proxy = dataclasses.replace(QUICK, data="synthetic", threads=1, resolution=16, epochs=2)  # the tiny study's proxy
    trained, kill = [], [True]

    def train(config, seed):
        if len(trained) == 1 and kill[0]:
            raise KeyboardInterrupt  # the kill, at a known point: after the first new training
        trained.append(seed)
        result = train_proxy(config, dataclasses.replace(proxy, seed=seed))
        return result.accuracy, list(result.val_accuracies), result.train_seconds

    with pytest.raises(KeyboardInterrupt):
        confirm(copy, settings["proxy_id"], wider, chosen, train, log=lambda line: None)
    assert trained == [3]
    kill[0] = False
    confirm(copy, settings["proxy_id"], wider, chosen, train, log=lambda line: None)
    assert trained == [3] * len(chosen)  # seeds 1 and 2 came from the storage; seed 3 once per architecture
    for target in chosen:
        assert set(stored_accuracies(copy, settings["proxy_id"], target.arch_id, wider.seeds)) == {1, 2, 3}
