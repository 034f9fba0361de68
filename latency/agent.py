"""Timing agent: the measurement protocol and the engines, in one file that runs anywhere.

This file imports only the standard library, numpy and (lazily) the engine, so that it can be
used in two ways:

- imported by the host (``from latency.agent import get_engine``), and
- copied to another machine (an ARM board over SSH, say) and run there as a script:
  ``python agent.py job.json`` times every ONNX file the job lists and prints one JSON line per
  result as soon as it is measured (a lost connection keeps what was printed), and
  ``python agent.py --fingerprint [--engine ort] [--engine-settings JSON]`` prints what the machine is.

The protocol: explicit thread counts, warm-up runs, then timed runs in batches until the
median is stable; median and interquartile range in milliseconds; an entry whose spread is high
is measured again and the attempt with the lowest relative spread is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

AGENT_VERSION = 1
OPT_LEVELS = ("disabled", "basic", "extended", "all")
CLOCKS = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}


@dataclass(frozen=True)
class Measurement:
    """A timing with its spread: median and interquartile range of ``runs`` timed calls."""

    median_ms: float
    iqr_ms: float
    runs: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunPolicy:
    """How many runs an entry gets.

    Attributes:
        warmup_runs: untimed calls first (at least ``warmup_ms`` worth of them).
        warmup_ms: minimum warm-up time.
        min_runs: timed calls before the median may be declared stable.
        batch_runs: timed calls added per round once ``min_runs`` are done.
        max_runs: stop there even if the median still moves.
        max_ms: stop after this much timed wall time (for slow entries), once ``min_runs`` are done.
        stable_rel: the median is stable when a new batch moves it by less than this fraction.
        max_iqr_rel: an attempt with IQR/median above this is measured again...
        attempts: ...up to this many attempts in all (the lowest IQR/median wins).
        clock: ``wall`` (latency as a user sees it) or ``thread`` (CPU time of the calling
            thread: blind to time spent preempted, so steadier on a shared machine; valid only
            with one intra-op thread, where the engine computes in the calling thread).
    """

    warmup_runs: int = 5
    warmup_ms: float = 30.0
    min_runs: int = 20
    batch_runs: int = 10
    max_runs: int = 200
    max_ms: float = 1500.0
    stable_rel: float = 0.01
    max_iqr_rel: float = 0.10
    attempts: int = 3
    clock: str = "wall"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"run policy clock must be one of {list(CLOCKS)}, got {self.clock!r}")
        for name in ("warmup_runs", "min_runs", "batch_runs", "max_runs", "attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_runs" else 1):
                raise ValueError(f"run policy {name} must be a positive integer, got {value!r}")
        if self.max_runs < self.min_runs:
            raise ValueError(f"run policy max_runs ({self.max_runs}) must be at least min_runs ({self.min_runs})")
        for name in ("warmup_ms", "max_ms", "stable_rel", "max_iqr_rel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"run policy {name} must be a non-negative number, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunPolicy":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown run policy settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


def _quartiles(samples_ms: list[float]) -> tuple[float, float]:
    q1, median, q3 = np.percentile(np.asarray(samples_ms), [25, 50, 75])
    return float(median), float(q3 - q1)


def time_calls(call: Callable[[], Any], policy: RunPolicy) -> Measurement:
    """Time ``call`` by the protocol above. ``call`` runs the model once, inputs already bound."""
    attempts: list[Measurement] = []
    for attempt in range(1, policy.attempts + 1):
        measurement = _one_attempt(call, policy, attempt)
        attempts.append(measurement)
        if measurement.iqr_ms <= policy.max_iqr_rel * measurement.median_ms:
            break
    best = min(attempts, key=lambda m: m.iqr_ms / max(m.median_ms, 1e-12))
    return Measurement(best.median_ms, best.iqr_ms, best.runs, {**best.meta, "attempts": len(attempts)})


def _one_attempt(call: Callable[[], Any], policy: RunPolicy, attempt: int) -> Measurement:
    wall = time.perf_counter_ns
    clock = CLOCKS[policy.clock]
    start = wall()
    done = 0
    while done < policy.warmup_runs or (wall() - start) * 1e-6 < policy.warmup_ms:
        call()
        done += 1
    samples: list[float] = []
    previous_median = None
    timed_ns = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            target = policy.min_runs if not samples else min(len(samples) + policy.batch_runs, policy.max_runs)
            while len(samples) < target:
                t0 = clock()
                call()
                elapsed = clock() - t0
                timed_ns += elapsed
                samples.append(elapsed * 1e-6)
            median = float(np.median(samples))
            if len(samples) >= policy.max_runs or timed_ns * 1e-6 >= policy.max_ms:
                break
            if previous_median is not None and abs(median - previous_median) <= policy.stable_rel * previous_median:
                break
            previous_median = median
    finally:
        if gc_was_enabled:
            gc.enable()
    median, iqr = _quartiles(samples)
    return Measurement(median, iqr, len(samples), {"warmup_runs": done, "attempt": attempt})


class Engine:
    """An inference engine that times one ONNX model on this machine's CPU.

    Subclasses set ``name``, and implement ``version`` and ``_prepare`` (load the model, bind
    an input of ``input_shape`` and return a zero-argument callable that runs it once).
    """

    name = ""
    SETTINGS: tuple[str, ...] = ("threads", "inter_op_threads", "opt_level")

    def __init__(self, *, threads: int = 1, inter_op_threads: int = 1, opt_level: str = "all") -> None:
        for label, value in (("threads", threads), ("inter_op_threads", inter_op_threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        if opt_level not in OPT_LEVELS:
            raise ValueError(f"opt_level must be one of {list(OPT_LEVELS)}, got {opt_level!r}")
        self.threads = threads
        self.inter_op_threads = inter_op_threads
        self.opt_level = opt_level

    def version(self) -> str:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Everything about the engine that changes a timing (goes into a LUT's fingerprint)."""
        return {
            "engine": self.name,
            "engine_version": self.version(),
            "threads": self.threads,
            "inter_op_threads": self.inter_op_threads,
            "opt_level": self.opt_level,
        }

    def _prepare(self, onnx_path: str, input_shape: tuple[int, ...]) -> Callable[[], Any]:
        raise NotImplementedError

    def measure(self, onnx_path: str, input_shape: tuple[int, ...], policy: RunPolicy | None = None) -> Measurement:
        """Median and IQR (ms) of one inference of ``onnx_path`` on a random input of ``input_shape``."""
        if not os.path.isfile(onnx_path):
            raise ValueError(f"no ONNX file at {onnx_path}")
        shape = tuple(int(d) for d in input_shape)
        call = self._prepare(onnx_path, shape)
        policy = policy or RunPolicy()
        if policy.clock == "thread" and self.threads != 1:
            raise ValueError(f"the thread clock needs threads=1 (the engine then computes in the calling thread), got threads={self.threads}")
        measurement = time_calls(call, policy)
        return Measurement(measurement.median_ms, measurement.iqr_ms, measurement.runs, {**measurement.meta, "engine": self.name})


