"""``python -m nas.fidelity``: the fidelity study's command line.

    python -m nas.fidelity draw                       # results/fidelity/rows.csv
    python -m nas.fidelity tier1 --seeds 0 1          # resumable; appends to results/fidelity/tier1.csv
    python -m nas.fidelity tier2 --ids <id> ...       # the full reference recipe for chosen rows
    python -m nas.fidelity tier2 --from-runs DIR ...  # finished nas.train runs that are tier-2 runs
    python -m nas.fidelity score --scorer proxy-today # a proxy recipe or training-free score per row
    python -m nas.fidelity analyse                    # results/fidelity/report.md and ranking.csv
    python -m nas.fidelity replay --subset band-choose # replayed searches that screen before training
    python -m nas.fidelity compare --name screen --arm tpe DIR DIR --arm screen3 DIR DIR  # searches' winners on tier 1
    python -m nas.fidelity claim results/budget-30ms-fashion-mnist  # its winner against RepGhostNet 0.5x, on the test split

Every step that trains resumes when started again with the same command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import DefaultsFormatter, run_command
from ..errors import UserError, user_input

OUT = Path("results/fidelity")
ROWS = OUT / "rows.csv"
WINNER = Path("results/budget-30ms-fashion-mnist/best.json")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nas.fidelity", formatter_class=DefaultsFormatter,
                                     description="Does the proxy rank architectures as real training does? Draw rows, "
                                     "train them in two tiers, score them, and analyse the rankings.")
    sub = parser.add_subparsers(dest="command", required=True)

    draw = sub.add_parser("draw", formatter_class=DefaultsFormatter, help="draw the rows (before any training)")
    draw.add_argument("--out", type=Path, default=ROWS, help="rows file to write (refused when it exists)")
    draw.add_argument("--space", default=None, help="search space file (default: space/repghost.yaml)")
    draw.add_argument("--lut", type=Path, default=Path("results/lut/paper-phone.json"), help="latency table of the band")
    draw.add_argument("--band", nargs=2, type=float, default=[20.0, 32.0], metavar=("LOW_MS", "HIGH_MS"), help="latency band")
    draw.add_argument("--count", type=int, default=24, help="architectures drawn inside the band")
    draw.add_argument("--seed", type=int, default=0, help="seed of the draw and of the choose/report halves")
    draw.add_argument("--exclude", nargs="*", type=Path, default=[str(WINNER)],
                      help="searched winners left out (best.json files, or architecture JSON files)")
    draw.add_argument("--widths", nargs="*", type=float, default=None, help="paper widths added as rows (default: the space's widths)")
    draw.add_argument("--task", nargs=3, type=int, default=[1, 10, 32], metavar=("CHANNELS", "CLASSES", "PX"),
                      help="the task's input channels, classes and resolution, for params_task and macs_task")

    for name, text in (("tier1", "tier 1: the shortened reference recipe, every row"),
                       ("tier2", "tier 2: the full reference recipe (nas.train), chosen rows")):
        tier = sub.add_parser(name, formatter_class=DefaultsFormatter, help=text)
        tier.add_argument("--rows", type=Path, default=ROWS, help="rows file")
        tier.add_argument("--out", type=Path, default=OUT / f"{name}.csv", help="ledger: one line per finished run")
        tier.add_argument("--seeds", nargs="+", type=int, default=[0, 1] if name == "tier1" else [0], help="training seeds")
        tier.add_argument("--threads", type=int, default=1, help="torch threads (a setting of the result)")
        tier.add_argument("--data", default="fashion-mnist", help="data set (nas.data.load_dataset)")
        tier.add_argument("--split-seed", type=int, default=0, help="the search's seed, which drew its validation split")
        tier.add_argument("--ids", nargs="+", default=None, help="only these row ids or names" + (" (required)" if name == "tier2" else ""))
        if name == "tier1":
            tier.add_argument("--train-images", type=int, default=30_000, help="training images")
            tier.add_argument("--epochs", type=int, default=5, help="passes over them")
            tier.add_argument("--val-images", type=int, default=10_000, help="validation images (the search's split first)")
            tier.add_argument("--resolution", type=int, default=None, help="input size in px (default: the data set's reference recipe's)")
            tier.add_argument("--order-seed", type=int, default=0, help="seed of the order of the rows")
            tier.add_argument("--shard", default="0/1", help="K/N: this process takes every N-th run from the K-th")
            tier.add_argument("--limit", type=int, default=None, help="stop after this many runs")
        else:
            tier.add_argument("--runs", type=Path, default=OUT / "tier2", help="folder of the runs' checkpoints and outputs")
            tier.add_argument("--from-runs", nargs="+", type=Path, default=None, metavar="DIR",
                              help="instead of training: ledger lines for finished python -m nas.train runs of rows that "
                              "are tier-2 runs already (same settings; anything else is refused)")

    score = sub.add_parser("score", formatter_class=DefaultsFormatter, help="score the rows with a proxy recipe or a training-free score")
    score.add_argument("--scorer", required=True, help="proxy-today, proxy-images4x, proxy-epochs3x, proxy-val10k, proxy-64px, synflow or naswot")
    score.add_argument("--rows", type=Path, default=ROWS, help="rows file")
    score.add_argument("--out", type=Path, default=OUT / "scores.csv", help="ledger: one line per (scorer, row, seed)")
    score.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds (the analysis adds their mean)")
    score.add_argument("--threads", type=int, default=1, help="torch threads")
    score.add_argument("--data", default="fashion-mnist", help="data set (nas.data.load_dataset)")
    score.add_argument("--split-seed", type=int, default=0, help="the search's seed, which drew its validation split")
    score.add_argument("--ids", nargs="+", default=None, help="only these row ids or names")
    score.add_argument("--limit", type=int, default=None, help="stop after this many scores")
    score.add_argument("--resolution", type=int, default=None, help="input size in px of the proxy the recipes change (default: today's proxy's)")

    analyse = sub.add_parser("analyse", formatter_class=DefaultsFormatter, help="noise ceiling and rank agreement: report.md, ranking.csv, table.csv")
    analyse.add_argument("--rows", type=Path, default=ROWS, help="rows file")
    analyse.add_argument("--dir", type=Path, default=OUT, help="folder of the ledgers (tier1.csv, tier2.csv, scores.csv) and of the outputs")
    analyse.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="tier-1 seeds planned")
    analyse.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    analyse.add_argument("--lut", type=Path, default=Path("results/lut/paper-phone.json"), help="LUT checked against the rows' pinned sha256")
    analyse.add_argument("--against", type=Path, nargs="+", default=[], metavar="DIR",
                         help="folders of the same rows' tier 1 in another setting (e.g. results/fidelity for a 64 px --dir): "
                              "each one's mean is ranked against this tier 1 like tier 2")
    analyse.add_argument("--chosen-in", type=Path, default=None, metavar="DIR",
                         help="a folder whose ranking.csv chooses the proxy (on its band rows); these rows, drawn after, test the pick")

    compare = sub.add_parser("compare", formatter_class=DefaultsFormatter,
                             help="train the confirmed winners of finished searches with tier 1's recipe and compare ways of searching")
    compare.add_argument("--arm", nargs="+", action="append", required=True, metavar=("NAME", "SEARCH_DIR"),
                         help="an arm: its name, then one or more output folders of its searches (one per search seed); repeat "
                         "for each arm, the first being the one the others are compared with")
    compare.add_argument("--name", required=True, help="the comparison's name: its tables are <dir>/compare-<name>.csv and compare-<name>-arms.csv")
    compare.add_argument("--dir", type=Path, default=OUT, help="folder of the ground truth's tier-1 ledger (tier1.csv) and of the outputs")
    compare.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="tier-1 seeds per winner")
    compare.add_argument("--threads", type=int, default=1, help="torch threads (a setting of the result)")
    compare.add_argument("--data", default="fashion-mnist", help="data set the searches ran on")
    compare.add_argument("--resolution", type=int, default=None, help="tier 1's input size in px (default: the data set's reference recipe's)")
    compare.add_argument("--no-train", action="store_true", help="only write the comparison, from the runs the ledgers hold")

    claim = sub.add_parser("claim", formatter_class=DefaultsFormatter,
                           help="a search's confirmed winner against a paper model: nas.train's full recipe, several seeds, read once on the test split")
    claim.add_argument("search", type=Path, help="a finished python -m nas.search output folder (its best.json and baselines.csv)")
    claim.add_argument("--baseline", type=float, default=None, help="the paper model's width (default: the widest within the search's budget)")
    claim.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds of each model")
    claim.add_argument("--threads", type=int, default=1, help="torch threads (a setting of the result)")
    claim.add_argument("--data", default="fashion-mnist", help="data set the search ran on")
    claim.add_argument("--out", type=Path, default=Path("results/claim"), help="runs, runs.csv, claim.csv and claim.md go to OUT/<search folder's name>")
    claim.add_argument("--from-runs", nargs="+", type=Path, default=None, metavar="DIR",
                       help="instead of training: finished python -m nas.train runs of either model with the same settings count as "
                       "its runs (one not yet read on the test split is read now, once)")
    claim.add_argument("--no-train", action="store_true", help="only write the tables from the runs in runs.csv")

    replay = sub.add_parser("replay", formatter_class=DefaultsFormatter,
                            help="replay searches on the measured scores: does screening cheaply before training pick better?")
    replay.add_argument("--table", type=Path, default=OUT / "table.csv", help="table.csv written by analyse")
    replay.add_argument("--subset", default="band-choose", help="rows the searches draw from: band, band-choose, band-report, paper or all")
    replay.add_argument("--trainings", type=int, default=2, help="every strategy gets the training images of this many runs of today's proxy")
    replay.add_argument("--factors", type=int, nargs="+", default=[2, 3], help="screening factors: candidates screened per candidate trained")
    replay.add_argument("--draws", type=int, default=20_000, help="replayed searches per strategy")
    replay.add_argument("--seed", type=int, default=0, help="seed of the draws")
    replay.add_argument("--out", type=Path, default=None, help="CSV to write (default: replay-<subset>.csv beside the table)")
    return parser.parse_args(argv)


def select(rows, ids):
    if ids is None:
        return rows
    by_key = {row.id: row for row in rows} | {row.name: row for row in rows}
    unknown = [key for key in ids if key not in by_key]
    if unknown:
        raise UserError(f"--ids: {', '.join(unknown)} not in the rows file; use its id or name column")
    return [by_key[key] for key in ids]


def command_draw(args: argparse.Namespace) -> None:
    import json

    from tqdm import tqdm

    from latency import load_lut
    from repghost import NetConfig
    from space import arch_id, load_space

    from .rows import Task, draw_rows, file_sha256, write_rows

    if args.out.exists():
        raise UserError(f"{args.out} exists: the rows are drawn once, before any training; pass another --out")
    exclude = []
    for path in args.exclude:
        try:
            data = json.loads(Path(path).read_text())
            exclude.append(arch_id(NetConfig.from_dict(data.get("architecture", data))))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise UserError(f"--exclude {path}: not a best.json or architecture JSON ({error})") from None
    try:
        space, lut = load_space(args.space), load_lut(args.lut)
        total = args.count + len(space.data.widths if args.widths is None else args.widths)
        with tqdm(total=total, desc="drawing and counting rows", unit="row") as bar:
            rows = draw_rows(space, lut.predict, lut_sha256=file_sha256(args.lut), count=args.count, low_ms=args.band[0],
                             high_ms=args.band[1], seed=args.seed, exclude=exclude, widths=args.widths, task=Task(*args.task),
                             on_row=bar.update)
    except (ValueError, OSError) as error:
        raise UserError(str(error)) from None
    write_rows(args.out, rows)
    band = [row for row in rows if row.in_band]
    print(f"{args.out}: {len(rows)} rows ({sum(r.kind == 'band' for r in rows)} drawn in {args.band[0]:g}-{args.band[1]:g} ms, "
          f"{sum(r.kind == 'paper' for r in rows)} paper widths; {len(band)} in band: "
          f"{sum(r.half == 'choose' for r in band)} choose, {sum(r.half == 'report' for r in band)} report); "
          f"latencies from {args.lut} sha256 {rows[0].lut_sha256 if rows else '-'}")


def read_checked_rows(path: Path):
    from .rows import read_rows

    with user_input():
        return read_rows(path)


def check_threads(threads: int) -> None:
    if threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")


def rows_to_run(args: argparse.Namespace):
    """The rows a training or scoring command works on (``--ids``), its thread count checked."""
    check_threads(args.threads)
    return select(read_checked_rows(args.rows), args.ids)


def log(text: str) -> None:
    print(text, flush=True)


def command_tier(args: argparse.Namespace) -> None:
    from .tiers import Tier1, import_tier2, parse_shard, run_tier1, run_tier2

    if args.command == "tier2" and args.from_runs is not None:
        import_tier2(rows_to_run(args), args.out, args.from_runs, data=args.data, split_seed=args.split_seed,
                     threads=args.threads, log=log)
        return
    if args.command == "tier2" and args.ids is None:
        raise UserError("tier2 trains chosen rows only: pass --ids (row ids or names), or --from-runs")
    rows = rows_to_run(args)
    if args.command == "tier1":
        with user_input():
            tier = Tier1(data=args.data, train_images=args.train_images, epochs=args.epochs, val_images=args.val_images,
                         split_seed=args.split_seed, resolution=args.resolution)
            shard = parse_shard(args.shard)
        run_tier1(rows, args.out, seeds=args.seeds, tier=tier, threads=args.threads, order_seed=args.order_seed,
                  shard=shard, limit=args.limit, log=log)
    else:
        run_tier2(rows, args.out, args.runs, seeds=args.seeds, data=args.data, split_seed=args.split_seed,
                  threads=args.threads, log=log)


def command_score(args: argparse.Namespace) -> None:
    import dataclasses

    from ..proxy import DEFAULT
    from .scorers import run_scorer

    rows = rows_to_run(args)
    with user_input():
        base = DEFAULT if args.resolution is None else dataclasses.replace(DEFAULT, resolution=args.resolution)
    run_scorer(args.scorer, rows, args.out, seeds=args.seeds, data=args.data, split_seed=args.split_seed,
               threads=args.threads, limit=args.limit, base=base, log=log)


def command_analyse(args: argparse.Namespace) -> None:
    import pandas as pd

    from .analysis import choice_test_section, choose, costs, lut_note, noise_by_subset, progress, ranking, report, table
    from .ledger import read_lines
    from .scorers import SCORE_FIELDS
    from .tiers import RUN_FIELDS

    rows = read_checked_rows(args.rows)
    with user_input():
        tier1, tier2 = (read_lines(args.dir / name, RUN_FIELDS) for name in ("tier1.csv", "tier2.csv"))
    with user_input():
        scores = read_lines(args.dir / "scores.csv", SCORE_FIELDS)
    others = {}
    for folder in args.against:
        if not (folder / "tier1.csv").is_file():
            raise UserError(f"--against {folder}: no tier1.csv there; name a folder that holds another setting's tier 1 of the same rows")
        with user_input():
            others[str(folder)] = read_lines(folder / "tier1.csv", RUN_FIELDS)
    picked = None
    if args.chosen_in is not None:
        source = args.chosen_in / "ranking.csv"
        if not source.is_file():
            raise UserError(f"--chosen-in {args.chosen_in}: no ranking.csv there; run python -m nas.fidelity analyse --dir {args.chosen_in} first")
        picked = choose(pd.read_csv(source))
        if picked is None:
            raise UserError(f"--chosen-in {args.chosen_in}: its ranking.csv has no score with a tau on the band; it chooses nothing yet")
    frame = table(rows, tier1, tier2, scores, others)
    ranks = ranking(frame, costs(tier2, scores, others), resamples=args.resamples)
    state = progress(frame, tier1, args.seeds)
    noises = noise_by_subset(frame)
    command = ("python -m nas.fidelity analyse" + (f" --rows {args.rows}" if args.rows != ROWS else "")
               + (f" --dir {args.dir}" if args.dir != OUT else "")
               + (f" --against {' '.join(map(str, args.against))}" if args.against else "")
               + (f" --chosen-in {args.chosen_in}" if args.chosen_in is not None else ""))
    choice = None if picked is None else choice_test_section(frame, ranks, noises, picked, str(args.chosen_in),
                                                             complete=state.done == state.planned, resamples=args.resamples)
    text = report(frame, ranks, noises, state, rows_path=args.rows, ledgers=args.dir, lut_note=lut_note(rows, args.lut),
                  command=command, choice=choice)
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "report.md").write_text(text)
    ranks.to_csv(args.dir / "ranking.csv", index=False, float_format="%.4f")
    frame.to_csv(args.dir / "table.csv")
    print(f"{args.dir / 'report.md'}: tier 1 {state.done}/{state.planned} runs; {args.dir / 'ranking.csv'}, {args.dir / 'table.csv'}")


def command_compare(args: argparse.Namespace) -> None:
    import pandas as pd

    from .compare import TEST, comparison, read_search, train_winners
    from .tiers import Tier1

    check_threads(args.threads)
    if any(len(arm) < 2 for arm in args.arm):
        raise UserError("--arm takes a name and at least one search folder, e.g. --arm tpe results/s30-seed0 results/s30-seed1")
    names = [arm[0] for arm in args.arm]
    if len(set(names)) < len(names):
        raise UserError(f"--arm names must differ, got {', '.join(names)}")
    with user_input():
        tier = Tier1(data=args.data, resolution=args.resolution)
    searches = [read_search(arm[0], Path(folder)) for arm in args.arm for folder in arm[1:]]
    ledger, truth = args.dir / "tier1-winners.csv", args.dir / "tier1.csv"
    with user_input():
        if not args.no_train:
            train_winners(searches, ledger, truth, seeds=args.seeds, tier=tier, threads=args.threads, log=log)
        per_search, per_arm = comparison(searches, ledger, truth, seeds=args.seeds, tier=tier, threads=args.threads)
    out, arms_out = args.dir / f"compare-{args.name}.csv", args.dir / f"compare-{args.name}-arms.csv"
    per_search.to_csv(out, index=False, float_format="%.5f")
    per_arm.to_csv(arms_out, index=False, float_format="%.5f")
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(per_search.drop(columns=["search"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(per_arm.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if len(args.arm) > 1:
        print(f"test: {TEST}")
    print(f"written to {out} and {arms_out} (tier-1 runs of the winners in {ledger})")


def command_claim(args: argparse.Namespace) -> None:
    import pandas as pd

    from ..recipes import recipe_for
    from .claim import REPORT_FILE, TABLE_FILE, claim_table, import_runs, read_claim, report, run_claim

    check_threads(args.threads)
    if len(set(args.seeds)) < len(args.seeds) or min(args.seeds) < 0:
        raise UserError(f"--seeds must be distinct and non-negative, got {' '.join(map(str, args.seeds))}")
    with user_input():
        recipe = recipe_for(args.data)
    claim = read_claim(args.search, args.baseline)
    folder = args.out / args.search.resolve().name
    kwargs = dict(data=args.data, threads=args.threads, recipe=recipe)
    with user_input():
        if args.from_runs is not None:
            import_runs(claim, folder, args.from_runs, log=log, **kwargs)
        elif not args.no_train:
            run_claim(claim, folder, seeds=args.seeds, log=log, **kwargs)
        table = claim_table(claim, folder, seeds=args.seeds, **kwargs)
    options = [*(["--baseline", f"{args.baseline:g}"] if args.baseline is not None else []), *(["--no-train"] if args.no_train else [])]
    command = " ".join(["python -m nas.fidelity claim", str(args.search), *options])
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / TABLE_FILE, index=False, float_format="%.5f")
    (folder / REPORT_FILE).write_text(report(claim, table, seeds=args.seeds, data=args.data, recipe=recipe, command=command))
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"written to {folder / TABLE_FILE} and {folder / REPORT_FILE}")


def command_replay(args: argparse.Namespace) -> None:
    import pandas as pd

    from .analysis import SUBSETS, TRUTH
    from .replay import replay, strategies

    if args.subset not in SUBSETS:
        raise UserError(f"--subset must be one of {', '.join(SUBSETS)}, got {args.subset!r}")
    if not args.table.is_file():
        raise UserError(f"no table at {args.table}: run python -m nas.fidelity analyse first")
    if args.trainings < 1 or args.draws < 1 or min(args.factors) < 1:
        raise UserError(f"--trainings, --draws and --factors must be 1 or more, got {args.trainings}, {args.draws} and {args.factors}")
    table = pd.read_csv(args.table, index_col=0)
    frame = table[SUBSETS[args.subset](table) & table[TRUTH].notna()].reset_index() if TRUTH in table else table.iloc[:0]
    plan = strategies(frame, args.trainings, args.factors)
    if not plan:
        raise UserError(f"{args.table} has no proxy recipe scored with seeds 0 and 1 on every {args.subset} row with a tier-1 result")
    with user_input():
        result = replay(frame, plan, args.draws, args.seed)
    out = args.out or args.table.with_name(f"replay-{args.subset}.csv")
    result.to_csv(out, index=False, float_format="%.5f")
    print(f"{args.subset}: {len(frame)} rows with a tier-1 result, best {frame[TRUTH].max():.4f}, mean {frame[TRUTH].mean():.4f} (a random "
          f"pick's); every strategy gets {args.trainings} runs' training images of today's proxy; {args.draws} draws each")
    print(result.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"written to {out}")


COMMANDS = {"draw": command_draw, "tier1": command_tier, "tier2": command_tier, "score": command_score, "analyse": command_analyse,
            "replay": command_replay, "compare": command_compare, "claim": command_claim}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(lambda: COMMANDS[args.command](args), on_interrupt="every finished run is in the ledger; rerun the same command to resume")


if __name__ == "__main__":
    raise SystemExit(main())
