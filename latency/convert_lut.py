"""Convert LUT files of the older format to this one, in place: ``python -m latency.convert_lut FILE...``.

Nothing measured changes: entries, overhead, calibration and drift are carried over as they
are; what the older reader assumed when a field was missing is written out (a correction's
absent terms are 0 and its offset the session call); an estimate's provenance moves out of the
fingerprint and the correction into its own record; the space file is recorded by
``space.record_path``. Format 1 and 2 files were measured with the older protocol (one
contiguous attempt per item, its median kept), so they are marked ``statistic: median`` and
their unfinished calibration rounds are dropped (the builder measures calibration networks in
one job now). Predictions of a converted LUT equal those of the original.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from space import record_path, resolve_record

from .lut_format import FORMAT, LutFile, write_lut_file

PROVENANCE_FIELDS = ("estimate_of", "base_lut", "base_fingerprint")


def convert_v1(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """A ``repghost-nas-lut/1`` file as a ``repghost-nas-lut/2`` one."""
    data = json.loads(json.dumps(data))  # a copy
    data["format"] = "repghost-nas-lut/2"
    fingerprint = data["fingerprint"]
    estimated = bool(fingerprint.pop("estimated", False))
    provenance = {name: fingerprint.pop(name) for name in PROVENANCE_FIELDS if name in fingerprint}
    space_file = fingerprint.get("space_file")
    if space_file and not Path(space_file).is_absolute() and not resolve_record(space_file).is_file() and Path(space_file).is_file():
        fingerprint["space_file"] = record_path(space_file)  # recorded relative to where it was built
    overhead = data.get("overhead") or {}
    correction = data.get("correction")
    if correction is not None:
        correction.setdefault("ms_per_part", 0.0)
        correction.setdefault("ms_per_weight_mb", 0.0)
        correction.setdefault("offset_ms", float(overhead.get("session_call_ms", 0.0)))
        correction.setdefault("scale", 1.0)
        if estimated:
            provenance["calibration"] = correction.pop("calibration")
            provenance["leave_one_out"] = correction.pop("leave_one_out")
    build = data.pop("build", None)
    if build is not None:
        data["export_worker"] = build.pop("export_worker")
        if build:
            raise ValueError(f"{path}: unknown build fields {sorted(build)}; convert by hand or rebuild")
    if estimated:
        data["provenance"] = provenance
    return data


def convert_v2(data: dict[str, Any], path: str | Path) -> LutFile:
    """The records of a ``repghost-nas-lut/2`` file (strictly read once converted)."""
    data = json.loads(json.dumps(data))  # a copy
    data.pop("format")
    data["fingerprint"]["statistic"] = "median"
    calibration = data.get("calibration") or {}
    calibration.pop("pending", None)
    return LutFile.from_json({"format": FORMAT, **data}, path)


def convert_file(path: str | Path) -> str:
    """Convert ``path`` in place; says what was done (a file already converted is left alone)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path} as JSON: {error}") from None
    version = data.get("format") if isinstance(data, dict) else None
    if version == FORMAT:
        LutFile.from_json(data, path)
        return f"{path}: already {FORMAT}"
    if version == "repghost-nas-lut/1":
        data = convert_v1(data, path)
    elif version != "repghost-nas-lut/2":
        raise ValueError(f"{path} is not a LUT file this tool converts (format {version!r})")
    write_lut_file(path, convert_v2(data, path))
    return f"{path}: converted to {FORMAT}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latency.convert_lut", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="LUT files to convert in place")
    args = parser.parse_args(argv)
    try:
        for file in args.files:
            print(convert_file(file))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
