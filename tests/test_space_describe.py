"""The ``python -m space.describe`` tool, called through ``main``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from space.describe import main

TINY = Path(__file__).parent / "data" / "tiny_space.yaml"


def test_describe_tiny_space(capsys):
    assert main([str(TINY), "--sample", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "size: 144 distinct networks" in out
    assert "distinct deploy-form parts: 20 (16 blocks, 2 stems, 2 heads)" in out
    assert "kernel b01: [3, 5]" in out
    assert "branch is asked only when reuse is reparam: b00 b01 b02" in out
    assert "repghost 1x (base)" in out and "repghost 2x: not in this space" in out
    assert "2 random architectures (seed 1):" in out
    assert out.count("M MACs") == 4 + 2  # four base points in the space, two samples


def test_describe_reports_a_bad_file_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("mid: [1.0]", "mid: []"))
    assert main([str(bad), "--sample", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "choices.mid: empty choice list" in err
    assert main([str(TINY), "--sample", "-1"]) == 2


def test_package_import_does_not_load_the_tool():
    # Importing the package must load neither the tool (RuntimeWarning under -m) nor Optuna.
    code = "import sys, space; space.load_space(); print('space.describe' in sys.modules, 'optuna' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
