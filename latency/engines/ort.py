"""ONNX Runtime on the CPU."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .base import TimedEngine, import_engine_package


class OrtEngine(TimedEngine):
    """ONNX Runtime, CPU execution provider, sequential execution. Inputs and outputs are bound
    once to preallocated buffers (I/O binding), so a timed call is the session run alone."""

    name = "ort"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._ort = import_engine_package("onnxruntime", "ort", "pip install onnxruntime")

    def version(self) -> str:
        return str(self._ort.__version__)

    def _prepare(self, onnx_path: str, input_shape: tuple[int, ...]) -> Callable[[], Any]:
        ort = self._ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.opt_level]
        options.log_severity_level = 3
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{onnx_path} has {len(inputs)} inputs; the agent times single-input models")
        rng = np.random.default_rng(0)
        data = rng.standard_normal(input_shape).astype(np.float32)
        binding = session.io_binding()
        binding.bind_cpu_input(inputs[0].name, data)
        outputs = []
        for output in session.get_outputs():
            if not all(isinstance(d, int) for d in output.shape):
                raise ValueError(f"{onnx_path}: output {output.name} has a dynamic shape {output.shape}; export with fixed shapes")
            value = ort.OrtValue.ortvalue_from_shape_and_type(output.shape, np.float32, "cpu", 0)
            binding.bind_ortvalue_output(output.name, value)
            outputs.append(value)
        run = session.run_with_iobinding
        keep = (session, data, outputs)  # buffers must outlive the binding

        def call() -> None:
            run(binding)

        call.keep = keep  # type: ignore[attr-defined]
        return call
