"""``python -m nas.report results/<study>``: every output of a study (CSV, plot, summary, best
ONNX) written again from its storage alone, so a study run on a cluster can be reported
anywhere; the LUT file is not needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

from .cli import DefaultsFormatter
from .errors import UserError
from .stored_study import report_study
from .study import default_storage_url
from .vocabulary import STORAGE_FILES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nas.report",
        description="Write every output of a study (CSV, plot, summary, best ONNX) again from its storage alone.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("folder", help="the study's folder, e.g. results/budget-30ms-fashion-mnist: outputs go there")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: study.db or study.journal in the folder)")
    parser.add_argument("--study", default=None, help="study name (default: the storage's only study, or the folder's name)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(args.folder)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if args.storage is None and not any((folder / name).is_file() for name in STORAGE_FILES):
            raise UserError(f"no study storage in {folder} ({' or '.join(STORAGE_FILES)}): pass its URL with --storage, or run python -m nas.search to make one")
        paths = report_study(folder, args.storage or default_storage_url(folder), args.study)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"outputs in {folder}: " + ", ".join(p.name for p in paths.values()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
