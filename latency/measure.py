"""Time one network end to end: ``python -m latency.measure MODEL.onnx|arch.json [--lut LUT]``.

The check a user runs on the board after a search: the network is timed by the same protocol
as a LUT's entries (``latency.timing``: interleaved bursts, here with the one-node session-call
probe beside it so its samples are spread in time). Given a LUT, the device, engine, settings,
protocol and statistic are the LUT's and an architecture (``arch.json``: a network config, or a
search's ``best.json``) is also predicted: predicted vs measured. Without one, they are the
options'.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import repghost

from .cli import DefaultsFormatter
from .device_registry import DEVICES, get_device
from .devices import Job
from .engines import ENGINES, OPT_LEVELS, PRECISIONS, engine_from_settings, get_engine
from .lut import load_lut
from .overhead import trivial_onnx
from .protocol_args import PROTOCOL_OPTIONS, add_protocol_arguments, fill_protocol_defaults, policy_from_args
from .remote import RemoteError, add_remote_arguments, remote_settings
from .validate import SAME_SETUP_FIELDS, estimate_note, lut_policy


ENGINE_DEFAULTS = {"engine": "ort", "threads": 1, "opt_level": "all"}


def read_architecture(path: Path) -> repghost.NetConfig:
    """A network config from ``path``: the config itself, or a file holding it under ``architecture``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path} as JSON: {error}") from None
    if isinstance(data, dict) and "architecture" in data:
        data = data["architecture"]
    try:
        return repghost.NetConfig.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path} is not a network config ({error}); give a config JSON or a search's best.json") from None


