"""An engine whose cost is a known function of the ONNX graph: no clock, no noise.

``cost_ms = CALL_MS + MS_PER_NODE * nodes + MS_PER_MMAC * MMACs / threads + MS_PER_MB * MB``,
where MACs are those of the graph's Conv, Gemm and MatMul nodes (one fused multiply-add is one
MAC, shapes from ONNX shape inference) and MB are the bytes of its initializers (weights) and of
its input, / 1e6. The same file gives the same figure on every machine, every time, so tests of
logic (resume, corrections, prediction, validation statistics, choice costs) can check exact
values; real engines are tested for what noise cannot change.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..timing import Measurement, RunPolicy
from .base import Engine, import_engine_package

COST_MODEL_VERSION = "1"
CALL_MS = 0.004
MS_PER_NODE = 0.002
MS_PER_MMAC = 0.02
MS_PER_MB = 0.25


def graph_cost(onnx_path: str, input_shape: tuple[int, ...]) -> dict[str, int]:
    """MACs, bytes (initializers + input, float32 input) and nodes of the graph at ``onnx_path``."""
    onnx = import_engine_package("onnx", "deterministic", "pip install onnx")
    model = onnx.load(onnx_path)
    graph = model.graph
    initializers = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"{onnx_path} has {len(inputs)} inputs; the engine measures single-input models")
    dims = inputs[0].type.tensor_type.shape.dim
    del dims[:]
    for size in input_shape:
        dims.add().dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    shapes: dict[str, tuple[int, ...]] = dict(initializers)
    for value in [*inferred.input, *inferred.value_info, *inferred.output]:
        shape = value.type.tensor_type.shape
        if value.type.HasField("tensor_type") and shape.dim:
            shapes.setdefault(value.name, tuple(d.dim_value for d in shape.dim))
    macs = 0
    for node in inferred.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        out = shapes.get(node.output[0])
        if not out or not all(out):
            raise ValueError(f"{onnx_path}: no fixed shape for the output of {node.op_type} node {node.name!r}; export with fixed shapes")
        if node.op_type == "Conv":
            per_output = math.prod(shapes[node.input[1]][1:])  # weight: out, in / group, kernel...
        elif node.op_type == "Gemm":
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            a_shape = shapes[node.input[0]]
            per_output = a_shape[0] if trans_a else a_shape[-1]
        else:
            per_output = shapes[node.input[0]][-1]
        macs += math.prod(out) * per_output
    weight_bytes = sum(tensor_bytes(tensor) for tensor in graph.initializer)
    input_bytes = math.prod(input_shape) * 4
    return {"macs": int(macs), "bytes": int(weight_bytes + input_bytes), "nodes": len(graph.node)}


def tensor_bytes(tensor: Any) -> int:
    onnx = import_engine_package("onnx", "deterministic", "pip install onnx")
    item = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    return math.prod(tensor.dims) * item


class DeterministicEngine(Engine):
    """Computes, never times: see the module docstring for the cost. ``opt_level`` and
    ``inter_op_threads`` are recorded and change nothing; ``threads`` divides the MAC term."""

    name = "deterministic"

    def version(self) -> str:
        return f"cost-model-{COST_MODEL_VERSION}"

    def cost_ms(self, cost: dict[str, int]) -> float:
        return CALL_MS + MS_PER_NODE * cost["nodes"] + MS_PER_MMAC * cost["macs"] / 1e6 / self.threads + MS_PER_MB * cost["bytes"] / 1e6

    def _measure_many(self, models: list[tuple[str, tuple[int, ...]]], policy: RunPolicy) -> list[Measurement]:
        measurements = []
        for onnx_path, input_shape in models:
            cost = graph_cost(onnx_path, input_shape)
            ms = self.cost_ms(cost)
            measurements.append(Measurement(ms, 0.0, 1, dict(cost), ms, ms))
        return measurements