class OrtEngine(Engine):
    """ONNX Runtime, CPU execution provider, sequential execution. Inputs and outputs are bound
    once to preallocated buffers (I/O binding), so a timed call is the session run alone."""

    name = "ort"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._ort = _import_engine("onnxruntime", "ort", "pip install onnxruntime")

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


def _import_engine(module: str, engine: str, remedy: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"engine '{engine}' needs the Python package {module}, which is not installed here ({remedy})") from None


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send whatever native code prints to stderr: the agent's stdout carries JSON lines only
    (MNN prints its CPU features on import and a log of every conversion)."""
    sys.stdout.flush()
    _flush_c_stdio()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def _native_output_captured():
    """Collect what native code prints (to stdout and stderr) instead of showing it: MNN's
    converter logs a dozen lines per model, which would bury a build's progress. Yields a list
    that holds the captured lines once the block has run (shown only when a conversion fails)."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    _flush_c_stdio()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield lines
        finally:
            _flush_c_stdio()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            lines.extend(log.read().splitlines())


class MnnEngine(Engine):
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
    SETTINGS = Engine.SETTINGS + ("precision",)
    PRECISIONS = {"fp32": "normal", "fp16": "low", "bf16": "lowBF"}
    CONVERTER_LEVELS = {"disabled": 0, "basic": 1, "extended": 1, "all": 1}

    def __init__(self, *, precision: str = "fp32", **settings: Any) -> None:
        super().__init__(**settings)
        if precision not in self.PRECISIONS:
            raise ValueError(f"engine 'mnn' precision must be one of {list(self.PRECISIONS)}, got {precision!r}")
        self.precision = precision
        with _native_output_captured():  # MNN prints the CPU's features on import
            self._mnn = _import_engine("MNN", "mnn", "pip install MNN")
            self._tools = _import_engine("_tools", "mnn", "its converter ships with the MNN wheel: pip install MNN")

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
            with _native_output_captured() as log:
                converted = self._tools.mnnconvert(
                    ["mnnconvert", "-f", "ONNX", "--modelFile", onnx_path, "--MNNModel", model, "--bizCode", "repghost-nas",
                     "--optimizeLevel", str(self.CONVERTER_LEVELS[self.opt_level])]
                )
            if not converted or not os.path.isfile(model):
                tail = " | ".join(line.strip() for line in log[-5:] if line.strip())
                raise ValueError(f"MNN's converter could not convert {onnx_path}: {tail or 'no log'}")
            with _stdout_to_stderr():
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
        with _stdout_to_stderr():
            code = interpreter.runSession(session)
        if code != 0:
            raise ValueError(f"MNN failed to run {onnx_path} (error code {code})")
        run = interpreter.runSession
        keep = (interpreter, session, tensor, host)

        def call() -> None:
            run(session)

        call.keep = keep  # type: ignore[attr-defined]
        return call


