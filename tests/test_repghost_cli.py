"""``python -m repghost`` prints the model and exports it."""

import numpy as np
import onnxruntime as ort

from repghost.__main__ import main


def test_cli_prints_table_and_exports(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    assert main(["--width", "0.5", "--deploy", "--export", str(path)]) == 0
    out = capsys.readouterr().out
    assert "params: 2,306,528" in out  # deploy form
    assert "43,314,720 MACs" in out
    assert out.count("reparam") == 16
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((1, 3, 224, 224), np.float32)})[0].shape == (1, 1000)


def test_cli_ghostnet(capsys):
    assert main(["--family", "ghostnet", "--width", "1.0"]) == 0
    out = capsys.readouterr().out
    assert out.count("concat") == 16 and "params: 5,182,508" in out


def test_cli_bad_width(capsys):
    assert main(["--width", "0.7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: width must be one of") and err.count("\n") == 1
