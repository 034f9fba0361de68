"""MNN, the engine the RepGhost paper timed with."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable

import numpy as np

from .base import TimedEngine, import_engine_package
from .native_output import native_output_captured, stdout_to_stderr


class MnnEngine(TimedEngine):
    """MNN, the engine the RepGhost paper timed with: the ONNX file is converted by MNN's own
    converter (in a temporary folder, untimed), then run by an Interpreter session on the CPU
    backend with an explicit thread count and precision.

    ``precision`` is the arithmetic asked for: ``fp32`` (MNN's "normal", its default), ``fp16``
    ("low": half precision where the CPU has it, ARMv8.2 and later; fp32 elsewhere) or ``bf16``
    ("lowBF"). ``opt_level`` maps to the converter's graph optimization: ``disabled`` -> 0, every
    other level -> 1 (MNN's default: the optimizations that are right for every input; its level
    2, "may be wrong in some cases", is never used). ``inter_op_threads`` has no MNN counterpart.

    The converter is called through the ``_tools`` extension module that the MNN wheel ships,
    not through ``MNN.tools.mnnconvert``, whose wrapper reports every conversion to a remote
    logging service (and may try to pip-install its client).
    """

    name = "mnn"
    SETTINGS = TimedEngine.SETTINGS + ("precision",)
    PRECISIONS = {"fp32": "normal", "fp16": "low", "bf16": "lowBF"}
    CONVERTER_LEVELS = {"disabled": 0, "basic": 1, "extended": 1, "all": 1}

    def __init__(self, *, precision: str = "fp32", **settings: Any) -> None:
        super().__init__(**settings)
        if precision not in self.PRECISIONS:
            raise ValueError(f"engine 'mnn' precision must be one of {list(self.PRECISIONS)}, got {precision!r}")
        self.precision = precision
        with native_output_captured():  # MNN prints the CPU's features on import
            self._mnn = import_engine_package("MNN", "mnn", "pip install MNN")
            self._tools = import_engine_package("_tools", "mnn", "its converter ships with the MNN wheel: pip install MNN")

    def version(self) -> str:
        return str(self._mnn.version())

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "precision": self.precision,
            "mnn_precision_mode": self.PRECISIONS[self.precision],
            "mnn_backend": "CPU",
            "mnn_converter_optimize_level": self.CONVERTER_LEVELS[self.opt_level],
        }

    def _session(self, onnx_path: str, input_shape: tuple[int, ...]) -> tuple[Any, Any, Any]:
        """(interpreter, session, input tensor) for ``onnx_path`` converted to MNN."""
        mnn = self._mnn
        folder = tempfile.mkdtemp(prefix="mnn-")
        model = os.path.join(folder, "model.mnn")
        try:
            with native_output_captured() as log:
                converted = self._tools.mnnconvert(
                    ["mnnconvert", "-f", "ONNX", "--modelFile", onnx_path, "--MNNModel", model, "--bizCode", "repghost-nas",
                     "--optimizeLevel", str(self.CONVERTER_LEVELS[self.opt_level])]
                )
            if not converted or not os.path.isfile(model):
                tail = " | ".join(line.strip() for line in log[-5:] if line.strip())
                raise ValueError(f"MNN's converter could not convert {onnx_path}: {tail or 'no log'}")
            with stdout_to_stderr():
                interpreter = mnn.Interpreter(model)
                session = interpreter.createSession(
                    {"backend": "CPU", "numThread": self.threads, "precision": self.PRECISIONS[self.precision]}
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the interpreter holds the model in memory
        inputs = interpreter.getSessionInputAll(session)
        if len(inputs) != 1:
            raise ValueError(f"{onnx_path} has {len(inputs)} inputs; the agent times single-input models")
        tensor = next(iter(inputs.values()))
        if tuple(tensor.getShape()) != tuple(input_shape):
            interpreter.resizeTensor(tensor, tuple(input_shape))
            interpreter.resizeSession(session)
        return interpreter, session, tensor

    def _feed(self, tensor: Any, data: np.ndarray) -> Any:
        mnn = self._mnn
        host = mnn.Tensor(data.shape, mnn.Halide_Type_Float, np.ascontiguousarray(data, dtype=np.float32), mnn.Tensor_DimensionType_Caffe)
        tensor.copyFrom(host)
        return host

    def run(self, onnx_path: str, data: np.ndarray) -> np.ndarray:
        """The model's single output for input ``data``, through the same conversion and session
        as a timing (to check MNN against another engine)."""
        interpreter, session, tensor = self._session(onnx_path, tuple(data.shape))
        self._feed(tensor, data)
        code = interpreter.runSession(session)
        if code != 0:
            raise ValueError(f"MNN failed to run {onnx_path} (error code {code})")
        output = interpreter.getSessionOutput(session)
        shape = tuple(output.getShape())
        mnn = self._mnn
        host = mnn.Tensor(shape, mnn.Halide_Type_Float, np.zeros(shape, dtype=np.float32), mnn.Tensor_DimensionType_Caffe)
        output.copyToHostTensor(host)
        return np.array(host.getData(), dtype=np.float32).reshape(shape)

    def _prepare(self, onnx_path: str, input_shape: tuple[int, ...]) -> Callable[[], Any]:
        interpreter, session, tensor = self._session(onnx_path, input_shape)
        host = self._feed(tensor, np.random.default_rng(0).standard_normal(input_shape).astype(np.float32))
        with stdout_to_stderr():
            code = interpreter.runSession(session)
        if code != 0:
            raise ValueError(f"MNN failed to run {onnx_path} (error code {code})")
        run = interpreter.runSession
        keep = (interpreter, session, tensor, host)

        def call() -> None:
            run(session)

        call.keep = keep  # type: ignore[attr-defined]
        return call