def onnx_input_shape(path: Path) -> tuple[int, ...]:
    """The fixed input shape of the single-input model at ``path``."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"{path} has {len(inputs)} inputs; this measures single-input models")
    dims = inputs[0].type.tensor_type.shape.dim
    if not dims or any(not d.HasField("dim_value") or d.dim_value < 1 for d in dims):
        raise ValueError(f"{path} has a dynamic input shape; export it with a fixed one (batch 1)")
    return tuple(int(d.dim_value) for d in dims)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m latency.measure", description=__doc__.splitlines()[0], formatter_class=DefaultsFormatter)
    parser.add_argument("model", help="an ONNX file, or an architecture JSON (config, or a search's best.json)")
    parser.add_argument("--lut", default=None, help="predict with this LUT and measure as it was measured (its device, engine, protocol)")
    parser.add_argument("--device", default=None, choices=sorted(DEVICES), help="where to measure (default: the LUT's, else host)")
    parser.add_argument("--remote", default=None, help="user@host[:port] of the machine to measure on over SSH")
    add_remote_arguments(parser)
    parser.add_argument("--engine", default=None, choices=sorted(ENGINES), help=f"inference engine (default: the LUT's with --lut, else {ENGINE_DEFAULTS['engine']})")
    parser.add_argument("--threads", type=int, default=None, help=f"intra-op threads (default: the LUT's with --lut, else {ENGINE_DEFAULTS['threads']})")
    parser.add_argument("--precision", default=None, choices=PRECISIONS, help="arithmetic of engines that have the setting (default: the LUT's with --lut, else fp32 on mnn)")
    parser.add_argument("--opt-level", default=None, choices=OPT_LEVELS, help=f"graph optimization level (default: the LUT's with --lut, else {ENGINE_DEFAULTS['opt_level']})")
    parser.add_argument("--resolution", type=int, default=None, help="input size of an architecture (default: the LUT's, else 224)")
    add_protocol_arguments(parser, unless="the LUT's with --lut")
    return parser.parse_args(argv)


def refuse_what_the_lut_decides(args: argparse.Namespace) -> None:
    """With --lut the engine and protocol are the LUT's: an option that would change them is an
    error, not something to drop without a word."""
    given = [name for name in (*ENGINE_DEFAULTS, "precision", *PROTOCOL_OPTIONS) if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"{flags} cannot be combined with --lut: the network is measured with the LUT's engine and protocol so that "
                         "prediction and measurement compare; drop them, or leave out --lut to measure with other settings")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the command prints, as a dict."""
    model = Path(args.model)
    if not model.is_file():
        raise ValueError(f"no file at {model}; give an ONNX file or an architecture JSON")
    lut = load_lut(args.lut) if args.lut else None
    if lut is not None and lut.estimated:
        raise ValueError(estimate_note(Path(args.lut), lut))
    if lut is not None:
        refuse_what_the_lut_decides(args)
        engine = engine_from_settings(lut.fingerprint)
        policy, statistic = lut_policy(lut), lut.statistic
        device_name = args.device or lut.fingerprint["device"]
    else:
        fill_protocol_defaults(args)
        for name, value in ENGINE_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
        precision = {"precision": args.precision} if args.precision is not None else {}
        engine = get_engine(args.engine, threads=args.threads, opt_level=args.opt_level, **precision)
        policy, statistic = policy_from_args(args), args.statistic
        device_name = args.device or "host"
    device = get_device(device_name, remote=args.remote, **remote_settings(args))
    here = device.fingerprint(engine)
    if lut is not None:
        differ = [name for name in SAME_SETUP_FIELDS if here.get(name) != lut.fingerprint.get(name)]
        if differ:
            raise ValueError(f"LUT {args.lut} was measured elsewhere ({', '.join(differ)} differ, e.g. {differ[0]}: "
                             f"{lut.fingerprint.get(differ[0])!r} there vs {here.get(differ[0])!r} here); measure on its device")
    result: dict[str, Any] = {"model": str(model), "device": device_name, "engine": engine.settings(), "statistic": statistic}
    with tempfile.TemporaryDirectory(prefix="latency-measure-") as folder:
        if model.suffix == ".onnx":
            onnx_path, shape, cfg = str(model), onnx_input_shape(model), None
        else:
            cfg = read_architecture(model)
            resolution = args.resolution or (lut.resolution if lut else 224)
            shape = (1, cfg.in_chans, resolution, resolution)
            onnx_path = str(Path(folder) / "model.onnx")
            repghost.export_onnx(repghost.build(cfg, deploy=True), onnx_path, input_shape=shape, opset=int((lut.fingerprint.get("opset") if lut else None) or 17))
        trivial = Job("(session call)", trivial_onnx(Path(folder) / "trivial.onnx"), (1, 1))
        jobs = [Job("model", onnx_path, shape), trivial]
        measured = dict((job.key, m) for job, m in device.measure_stream(jobs, engine, dataclasses.replace(policy, chunk_items=len(jobs))))
    m = measured["model"]
    result.update(input_shape=list(shape), measured_ms=m.value(statistic), min_ms=m.min_ms, p10_ms=m.p10_ms, median_ms=m.median_ms, iqr_ms=m.iqr_ms, runs=m.runs)
    if lut is not None and cfg is not None:
        predicted = lut.predict(cfg)
        result.update(lut=args.lut, predicted_ms=predicted, error_pct=(predicted / result["measured_ms"] - 1.0) * 100.0)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = measure(args)
    except RemoteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    engine = result["engine"]
    print(
        f"{result['model']}: {result['measured_ms']:.4f} ms measured ({result['statistic']} of {result['runs']} samples; min {result['min_ms']:.4f}, "
        f"median {result['median_ms']:.4f}, IQR {result['iqr_ms']:.4f}) on {result['device']}, {engine['engine']} {engine['engine_version']}, "
        f"{engine['threads']} thread(s), input {'x'.join(map(str, result['input_shape']))}"
    )
    if "predicted_ms" in result:
        print(f"predicted {result['predicted_ms']:.4f} ms by {result['lut']}: error {result['error_pct']:+.1f} %")
        for line in load_lut(args.lut).warnings():
            print(line)
    elif args.lut:
        print("no prediction: an ONNX file does not say its architecture; give the architecture JSON to compare with the LUT")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
