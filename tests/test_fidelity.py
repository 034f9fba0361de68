"""The fidelity study's machinery on the tiny space and synthetic data: a deterministic draw
inside the band, a tier-1 runner that resumes after a kill without redoing finished runs, and
the rank statistics checked against figures worked out by hand."""

from __future__ import annotations

import dataclasses
import math
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau

from conftest import TINY_SPACE
from latency import load_lut
from nas.errors import UserError
from nas.fidelity.__main__ import main
from nas.fidelity.analysis import (TODAY, Choice, as_run, choice_section, choice_test_section, choose, noise_by_subset, ranking, recipe,
                                   score_order, screened)
from nas.fidelity.ledger import append_line, read_lines
from nas.fidelity.ranking import bootstrap_interval, noise, paired_difference, tau
from nas.fidelity.replay import replay, strategies
from nas.fidelity.rows import Task, draw_rows, read_rows, split_halves, write_rows
from nas.fidelity.scorers import SCORE_FIELDS, run_scorer
from nas.screens import naswot_of, synflow_of
from nas.fidelity.tiers import RUN_FIELDS, Tier1, import_tier2, plan, run_tier1, run_tier2, settings_id, tier1_data, tier1_settings
from nas.proxy import QUICK
from nas.recipes import Recipe
from nas.training import train
from space import arch_id, load_space

REPO = Path(__file__).resolve().parents[1]
TINY_TIER = Tier1(data="synthetic", train_images=256, epochs=2, val_images=2100)


class Killed(Exception):
    """Stands for a kill at a known point of a run."""


@pytest.fixture(scope="module")
def band(tiny_lut_path) -> tuple[float, float]:
    """The middle half of the tiny space's predicted latencies."""
    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    rng = random.Random(0)
    latencies = sorted(lut.predict(space.sample(rng)) for _ in range(200))
    return latencies[50], latencies[150]


def _draw(tiny_lut_path, band, count=4, exclude=()):
    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    return draw_rows(space, lut.predict, lut_sha256="f" * 64, count=count, low_ms=band[0], high_ms=band[1], seed=3,
                     exclude=exclude, task=Task(in_chans=1, num_classes=10, resolution=32))


@pytest.fixture(scope="module")
def rows_file(tiny_lut_path, band, tmp_path_factory):
    path = tmp_path_factory.mktemp("fidelity") / "rows.csv"
    write_rows(path, _draw(tiny_lut_path, band, count=2))
    return path


def test_draw_is_deterministic_in_band_and_a_prefix(tiny_lut_path, band, tmp_path):
    rows = _draw(tiny_lut_path, band)
    assert rows == _draw(tiny_lut_path, band)
    drawn = [r for r in rows if r.kind == "band"]
    assert len(drawn) == 4 and all(band[0] <= r.latency_ms <= band[1] and r.in_band for r in drawn)
    assert [r.name for r in rows if r.kind == "paper"] == ["paper-0.5x", "paper-1x"]
    assert len({r.id for r in rows}) == len(rows) and all(r.id == arch_id(r.arch) for r in rows)
    halves = [r.half for r in rows if r.in_band]
    assert abs(halves.count("choose") - halves.count("report")) <= 1
    assert all(r.half == "" for r in rows if not r.in_band)
    # Fewer rows with the same seed: the first ones, same halves.
    shorter = [r for r in _draw(tiny_lut_path, band, count=2) if r.kind == "band"]
    assert [(r.id, r.half) for r in shorter] == [(r.id, r.half) for r in drawn[:2]]
    # An excluded winner is never drawn; the rest of the draw goes on without it.
    again = [r for r in _draw(tiny_lut_path, band, exclude=[drawn[0].id]) if r.kind == "band"]
    assert drawn[0].id not in {r.id for r in again} and again[0].id == drawn[1].id
    write_rows(tmp_path / "rows.csv", rows)
    assert read_rows(tmp_path / "rows.csv") == rows


def test_halves_are_balanced_and_keep_their_labels():
    assert split_halves(7, 0)[:5] == split_halves(5, 0)
    for count in range(1, 12):
        labels = split_halves(count, 1)
        assert abs(labels.count("choose") - labels.count("report")) <= 1


