"""``python -m nas.fidelity claim``: a real search's winner against a RepGhostNet on synthetic
data with a one-epoch recipe at 16 px. The paper model chosen is the widest within the budget,
each (model, seed) is trained once and read on the test split once, a finished nas.train run
counts as a run, runs of other settings are neither taken nor mixed in, and errors are one line."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest

import repghost
from nas.errors import UserError
from nas.fidelity.__main__ import main
from nas.fidelity.claim import RUN_FIELDS, RUNS_FILE, claim_table, import_runs, read_claim, report, run_claim
from nas.fidelity.ledger import read_lines
from nas.recipes import Recipe
from nas.training import accuracy_on_test_split, train
from space import arch_id

RECIPE = Recipe(epochs=1, batch_size=64, resolution=16)
DATA = "synthetic"


@pytest.fixture
def search(tiny_study, tmp_path):
    """The tiny study's outputs with the paper models it would list at 224 px: 0.5x and 0.58x
    within its budget, 0.8x beyond it (their latencies set so)."""
    folder = tmp_path / "budget-synthetic"
    shutil.copytree(tiny_study.folder, folder, ignore=shutil.ignore_patterns("study.db"))
    budget = json.loads((folder / "best.json").read_text())["budget_ms"]
    lines = [{"model": f"RepGhostNet {w:g}x", "width": w, "latency_ms": budget * factor, "params": 1000 + i, "macs": 2000 + i,
              "arch_id": arch_id(repghost.repghostnet_config(w))} for i, (w, factor) in enumerate([(0.5, 0.8), (0.58, 0.95), (0.8, 1.5)])]
    pd.DataFrame(lines).to_csv(folder / "baselines.csv", index=False)
    return folder


def test_the_claim_trains_each_model_and_seed_once_and_reads_the_test_split_once(search, tmp_path):
    claim = read_claim(search)
    best = json.loads((search / "best.json").read_text())
    assert claim.baseline.label == "RepGhostNet 0.58x" and claim.baseline.params == 1001 and claim.baseline.macs == 2001
    assert claim.winner.arch_id == best["arch_id"] and claim.winner.latency_ms == best["latency_ms"]
    assert read_claim(search, 0.8).baseline.label == "RepGhostNet 0.8x"
    claim = read_claim(search, 0.5)  # the smallest: the quickest to train here
    folder, kwargs = tmp_path / "claim", dict(data=DATA, threads=1, recipe=RECIPE, log=lambda _: None)
    # A finished nas.train run of the baseline, trained without reading the test split, counts as its seed-0 run.
    own = tmp_path / "own-run"
    metrics = train(claim.baseline.config, RECIPE, data=DATA, out=own, seed=0, split_seed=claim.split_seed, threads=1)
    assert metrics["test_split_read"] is False
    assert import_runs(claim, folder, [own], **kwargs) == 1
    assert import_runs(claim, folder, [own], **kwargs) == 0  # already there
    with pytest.raises(UserError, match="differs from a claim run of RepGhostNet 0.5x in threads"):
        import_runs(claim, tmp_path / "other", [own], **{**kwargs, "threads": 2})
    with pytest.raises(UserError, match="trained none of the architectures a claim run may have"):
        import_runs(read_claim(search, 0.8), tmp_path / "other", [own], **kwargs)
    assert run_claim(claim, folder, seeds=[0, 1], **kwargs) == 3
    assert run_claim(claim, folder, seeds=[0, 1], **kwargs) == 0
    lines = read_lines(folder / RUNS_FILE, RUN_FIELDS)
    assert sorted((line["id"], int(line["seed"])) for line in lines) == sorted(
        (model.arch_id, seed) for model in claim.models for seed in (0, 1))
    for line in lines:  # each run's test figure is the one its saved model gives
        assert float(line["test_accuracy"]) == accuracy_on_test_split(Path(line["run"]))
    table = claim_table(claim, folder, seeds=[0, 1], data=DATA, threads=1, recipe=RECIPE)
    winner = table.iloc[0]
    tests = {m.arch_id: [float(line["test_accuracy"]) for line in lines if line["id"] == m.arch_id] for m in claim.models}
    assert winner["test_mean"] == pytest.approx(statistics.mean(tests[claim.winner.arch_id]))
    assert winner["minus_baseline_pt"] == pytest.approx(100 * (winner["test_mean"] - table.iloc[1]["test_mean"]))
    assert winner["verdict"] in ("better", "worse", "tied within noise") and list(table["runs"]) == [2, 2]
    text = report(claim, table, seeds=[0, 1], data=DATA, recipe=RECIPE, command="claim")
    assert f"**{winner['verdict']}**" in text and "RepGhostNet 0.5x" in text
    # A third seed planned: the verdict waits for it.
    assert claim_table(claim, folder, seeds=[0, 1, 2], data=DATA, threads=1, recipe=RECIPE).iloc[0]["verdict"] == "incomplete"


def test_the_command_line_takes_no_run_of_other_settings_and_refuses_bad_input(search, tmp_path, capsys):
    out = tmp_path / "claims"
    assert main(["claim", str(search), "--data", DATA, "--out", str(out), "--no-train"]) == 0
    table = pd.read_csv(out / search.name / "claim.csv")
    assert list(table["runs"]) == [0, 0] and table["verdict"].iloc[0] == "incomplete"
    assert table[["p_better", "p_worse"]].isna().all().all()  # no test on fewer than two values a side
    text = (out / search.name / "claim.md").read_text()
    assert "**Incomplete**: 0 of 6 runs" in text and f"`python -m nas.fidelity claim {search} --no-train`" in text
    capsys.readouterr()
    for args, message in ((["--baseline", "0.7"], "has widths 0.5, 0.58, 0.8"), (["--seeds", "0", "0"], "must be distinct"),
                          (["--threads", "0"], "at least 1")):
        assert main(["claim", str(search), "--data", DATA, "--out", str(out), "--no-train", *args]) == 2
        assert message in capsys.readouterr().err
    assert main(["claim", str(tmp_path), "--out", str(out)]) == 2 and "no readable best.json" in capsys.readouterr().err
    lines = pd.read_csv(search / "baselines.csv")
    lines["latency_ms"] *= 10
    lines.to_csv(search / "baselines.csv", index=False)
    assert main(["claim", str(search), "--out", str(out)]) == 2 and "pass --baseline WIDTH" in capsys.readouterr().err
