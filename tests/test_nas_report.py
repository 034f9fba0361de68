"""python -m nas.report writes a study's outputs again from its storage alone: a real search
(tiny space, synthetic data), its outputs deleted, then reported again and compared."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import optuna
import pytest

from nas.report import main

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("trials.csv", "pareto.csv", "baselines.csv", "confirmation.csv")
OUTPUTS = (*TABLES, "best.json", "summary.md", "pareto.png", "best.onnx")


@pytest.fixture
def study_copy(tiny_study, tmp_path) -> Path:
    """A copy of the tiny study's folder (storage and outputs), free to change."""
    folder = tmp_path / tiny_study.name
    shutil.copytree(tiny_study.folder, folder)
    return folder


def _delete_outputs(folder: Path) -> None:
    for name in OUTPUTS:
        (folder / name).unlink()


def _check_outputs(folder: Path, original: Path, *, same_summary: bool = True) -> None:
    for name in (*TABLES, "best.json", *(("summary.md",) if same_summary else ())):
        assert (folder / name).read_text() == (original / name).read_text(), name
    assert (folder / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((folder / "best.json").read_text())
    session = ort.InferenceSession(str(folder / "best.onnx"), providers=["CPUExecutionProvider"])
    side = session.get_inputs()[0].shape[2]
    assert session.run(None, {"input": np.zeros((1, 3, side, side), np.float32)})[0].shape == (1, best["architecture"]["num_classes"])


def test_report_cli_regenerates_every_output(tiny_study, study_copy):
    _delete_outputs(study_copy)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "nas.report", str(study_copy)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"outputs in {study_copy}" in done.stdout
    assert "not available here" not in done.stdout  # the LUT is where the settings say
    _check_outputs(study_copy, tiny_study.folder)


def test_report_without_the_lut(tiny_study, study_copy, capsys):
    """Reported where the LUT is not: the latencies stored in the study are enough, and a line says so."""
    study = optuna.load_study(study_name=tiny_study.name, storage=f"sqlite:///{study_copy / 'study.db'}")
    study.set_user_attr("settings", {**study.user_attrs["settings"], "lut": str(study_copy / "elsewhere" / "tiny.json")})
    _delete_outputs(study_copy)
    assert main([str(study_copy)]) == 0
    out = capsys.readouterr().out
    assert "is not available here: the report uses the predicted latencies stored in the study" in out
    _check_outputs(study_copy, tiny_study.folder, same_summary=False)
    summary = (study_copy / "summary.md").read_text().replace(str(study_copy / "elsewhere" / "tiny.json"), str(tiny_study.lut))
    assert summary == (tiny_study.folder / "summary.md").read_text()


def test_report_of_a_study_without_stored_baselines(tiny_study, study_copy):
    """Studies made before baselines and the LUT description were stored: both come from the LUT."""
    with sqlite3.connect(study_copy / "study.db") as db:
        removed = db.execute("delete from study_user_attributes where key like 'baseline:%' or key = 'lut_info'").rowcount
    assert removed >= 2
    _delete_outputs(study_copy)
    assert main([str(study_copy)]) == 0
    _check_outputs(study_copy, tiny_study.folder)


def test_report_from_another_storage_into_another_folder(tiny_study, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    assert main([str(out), "--storage", tiny_study.storage_url, "--study", tiny_study.name]) == 0
    for name in TABLES:
        assert (out / name).read_text() == (tiny_study.folder / name).read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["{tmp}/nothing"], "no study storage in"),
        (["{tmp}/x", "--storage", "{url}", "--study", "missing"], "no study 'missing'"),
        (["{tmp}/x", "--storage", "not-a-url"], "is not a URL"),
    ],
)
def test_report_errors(tiny_study, tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, url=tiny_study.storage_url) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