def test_draw_refuses_an_empty_band(tiny_lut_path):
    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    with pytest.raises(ValueError, match="widen the band"):
        draw_rows(space, lut.predict, lut_sha256="0", count=2, low_ms=-2.0, high_ms=-1.0, seed=0, max_draws=50)


def test_tier1_resumes_after_a_kill_without_redoing_finished_runs(rows_file, tmp_path):
    rows = read_rows(rows_file)[:2]
    ledger = tmp_path / "tier1.csv"

    def kill(lines_done: int, epoch: int) -> None:
        if lines_done == 2 and epoch == 1:  # in the middle of the third run
            raise Killed

    with pytest.raises(Killed):
        run_tier1(rows, ledger, seeds=[0, 1], tier=TINY_TIER, after_epoch=kill, log=lambda _: None)
    before = ledger.read_text()
    assert len(read_lines(ledger, RUN_FIELDS)) == 2
    expected = [(row.id, seed) for row, seed in plan(rows, [0, 1], 0)]
    assert run_tier1(rows, ledger, seeds=[0, 1], tier=TINY_TIER, log=lambda _: None) == len(expected) - 2
    assert ledger.read_text().startswith(before)  # finished lines kept as they were
    lines = read_lines(ledger, RUN_FIELDS)
    assert [(line["id"], int(line["seed"])) for line in lines] == expected  # seed 0 for every row first
    assert run_tier1(rows, ledger, seeds=[0, 1], tier=TINY_TIER, log=lambda _: None) == 0
    # The run cut short and redone gives what an uninterrupted run gives.
    fresh = tmp_path / "fresh.csv"
    run_tier1(rows, fresh, seeds=[0, 1], tier=TINY_TIER, limit=3, log=lambda _: None)
    assert [line["val_accuracy"] for line in read_lines(fresh, RUN_FIELDS)] == [line["val_accuracy"] for line in lines[:3]]
    assert all(float(line["cpu_seconds"]) > 0 and line["val_images"] == "2100" for line in lines)
    # Other settings into the same ledger are refused.
    with pytest.raises(UserError, match="other settings"):
        run_tier1(rows, ledger, seeds=[0], tier=dataclasses.replace(TINY_TIER, epochs=1), log=lambda _: None)


def test_shards_share_the_plan(rows_file, tmp_path):
    rows = read_rows(rows_file)
    ledger = tmp_path / "tier1.csv"
    for k in (1, 0):
        run_tier1(rows, ledger, seeds=[0], tier=dataclasses.replace(TINY_TIER, epochs=1), shard=(k, 2), log=lambda _: None)
    assert sorted(line["id"] for line in read_lines(ledger, RUN_FIELDS)) == sorted(row.id for row in rows)


def test_tier1_at_another_resolution_is_another_setting(rows_file, tmp_path):
    tier = dataclasses.replace(TINY_TIER, epochs=1, resolution=24)
    assert tuple(tier1_data(tier).split.train_images.shape[-2:]) == (24, 24)
    ledger = tmp_path / "tier1.csv"
    assert run_tier1(read_rows(rows_file)[:1], ledger, seeds=[0], tier=tier, log=lambda _: None) == 1
    with pytest.raises(UserError, match="other settings"):
        run_tier1(read_rows(rows_file)[:1], ledger, seeds=[0], tier=dataclasses.replace(tier, resolution=None), log=lambda _: None)


def test_the_committed_tier1_ledger_resumes_under_the_default_setting():
    lines = read_lines(REPO / "results/fidelity/tier1.csv", RUN_FIELDS)
    assert lines and {line["settings_id"] for line in lines} == {settings_id(tier1_settings(Tier1(), threads=1))}


def test_ledger_sets_apart_a_line_cut_short(tmp_path, capsys):
    path, fields = tmp_path / "l.csv", ("a", "b")
    append_line(path, fields, {"a": 1, "b": 2.5})
    with open(path, "a") as handle:
        handle.write("3,4")  # a kill in the middle of a write
    assert read_lines(path, fields) == [{"a": "1", "b": "2.5"}]
    append_line(path, fields, {"a": 5, "b": "x,y"})
    assert read_lines(path, fields) == [{"a": "1", "b": "2.5"}, {"a": "5", "b": "x,y"}]
    assert "cut short" in capsys.readouterr().err
    with pytest.raises(ValueError, match="columns"):
        read_lines(path, ("a", "c"))


