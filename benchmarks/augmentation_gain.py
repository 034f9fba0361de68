"""Does the reference recipe's augmentation measurably help? Compares finished ``nas.train`` runs
that differ only in ``--augment`` (same network, data, recipe otherwise), over their seeds:
final validation accuracy per run, mean +- std per setting, and a one-sided Welch t-test of
"the recipe's augmentation beats none" (p < 0.05, else tied within noise).

    .venv/bin/python benchmarks/train_plateau.py --out results/train/augment-none-repghostnet-0.5x-fashion-mnist-seed1 --augment none --seed 1
    .venv/bin/python benchmarks/augmentation_gain.py results/train/*repghostnet-0.5x-fashion-mnist-seed*

Writes the table as CSV (``--csv``) for the record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from nas.confirmation import ALPHA, welch_greater_p
from nas.recipes import recipe_for
from nas.training import METRICS_FILE


def finished_runs(folders: list[Path]) -> list[dict]:
    """One row per finished run: folder, augment, seed, final val accuracy, the recipe minus augment."""
    rows = []
    for folder in folders:
        path = folder / METRICS_FILE
        if not path.is_file():
            print(f"skipped {folder}: no {METRICS_FILE}", file=sys.stderr)
            continue
        metrics = json.loads(path.read_text())
        if not metrics.get("complete"):
            print(f"skipped {folder}: {metrics.get('epochs_done')} of {metrics['settings']['recipe']['epochs']} epochs so far", file=sys.stderr)
            continue
        settings = metrics["settings"]
        recipe = dict(settings["recipe"])
        rows.append({
            "run": str(folder),
            "augment": recipe.pop("augment"),
            "seed": settings["seed"],
            "val_accuracy": metrics["val_accuracy"],
            "cpu_seconds": metrics["cpu_seconds"],
            "same": json.dumps({"recipe": recipe, "data": settings["data"], "source": metrics["source"], "split": settings["split_seed"]}, sort_keys=True),
        })
    return rows


def compare(rows: list[dict], augmented: str) -> str:
    """The verdict line for ``augmented`` against none."""
    if len({row["same"] for row in rows}) > 1:
        raise ValueError("the runs differ in more than --augment (network, data, split or another recipe setting); compare like with like")
    groups = {name: [row["val_accuracy"] for row in rows if row["augment"] == name] for name in (augmented, "none")}
    for name, values in groups.items():
        if len(values) < 2:
            raise ValueError(f"need at least 2 finished seeds with --augment {name}, have {len(values)}")
    p_value = welch_greater_p(groups[augmented], groups["none"])  # the test the search's confirmation uses
    gain = 100 * (statistics.mean(groups[augmented]) - statistics.mean(groups["none"]))
    verdict = f"helps (p = {p_value:.3f} < {ALPHA})" if p_value < ALPHA else f"tied within noise (p = {p_value:.3f})"
    return f"{augmented} vs none: {gain:+.2f} points on the mean; one-sided Welch t-test: {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="nas.train output folders")
    parser.add_argument("--data", default="fashion-mnist", help="data set whose reference recipe's augmentation is judged")
    parser.add_argument("--csv", type=Path, default=None, help="also write the per-run table here")
    args = parser.parse_args(argv)
    rows = finished_runs(args.runs)
    for row in sorted(rows, key=lambda r: (r["augment"], r["seed"])):
        print(f"{row['augment']:>10}  seed {row['seed']}  val {row['val_accuracy']:.4f}  {row['cpu_seconds']:.0f} CPU s  {row['run']}")
    for name in sorted({row["augment"] for row in rows}):
        values = [row["val_accuracy"] for row in rows if row["augment"] == name]
        spread = f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        print(f"{name:>10}: {statistics.mean(values):.4f}{spread} over {len(values)} seed(s)")
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).drop(columns="same").sort_values(["augment", "seed"]).to_csv(args.csv, index=False)
    try:
        print(compare(rows, recipe_for(args.data).augment))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
