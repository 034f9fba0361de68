"""The notebooks run headless (nbclient, a real IPython kernel) on a small study and LUT made by
the tests; a cell that raises fails the test. Also: they are kept without outputs, and the
tables they show (nas.explore) hold what they claim."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import nbformat
import optuna
import pytest
from nbclient import NotebookClient

from conftest import TINY_SPACE
from latency import load_lut
from latency.validate import main as validate_main
from latency.validate import output_paths
from nas.errors import UserError
from nas.explore import choice_costs, decision_importances, latency_breakdown, open_any_study
from nas.outputs import best_within, trials_frame
from repghost import NetConfig
from space import load_space

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def run_notebook(name: str, env: dict[str, str], monkeypatch) -> str:
    """Execute notebooks/<name> with ``env`` set (the first cell reads it); returns the text of
    every output, in order."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output["text"])
            elif "data" in output:
                texts.append(output["data"].get("text/plain", ""))
                texts.append("<image>" if "image/png" in output["data"] else "")
    return "\n".join(texts)


def test_notebooks_are_stored_without_outputs():
    assert {p.name for p in NOTEBOOKS} >= {"pareto.ipynb", "lut.ipynb"}
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs: clear them before committing"
        assert "os.environ" in code[0].source, f"{path.name}: the first code cell reads the parameters from the environment"


def test_pareto_notebook(tiny_study, monkeypatch):
    text = run_notebook("pareto.ipynb", {"REPGHOST_STUDY_STORAGE": tiny_study.storage_url, "REPGHOST_STUDY_NAME": tiny_study.name}, monkeypatch)
    assert f"study {tiny_study.name} ({tiny_study.storage_url})" in text
    assert text.count("<image>") == 3  # the front, the importances, the breakdown
    for shown in ("RepGhostNet 0.5x", "predicted latency", "(offset)", "stored in the study"):
        assert shown in text


def test_without_a_storage_the_latest_study_opens(tiny_study, tmp_path):
    """The notebook's default: the study under REPGHOST_RESULTS whose storage changed last."""
    for name, age in (("older", 0), ("newer", -100), ("oldest", 100)):
        shutil.copytree(tiny_study.folder, tmp_path / name)
        db = tmp_path / name / "study.db"
        mtime = db.stat().st_mtime - age
        os.utime(db, (mtime, mtime))
    study, url = open_any_study(None, None, tmp_path)
    assert url == f"sqlite:///{tmp_path / 'newer' / 'study.db'}" and study.study_name == tiny_study.name
    with pytest.raises(UserError, match="no study under"):
        open_any_study(None, None, tmp_path / "empty")


@pytest.fixture(scope="module")
def validated_lut(tiny_lut_path, tmp_path_factory) -> Path:
    """A copy of the tiny LUT with its validation beside it (python -m latency.validate, for real)."""
    lut = tmp_path_factory.mktemp("validated") / "tiny.json"
    shutil.copy(tiny_lut_path, lut)
    assert validate_main(["--lut", str(lut), "--n", "8"]) == 0
    assert output_paths(lut)["csv"].is_file()
    return lut


def test_lut_notebook_with_validation(validated_lut, monkeypatch):
    text = run_notebook("lut.ipynb", {"REPGHOST_LUT": str(validated_lut), "REPGHOST_SAMPLES": "10"}, monkeypatch)
    assert "random architectures: n=8" in text and "q4" in text
    assert text.count("<image>") == 2  # predicted vs measured, costs per choice
    for decision in ("width", "kernel", "reuse"):
        assert decision in text


def test_lut_notebook_without_validation(tiny_lut_path, tmp_path, monkeypatch):
    lut = tmp_path / "tiny.json"
    shutil.copy(tiny_lut_path, lut)
    text = run_notebook("lut.ipynb", {"REPGHOST_LUT": str(lut), "REPGHOST_SAMPLES": "5"}, monkeypatch)
    assert "no validation of this LUT here (tiny.validation.csv is missing)" in text
    assert text.count("<image>") == 1 and "width" in text


def test_choice_costs_follow_the_predictor(tiny_lut_path):
    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    costs = choice_costs(space, lut.predict, samples=12, seed=3)
    first = costs.groupby("decision").head(1)
    assert (first["mean_delta_ms"] == 0).all()  # each decision against its first choice
    width = costs[costs["decision"] == "width"].set_index("choice")["mean_delta_ms"]
    assert width["1.0"] > 0  # twice the channels cost more on any device
    # One case by hand: the same network at each width.
    params, _ = space.sample_params(random.Random(3))
    wide, narrow = ({**params, "width": w} for w in (1.0, 0.5))
    assert lut.predict(space.decode(wide)) > lut.predict(space.decode(narrow))
    assert set(costs["decision"]) == {d.name.rpartition(".")[2] if d.name.startswith("b") else d.name for d in space.decisions}


def test_breakdown_and_importances(tiny_study):
    study = optuna.load_study(study_name=tiny_study.name, storage=tiny_study.storage_url)
    frame = trials_frame(study)
    best = best_within(frame, tiny_study.budget_ms)
    breakdown = latency_breakdown(load_lut(tiny_study.lut), NetConfig.from_json(best["arch"]))
    assert breakdown["ms"].sum() == pytest.approx(best["latency_ms"])
    assert breakdown["percent"].sum() == pytest.approx(100.0)
    importances, notes = decision_importances(study)
    assert "predicted latency" in importances.columns  # latencies always differ between architectures
    for column in importances.columns:
        assert importances[column].sum() == pytest.approx(1.0)
    assert len(importances.columns) + len(notes) == 2