def test_tier2_trains_with_nas_training_and_resumes(rows_file, tmp_path):
    rows = read_rows(rows_file)[:1]
    recipe = Recipe(epochs=1, batch_size=64)
    assert run_tier2(rows, tmp_path / "tier2.csv", tmp_path / "runs", seeds=[0], data="synthetic", recipe=recipe, log=lambda _: None) == 1
    assert run_tier2(rows, tmp_path / "tier2.csv", tmp_path / "runs", seeds=[0], data="synthetic", recipe=recipe, log=lambda _: None) == 0
    line = read_lines(tmp_path / "tier2.csv", RUN_FIELDS)[0]
    assert line["val_images"] == "2000" and line["train_images"] == "4000"
    assert (tmp_path / "runs" / f"{rows[0].name}-{rows[0].id}-seed0" / "model.onnx").is_file()


def test_a_finished_nas_train_run_of_a_row_stands_for_its_tier2_run(rows_file, tmp_path):
    rows = read_rows(rows_file)[:1]
    recipe = Recipe(epochs=1, batch_size=64)
    out = tmp_path / "trained"
    metrics = train(rows[0].arch, recipe, data="synthetic", out=out, seed=1, split_seed=0, threads=1)  # what nas.train runs
    ledger = tmp_path / "tier2.csv"
    kwargs = dict(data="synthetic", recipe=recipe, log=lambda _: None)
    assert import_tier2(rows, ledger, [out], **kwargs) == 1
    assert import_tier2(rows, ledger, [out], **kwargs) == 0  # already there
    (line,) = read_lines(ledger, RUN_FIELDS)
    assert (line["id"], line["seed"], float(line["val_accuracy"])) == (rows[0].id, "1", metrics["val_accuracy"])
    with pytest.raises(UserError, match="differs from a tier-2 run of .* in threads"):
        import_tier2(rows, tmp_path / "other.csv", [out], threads=2, **kwargs)
    with pytest.raises(UserError, match="no readable metrics.json"):
        import_tier2(rows, tmp_path / "other.csv", [tmp_path], **kwargs)


def test_training_free_scores_by_hand():
    linear = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[-1.0, 2.0]]))
    assert synflow_of(linear, (1, 2)) == pytest.approx(math.log(1 * 1 + 2 * 1))  # |w| x d(sum)/dw, input ones
    images = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    # Codes 101 and 110 agree on one position of three: K = [[3, 1], [1, 3]], det 8.
    assert naswot_of(torch.nn.Sequential(torch.nn.ReLU()), images) == pytest.approx(math.log(8))


def test_scorers_write_one_line_per_row_and_seed(rows_file, tmp_path):
    rows = read_rows(rows_file)[:2]
    quick = dataclasses.replace(QUICK, train_size=128, val_size=64, epochs=1)
    ledger = tmp_path / "scores.csv"
    for name in ("proxy-today", "naswot"):
        assert run_scorer(name, rows, ledger, seeds=[0, 1], data="synthetic", base=quick, log=lambda _: None) == 4
        assert run_scorer(name, rows, ledger, seeds=[0, 1], data="synthetic", base=quick, log=lambda _: None) == 0
    lines = read_lines(ledger, SCORE_FIELDS)
    accuracies = [float(line["score"]) for line in lines if line["scorer"] == "proxy-today"]
    assert len(lines) == 8 and all(0 <= a <= 1 for a in accuracies)
    assert {line["scorer"] for line in lines if line["id"] == rows[0].id} == {"proxy-today", "naswot"}


