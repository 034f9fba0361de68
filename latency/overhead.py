"""The graph whose timing is the cost of one session call by itself."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def trivial_onnx(path: str | Path, *, opset: int = 17) -> str:
    """Write a one-node graph (Identity on a 1x1 float tensor, input named ``input``) to ``path``."""
    tensor_in = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1])
    tensor_out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "session_call", [tensor_in], [tensor_out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return str(path)