ENGINES: dict[str, type[Engine]] = {"ort": OrtEngine, "mnn": MnnEngine}


def get_engine(name: str, **settings: Any) -> Engine:
    """The engine called ``name`` with explicit settings (threads, inter_op_threads, opt_level)."""
    engine_type = ENGINES.get(name)
    if engine_type is None:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(ENGINES))}")
    try:
        return engine_type(**settings)
    except TypeError as error:
        raise ValueError(f"engine {name!r} does not take these settings ({error}); its settings: {', '.join(engine_type.SETTINGS)}") from None


def engine_from_settings(recorded: dict[str, Any]) -> Engine:
    """The engine a fingerprint (or ``Engine.settings()``) describes, with the same settings."""
    name = recorded.get("engine", "ort")
    engine_type = ENGINES.get(name)
    if engine_type is None:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(ENGINES))}")
    return get_engine(name, **{key: recorded[key] for key in engine_type.SETTINGS if key in recorded})


def cpu_model() -> str:
    """The CPU's marketing name, from the OS; 'unknown' when it does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_fingerprint(engine: Engine | None = None) -> dict[str, Any]:
    """What this machine is: CPU model, architecture, cores, OS, Python, numpy, and the engine."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "agent_version": AGENT_VERSION,
    }
    if engine is not None:
        info.update(engine.settings())
    return info


def run_job(job: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> None:
    """Time every item of ``job`` and ``emit`` one result dict per item, in order.

    A job is ``{"engine": "ort", "engine_settings": {...}, "policy": {...}, "items": [{"key":
    ..., "onnx": path, "input_shape": [...]}]}``; relative ONNX paths are taken from the job
    file's folder by the script entry point.
    """
    if not isinstance(job, dict) or not isinstance(job.get("items"), list):
        raise ValueError("a job must be a JSON object with an 'items' list")
    engine = get_engine(job.get("engine", "ort"), **job.get("engine_settings", {}))
    policy = RunPolicy.from_dict(job.get("policy", {}))
    for item in job["items"]:
        measurement = engine.measure(item["onnx"], tuple(item["input_shape"]), policy)
        emit({"key": item["key"], **measurement.to_dict()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time ONNX models on this machine and print JSON lines.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("job", nargs="?", help="job JSON file (ONNX paths relative to it)")
    parser.add_argument("--fingerprint", action="store_true", help="print what this machine is and exit")
    parser.add_argument("--engine", default="ort", help=f"engine for --fingerprint ({', '.join(ENGINES)})")
    parser.add_argument("--engine-settings", default="{}", help="engine settings for --fingerprint, as JSON")
    args = parser.parse_args(argv)

    def emit(record: dict[str, Any]) -> None:
        print(json.dumps(record, sort_keys=True), flush=True)

    try:
        if args.fingerprint:
            try:
                settings = json.loads(args.engine_settings)
            except json.JSONDecodeError as error:
                raise ValueError(f"--engine-settings is not JSON: {error.msg}") from None
            if not isinstance(settings, dict):
                raise ValueError("--engine-settings must be a JSON object")
            emit(machine_fingerprint(get_engine(args.engine, **settings)))
            return 0
        if not args.job:
            raise ValueError("give a job file, or --fingerprint")
        try:
            with open(args.job, encoding="utf-8") as handle:
                job = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read job file {args.job}: {error}") from None
        base = os.path.dirname(os.path.abspath(args.job))
        for item in job.get("items", []) if isinstance(job, dict) else []:
            if isinstance(item, dict) and "onnx" in item:
                item["onnx"] = os.path.join(base, item["onnx"])
        run_job(job, emit)
    except (ValueError, KeyError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