def test_kendall_tau_against_hand_counts():
    assert tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert tau([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(5 * 6))  # tau-b: one tie in x
    assert tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert math.isnan(tau([1, 1, 1], [1, 2, 3]))
    rng = random.Random(0)
    x, y = [rng.randint(0, 5) for _ in range(30)], [rng.random() for _ in range(30)]
    assert tau(x, y) == pytest.approx(kendalltau(x, y).statistic)  # scipy's tau-b, ties included


def test_bootstrap_interval():
    x = [0.1, 0.5, 0.2, 0.9, 0.4, 0.7, 0.3, 0.8]
    assert bootstrap_interval(x, x, resamples=200) == (1.0, 1.0)
    assert bootstrap_interval(x, [-v for v in x], resamples=200) == (-1.0, -1.0)
    y = [0.2, 0.4, 0.1, 0.8, 0.6, 0.5, 0.35, 0.9]
    low, high = bootstrap_interval(x, y, resamples=500, seed=1)
    assert low < tau(x, y) < high and -1 <= low and high <= 1
    assert bootstrap_interval(x, y, resamples=500, seed=1) == (low, high)


def test_paired_difference_draws_the_same_rows_for_both_scores():
    truth = [0.1, 0.5, 0.2, 0.9, 0.4, 0.7, 0.3, 0.8]
    backwards = [-v for v in truth]
    assert paired_difference(truth, backwards, truth, resamples=200) == (2.0, 2.0, 2.0)  # every resample: 1 - (-1)
    assert paired_difference(truth, truth, truth, resamples=200) == (0.0, 0.0, 0.0)
    noisy = [0.2, 0.4, 0.1, 0.8, 0.6, 0.5, 0.35, 0.9]
    difference, low, high = paired_difference(truth, noisy, truth, resamples=500, seed=1)
    assert difference == pytest.approx(1 - tau(noisy, truth)) and 0 <= low <= difference <= high
    unpaired = bootstrap_interval(noisy, truth, resamples=500, seed=1)  # the noisy score's own interval is wider than the gap's
    assert high - low < unpaired[1] - unpaired[0]
    with pytest.raises(ValueError, match="same length"):
        paired_difference(truth, truth[:-1], truth)


def test_noise_of_two_seeds_by_hand():
    result = noise([0.80, 0.82, 0.84], [0.81, 0.82, 0.86])
    assert result.rows == 3 and result.seed_tau == pytest.approx(1.0)
    assert result.mean_abs_diff == pytest.approx(0.01) and result.worst_abs_diff == pytest.approx(0.02)
    assert result.within_sd == pytest.approx(math.sqrt((0.01**2 + 0 + 0.02**2) / 2 / 3))
    assert result.between_sd == pytest.approx(math.sqrt(0.00105 / 2))
    assert result.range_of_means == pytest.approx(0.045)
    assert noise([0.8, 0.9], [0.9, 0.8]).architecture_share == 0.0  # the seed alone orders them


def test_screening_ranks_the_kept_share_by_the_second_stage():
    cheap = pd.Series([4.0, 3.0, 2.0, 1.0], index=list("abcd"))
    expensive = pd.Series([0.1, 0.9, 0.5, 0.7], index=list("abcd"))
    order = screened(cheap, expensive, 0.5)
    assert list(order.sort_values(ascending=False).index) == ["b", "a", "c", "d"]  # d's 0.7 never counts: screened out


def test_the_report_puts_a_score_over_fewer_rows_below_the_covered_ones():
    ranks = pd.DataFrame([
        {"score": "partial", "subset": "band", "rows": 2, "tau": 1.0},
        {"score": "weak", "subset": "band", "rows": 13, "tau": 0.2},
        {"score": "strong", "subset": "band", "rows": 13, "tau": 0.5},
        {"score": "constant", "subset": "band", "rows": 13, "tau": math.nan},
        {"score": "partial", "subset": "all", "rows": 40, "tau": 1.0},
    ])
    assert score_order(ranks) == ["strong", "weak", "constant", "partial"]


def test_a_recipe_counts_once_with_the_mean_of_its_seeds():
    assert recipe("proxy-x@1") == recipe("proxy-x@0") == "proxy-x@seed" and recipe("proxy-x@mean2") == "proxy-x@mean2"
    assert recipe("proxy-x@1 on top 50% by naswot@0") == "proxy-x@seed on top 50% by naswot@0"  # the screen's seed stays
    assert as_run("proxy-x@seed on top 50% by naswot@0") == "proxy-x@0 on top 50% by naswot@0" and as_run("params_task") == "params_task"

    def line(score, rows, value, cpu, subset="band"):
        return {"score": score, "subset": subset, "rows": rows, "tau": value, "cpu_seconds_per_candidate": cpu}

    ranks = pd.DataFrame([
        line("tier2", 26, 0.9, 4000.0),  # a ground truth, not a proxy
        line("tier1 in results/fidelity", 26, 0.95, 600.0),  # another setting's ground truth, likewise
        line("partial", 5, 0.8, 1.0),  # not every row
        line("lucky@0", 26, 0.1, 10.0), line("lucky@1", 26, 0.8, 10.0),  # the best single seed, but 0.45 as a recipe
        line("proxy-a@0 on top 50% by naswot@0", 26, 0.3, 5.0), line("proxy-a@1 on top 50% by naswot@0", 26, 0.5, 5.0),
        line("dear", 26, 0.5001, 60.0),
        line("cheap", 26, 0.4999, 20.0),  # the same to 3 decimals, and cheaper
        line("weak", 26, 0.2, 0.0),
        line("weak", 13, 0.9, 0.0, subset="band-report"),  # another subset never decides
    ])
    picked = choose(ranks)
    assert (picked.recipe, picked.contenders, picked.subset) == ("cheap", 5, "band") and picked.tau == pytest.approx(0.4999)
    assert choose(ranks[ranks["score"] != "cheap"]).recipe == "dear"
    assert choose(ranks[~ranks["score"].isin(["cheap", "dear"])]).recipe == "lucky@seed"  # 0.45 over the screen's 0.40
    assert choose(ranks[ranks["subset"] == "band-report"]) is None


def test_the_choice_section_checks_the_paper_target_against_the_ceiling():
    def lines(score, band_tau, paper_tau):
        return [{"score": score, "subset": subset, "rows": 26, "tau": value, "low": value - 0.3, "high": value + 0.3,
                 "cpu_seconds_per_candidate": 20.0} for subset, value in (("band", band_tau), ("paper", paper_tau))]

    ranks = pd.DataFrame(lines("proxy-new@0", 0.7, 0.8) + lines("proxy-new@1", 0.5, 0.9) + lines("proxy-today@0", 0.3, 0.6)
                         + lines("params_task", 0.1, 0.9))
    ceiling = {"paper": noise([0.1, 0.2, 0.3, 0.4], [0.1, 0.3, 0.2, 0.4])}
    text = "\n".join(choice_section(ranks, ceiling, complete=True))
    assert "Chosen: **proxy-new@seed** (tau 0.60)" in text and "| proxy-new@0 | 20.0 | 0.70 [0.40, 1.00] (n=26) |" in text
    assert "paper tau of proxy-new@0 0.80 against a target of 0.67" in text and "0.67 when lower): met." in text
    assert "checked once tier 1 is complete" in "\n".join(choice_section(ranks, ceiling, complete=False))


def _test_rows(truth_0, truth_1, **scores):
    """A table of band rows as ``analysis.table`` writes it: tier 1 per seed and its mean, and scores."""
    frame = pd.DataFrame({"tier1@0": truth_0, "tier1@1": truth_1, **scores}, index=[f"r{i}" for i in range(len(truth_0))])
    frame["tier1"] = frame[["tier1@0", "tier1@1"]].mean(axis=1)
    return frame.assign(in_band=True, half="choose", kind="band")


def test_a_pick_from_other_rows_passes_or_fails_as_the_fresh_rows_readme_fixed_it():
    truth = [0.80 + 0.01 * i for i in range(10)]
    again = [t + (0.035 if i % 2 else 0.0) for i, t in enumerate(truth)]  # the ceiling: seed tau 0.69, so the band's target is 0.59
    mean = [(a + b) / 2 for a, b in zip(truth, again)]
    shuffled = [truth[i] for i in (3, 0, 7, 1, 9, 2, 5, 8, 4, 6)]
    frame = _test_rows(truth, again, **{"proxy-new@0": mean, TODAY: shuffled, "naswot@0": shuffled, "params_task": shuffled})
    noises = noise_by_subset(frame)
    assert noises["band"].seed_tau == pytest.approx(31 / 45)
    ranks = ranking(frame, {}, resamples=200)
    good = Choice("proxy-new@seed", 0.5, 7, "band")
    text = "\n".join(choice_test_section(frame, ranks, noises, good, "elsewhere", complete=True, resamples=200))
    assert "tested on these rows" in text and "read here as `proxy-new@0`" in text
    assert "tau 1.00 against 0.59" in text and "**The pick passes.**" in text
    assert "tau difference +" in text and "**better than today's**" in text and "the search's default becomes the pick" in text
    worse = _test_rows(truth, again, **{"proxy-new@0": [-t for t in mean], TODAY: shuffled, "naswot@0": shuffled, "params_task": shuffled})
    text = "\n".join(choice_test_section(worse, ranking(worse, {}, resamples=200), noises, good, "elsewhere", complete=True, resamples=200))
    assert "**The pick fails.**" in text and "**worse than today's**" in text and "default stays today's recipe" in text
    partial = choice_test_section(frame, ranks, noises, good, "elsewhere", complete=False, resamples=200)
    assert "The test is decided once tier 1 is complete and every score above covers these rows." in partial


def _replay_frame(truth, proxy, cheap):
    """Rows with a tier-1 accuracy, today's proxy and NASWOT, each the same under both seeds."""
    return pd.DataFrame({"tier1": truth, "proxy-today@0": proxy, "proxy-today@1": proxy, "naswot@0": cheap, "naswot@1": cheap})


def test_replay_screening_pays_when_the_screen_ranks_and_not_when_it_is_backwards():
    truth = [0.80 + 0.01 * i for i in range(12)]
    perfect = _replay_frame(truth, truth, truth)
    plan = {s.name: s for s in strategies(perfect, trainings=3, factors=[2, 4])}
    assert set(plan) == {"proxy-today", "proxy-today on top 1/2 by naswot", "proxy-today on top 1/4 by naswot", "naswot alone"}
    assert (plan["proxy-today on top 1/4 by naswot"].screened, plan["proxy-today on top 1/4 by naswot"].trained) == (12, 3)
    result = replay(perfect, list(plan.values()), draws=400, seed=0).set_index("strategy")
    assert result.loc["proxy-today on top 1/4 by naswot", "regret_pt"] == pytest.approx(0.0)  # sees every row, keeps the best
    assert result.loc["naswot alone", "top3_rate"] == 1.0
    assert result.loc["proxy-today on top 1/2 by naswot", "pick_tier1"] > result.loc["proxy-today", "pick_tier1"]
    backwards = _replay_frame(truth, truth, [-t for t in truth])
    result = replay(backwards, strategies(backwards, trainings=3, factors=[4]), draws=400, seed=0).set_index("strategy")
    assert result.loc["proxy-today on top 1/4 by naswot", "pick_tier1"] == pytest.approx(0.82)  # kept the worst three (0.80-0.82), picked their best
    assert result.loc["proxy-today", "pick_tier1"] > 0.82


def test_replay_refuses_a_pool_larger_than_the_rows():
    frame = _replay_frame([0.8, 0.9, 0.85], [0.1, 0.2, 0.3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="more than the 3 rows"):
        replay(frame, strategies(frame, trainings=2, factors=[2]), draws=10, seed=0)


def test_analyse_reports_partial_results(rows_file, tmp_path, tiny_lut_path, capsys):
    rows = read_rows(rows_file)
    run_tier1(rows, tmp_path / "tier1.csv", seeds=[0, 1], tier=dataclasses.replace(TINY_TIER, epochs=1), limit=len(rows) + 1, log=lambda _: None)
    quick = dataclasses.replace(QUICK, train_size=128, val_size=64, epochs=1)
    for name in ("synflow", "proxy-today"):
        run_scorer(name, rows, tmp_path / "scores.csv", seeds=[0, 1], data="synthetic", base=quick, log=lambda _: None)
    assert main(["analyse", "--rows", str(rows_file), "--dir", str(tmp_path), "--resamples", "50", "--lut", str(tiny_lut_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert f"PARTIAL: tier 1 has {len(rows) + 1} of {2 * len(rows)} runs" in text and "has changed since" in text
    table = pd.read_csv(tmp_path / "table.csv", index_col=0)
    ranks = pd.read_csv(tmp_path / "ranking.csv")
    both = table.dropna(subset=["synflow@mean2", "tier1"])
    hit = ranks[(ranks["score"] == "synflow@mean2") & (ranks["subset"] == "all")].iloc[0]
    assert hit["rows"] == len(both) == len(rows)
    assert hit["tau"] == pytest.approx(tau(both["synflow@mean2"].tolist(), both["tier1"].tolist()), abs=1e-4)
    assert set(ranks["score"]) >= {"params", "macs_task", "synflow@0", "synflow@1", "synflow@mean2",
                                   "proxy-today@mean2 on top 50% by synflow@0", "proxy-today@0 on top 50% by params_task"}
    assert "| proxy-today@mean2 |" in text
    assert "Chosen: **" in text and "The paper-width target is checked once tier 1 is complete." in text
    other = tmp_path / "other-setting"  # the same runs as another setting's tier 1: it must rank exactly like tier 1
    other.mkdir()
    (other / "tier1.csv").write_text((tmp_path / "tier1.csv").read_text())
    assert main(["analyse", "--rows", str(rows_file), "--dir", str(tmp_path), "--resamples", "50", "--lut", str(tiny_lut_path),
                 "--against", str(other)]) == 0
    ranks = pd.read_csv(tmp_path / "ranking.csv").set_index(["score", "subset"])
    column = f"tier1 in {other}"
    assert ranks.loc[(column, "all"), "tau"] == pytest.approx(1.0) and ranks.loc[(column, "all"), "rows"] == len(rows)
    runs = pd.read_csv(other / "tier1.csv")
    assert ranks.loc[(column, "all"), "cpu_seconds_per_candidate"] == pytest.approx(runs["cpu_seconds"].sum() / runs["id"].nunique(), abs=1e-3)
    assert main(["analyse", "--rows", str(rows_file), "--dir", str(tmp_path), "--against", str(tmp_path / "nowhere")]) == 2
    assert "no tier1.csv there" in capsys.readouterr().err
    tested = tmp_path / "tested"  # the same rows as if drawn afresh: the pick made on tmp_path's band is tested there
    tested.mkdir()
    for name in ("tier1.csv", "scores.csv"):
        (tested / name).write_text((tmp_path / name).read_text())
    assert main(["analyse", "--rows", str(rows_file), "--dir", str(tested), "--resamples", "50", "--chosen-in", str(tmp_path)]) == 0
    text = (tested / "report.md").read_text()
    assert f"## The proxy chosen in `{tmp_path}`, tested on these rows" in text and "## The proxy chosen on `band`" not in text
    assert "The test is decided once tier 1 is complete" in text and f"--chosen-in {tmp_path}" in text
    assert main(["analyse", "--rows", str(rows_file), "--dir", str(tested), "--chosen-in", str(tmp_path / "nowhere")]) == 2
    assert "no ranking.csv there; run python -m nas.fidelity analyse --dir" in capsys.readouterr().err
    assert main(["replay", "--table", str(tmp_path / "table.csv"), "--subset", "all", "--trainings", "1", "--factors", "2", "--draws", "50"]) == 0
    replayed = pd.read_csv(tmp_path / "replay-all.csv")
    assert set(replayed["strategy"]) == {"proxy-today", "proxy-today on top 1/2 by synflow", "synflow alone"}


def test_cli_refuses_bad_input(rows_file, tmp_path, capsys):
    assert main(["draw", "--out", str(rows_file)]) == 2
    assert "drawn once" in capsys.readouterr().err
    assert main(["tier2", "--rows", str(rows_file), "--out", str(tmp_path / "t2.csv")]) == 2
    assert "--ids" in capsys.readouterr().err
    assert main(["tier1", "--rows", str(tmp_path / "missing.csv")]) == 2
    assert "draw the rows first" in capsys.readouterr().err
    assert main(["score", "--scorer", "nope", "--rows", str(rows_file), "--out", str(tmp_path / "s.csv")]) == 2
    assert "unknown scorer" in capsys.readouterr().err
    rows = ["--rows", str(rows_file)]
    for command in (["tier1", *rows], ["score", "--scorer", "naswot", *rows], ["compare", "--arm", "a", str(tmp_path), "--name", "x"]):
        assert main([*command, "--resolution", "4"]) == 2
        assert "resolution must be at least 8, got 4" in capsys.readouterr().err
    assert main(["replay", "--table", str(tmp_path / "missing.csv")]) == 2
    assert "run python -m nas.fidelity analyse first" in capsys.readouterr().err


def test_output_cut_short_by_its_reader_ends_quietly(tmp_path):
    """``replay ... | head``: the reader is gone before the table is written; no traceback."""
    command = [sys.executable, "-m", "nas.fidelity", "replay", "--table", str(REPO / "results/fidelity/table.csv"),
               "--subset", "band", "--draws", "20", "--out", str(tmp_path / "replay.csv")]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # every write now fails with EPIPE
    err = process.stderr.read().decode()
    assert process.wait() == 141 and "Traceback" not in err and "Exception ignored" not in err, err
    assert (tmp_path / "replay.csv").is_file()


def test_compare_trains_each_searchs_winner_once_and_reuses_the_ground_truths_runs(tmp_path, tiny_lut_path, band, capsys):
    """Two arms of two real searches each (TPE and random, tiny space, synthetic data): every
    distinct winner gets its tier-1 runs once, a winner the ground truth holds is not trained
    again, and each search's value is its winner's tier-1 mean."""
    from nas.fidelity.compare import comparison, read_search, train_winners, verdict
    from nas.search import main as search

    budget = f"{band[1]}ms"
    folders = {}
    for sampler in ("tpe", "random"):
        for seed in (0, 1):
            folder = tmp_path / f"{sampler}-{seed}"
            assert search(["--budget", budget, "--lut", str(tiny_lut_path), "--space", str(TINY_SPACE), "--data", "synthetic", "--quick",
                           "--threads", "1", "--results", str(tmp_path), "--study", folder.name, "--trials", "2", "--no-baselines",
                           "--confirm-top", "1", "--confirm-seeds", "2", "--seed", str(seed), "--sampler", sampler]) == 0
            folders.setdefault(sampler, []).append(folder)
    capsys.readouterr()
    searches = [read_search(arm, folder) for arm, group in folders.items() for folder in group]
    assert all(s.trained >= 1 and s.candidates >= s.trained and s.proxy_epochs == s.trained for s in searches)  # --quick: one epoch
    tier, truth, ledger = dataclasses.replace(TINY_TIER, epochs=1), tmp_path / "tier1.csv", tmp_path / "tier1-winners.csv"
    known = searches[0].winner
    append_line(truth, RUN_FIELDS, {"row": 0, "id": known.id, "name": "band-00", "seed": 0, "val_accuracy": 0.5,
                                    "settings_id": settings_id(tier1_settings(tier, 1))})
    distinct = {s.winner.id for s in searches}
    assert train_winners(searches, ledger, truth, seeds=[0, 1], tier=tier, threads=1, log=lambda _: None) == 2 * len(distinct) - 1
    assert train_winners(searches, ledger, truth, seeds=[0, 1], tier=tier, threads=1, log=lambda _: None) == 0
    assert (known.id, 0) not in {(line["id"], int(line["seed"])) for line in read_lines(ledger, RUN_FIELDS)}
    per_search, per_arm = comparison(searches, ledger, truth, seeds=[0, 1], tier=tier, threads=1)
    mine = per_search[per_search["winner"] == known.id].iloc[0]
    assert mine["tier1@0"] == 0.5 and mine["tier1"] == pytest.approx((0.5 + mine["tier1@1"]) / 2)
    assert list(per_arm["arm"]) == ["tpe", "random"] and list(per_arm["with_tier1"]) == [2, 2]
    assert per_arm.iloc[0]["tier1_mean"] == pytest.approx(per_search[per_search["arm"] == "tpe"]["tier1"].mean())
    assert per_arm.iloc[1]["verdict"] in ("better", "worse", "tied within noise")
    assert verdict(0.01, 0.99, complete=True) == "better" and verdict(0.99, 0.01, complete=True) == "worse"
    assert verdict(0.2, 0.8, complete=True) == "tied within noise" and verdict(0.01, 0.99, complete=False) == "incomplete"
    # The command line writes both tables; runs of other settings (here: tier 1's defaults) are not mixed in.
    arms = [arg for arm, group in folders.items() for arg in ("--arm", arm, *map(str, group))]
    assert main(["compare", *arms, "--name", "search", "--dir", str(tmp_path), "--data", "synthetic", "--no-train"]) == 0
    assert "tied within noise" not in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "compare-search.csv")["tier1"].isna().all()
    assert list(pd.read_csv(tmp_path / "compare-search-arms.csv")["verdict"].fillna("")) == ["", "incomplete"]
    # The command line: one-line errors for what it cannot use.
    assert main(["compare", "--arm", "tpe", "--name", "x"]) == 2 and "--arm takes a name" in capsys.readouterr().err
    assert main(["compare", "--arm", "a", str(tmp_path), "--name", "x", "--dir", str(tmp_path)]) == 2
    assert "no readable best.json" in capsys.readouterr().err
