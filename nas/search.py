"""``python -m nas.search --budget 30ms``: the most accurate architecture of the space whose
predicted latency fits the budget, scored by short proxy training, beside the paper's models."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import optuna

from latency import LUT, load_lut
from repghost import NetConfig
from space import SearchSpace, load_space

from .baselines import Baseline, enqueue_feasible, evaluate_baselines
from .budget import parse_budget
from .cli import DefaultsFormatter
from .objective import Objective, Trainer
from .proxy import PRESETS, ProxyConfig, available_cores, split_for, train_proxy
from .report import LUT_INFO_ATTR, lut_info, write_report
from .study import PRUNERS, default_storage_url, open_storage, open_study
from .workers import ParentWatch, run_workers, worker_commands

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LUTS = ("results/lut/paper-phone.json", "results/lut/host-ort-t1.json")


def default_lut() -> str:
    for relative in DEFAULT_LUTS:
        if (PROJECT_ROOT / relative).is_file():
            return str(PROJECT_ROOT / relative)
    return str(PROJECT_ROOT / DEFAULT_LUTS[0])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nas.search",
        description="Search the space for the most accurate architecture within a latency budget, "
        "scored by short proxy training, with the paper's RepGhostNets as baselines.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--budget", required=True, help="latency budget: 30ms, 0.03s or 30000us")
    parser.add_argument("--lut", default=default_lut(), help="latency lookup table (JSON) that predicts latency")
    parser.add_argument("--space", default=None, help="search space YAML (default: the one the LUT was built for)")
    parser.add_argument("--trials", type=int, default=None, help="candidates to evaluate within the budget; infeasible ones are free and not counted (default: 30, or 8 with --quick)")
    parser.add_argument("--max-trials", type=int, default=None, help="cap on all trials of this run, infeasible ones included (default: 20 x --trials)")
    parser.add_argument("--study", default=None, help="study name (default: derived from budget and data)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: SQLite under results/<study>/)")
    parser.add_argument("--results", default="results", help="folder for study outputs")
    parser.add_argument("--data", default="fashion-mnist", help="proxy data: fashion-mnist, cifar10, imagefolder:PATH or synthetic")
    parser.add_argument("--epochs", type=int, default=None, help="proxy training epochs (default: the recipe's)")
    parser.add_argument("--resolution", type=int, default=None, help="proxy input resolution (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampler, data split and training")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for proxy training (default: every core; use 1 when other work shares the cores)")
    parser.add_argument("--multi-objective", action="store_true", help="accuracy and latency both as objectives")
    parser.add_argument("--quick", action="store_true", help="the quick proxy recipe and 8 trials: a smoke run in minutes")
    parser.add_argument("--pruner", choices=PRUNERS, default="hyperband", help="pruner for proxy training (benchmarks/pruner_choice.py measured the choice)")
    parser.add_argument("--no-baselines", action="store_true", help="skip training the paper baselines")
    parser.add_argument("--heartbeat-seconds", type=int, default=10, help="trial heartbeat; a killed worker's trial is retried after 3x this")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine, sharing one storage (default storage then: a journal file under results/<study>/); worker k samples with seed+k")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)  # set by --workers for each worker
    parser.add_argument("--worker-count", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.trials is None:
        args.trials = 8 if args.quick else 30
    return args


def study_name(budget_ms: float, data: str, quick: bool, multi: bool) -> str:
    data_part = re.sub(r"[^A-Za-z0-9]+", "-", data).strip("-")
    return f"budget-{budget_ms:g}ms-{data_part}{'-mo' if multi else ''}{'-quick' if quick else ''}"


class Progress:
    """One line per trial: number, latency, accuracy or outcome, best so far, elapsed, ETA."""

    def __init__(self, target: int, done_before: int, budget_ms: float, prefix: str = "") -> None:
        self.prefix = prefix
        self.target = target
        self.done_before = done_before
        self.budget_ms = budget_ms
        self.start = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = count_evaluated(study)
        status = trial.user_attrs.get("status", trial.state.name.lower())
        latency = trial.user_attrs.get("latency_ms", math.nan)
        if status in ("trained", "cached") and trial.values:
            outcome = f"acc {trial.values[0]:.4f}" + (" (cached)" if status == "cached" else "")
        else:
            outcome = status
        best = best_accuracy(study)
        elapsed = time.monotonic() - self.start
        done_now = counted - self.done_before
        remaining = max(self.target - counted, 0)
        eta = f"{_clock(elapsed / done_now * remaining)}" if done_now > 0 else "?"
        print(
            f"{self.prefix}trial {trial.number:4d} | {latency:7.2f} ms | {outcome:<22} | best {best:.4f} | "
            f"{counted}/{self.target} evaluated | {_clock(elapsed)} elapsed | ETA {eta}",
            flush=True,
        )
        if counted >= self.target:
            study.stop()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def count_evaluated(study: optuna.Study) -> int:
    """Trials that evaluated a feasible candidate (trained, pruned or found in the cache)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") in ("trained", "cached", "pruned") and t.state.is_finished())


def best_accuracy(study: optuna.Study) -> float:
    values = [t.values[0] for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") in ("trained", "cached") and t.values]
    return max(values, default=math.nan)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.worker_index is None:
            raise
        return 130  # a worker interrupted by its parent: the parent says what happened


def proxy_settings(args: argparse.Namespace) -> ProxyConfig:
    """The proxy recipe: the default (or quick) preset with the command line's changes."""
    base = PRESETS["quick" if args.quick else "default"]
    changes: dict[str, Any] = {"data": args.data, "seed": args.seed, "split_seed": args.seed}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.resolution is not None:
        changes["resolution"] = args.resolution
    if args.threads is not None:
        changes["threads"] = args.threads
    return dataclasses.replace(base, **changes)


def proxy_summary(proxy: ProxyConfig) -> str:
    return (
        f"{proxy.data}, {proxy.train_size} train / {proxy.val_size} val images at {proxy.resolution}px, "
        f"{proxy.epochs} epoch{'s' if proxy.epochs > 1 else ''}, batch {proxy.batch_size}, {proxy.optimizer} lr {proxy.lr:g} ({proxy.proxy_id()})"
    )


def make_trainer(proxy: ProxyConfig) -> Trainer:
    def train(config: NetConfig, report: Callable[[int, float], None]) -> tuple[float, list[float], float]:
        result = train_proxy(config, proxy, report)
        return result.accuracy, list(result.val_accuracies), result.train_seconds

    return train


def shown_path(path: str | Path) -> str:
    """A path as outputs show it: relative to the project when inside it, so that studies and
    summaries read the same on every clone."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(resolved)


def check_space_matches(lut: LUT, space: SearchSpace) -> None:
    if lut.fingerprint.get("space_hash") != space.file_hash():
        raise ValueError(
            f"LUT {lut.path} was built for another space file (sha256 {str(lut.fingerprint.get('space_hash'))[:12]}..., "
            f"{space.path} is {space.file_hash()[:12]}...): pass the LUT's space with --space or build a LUT for this one"
        )


def run(args: argparse.Namespace) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines say what happens
    budget_ms = parse_budget(args.budget)
    if args.trials < 1:
        raise ValueError(f"--trials must be at least 1, got {args.trials}")
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    lut = load_lut(args.lut)
    space = load_space(args.space if args.space else PROJECT_ROOT / lut.fingerprint["space_file"])
    check_space_matches(lut, space)
    fastest_ms = space.fastest(lut.part_ms)[0] + lut.correction.offset_ms
    proxy = proxy_settings(args)
    split_for(proxy)  # loads the data now: a missing data set fails before any study is written
    if budget_ms < fastest_ms:
        raise ValueError(f"budget {budget_ms:g} ms is below the fastest architecture of the space ({fastest_ms:.2f} ms predicted by {args.lut}): raise the budget")
    name = args.study or study_name(budget_ms, args.data, args.quick, args.multi_objective)
    folder = Path(args.results) / name
    folder.mkdir(parents=True, exist_ok=True)
    storage_url = args.storage or default_storage_url(folder, args.workers)
    storage = open_storage(storage_url, heartbeat_seconds=args.heartbeat_seconds)
    settings: dict[str, Any] = {
        "study": name,
        "budget_ms": budget_ms,
        "lut": shown_path(args.lut),
        "lut_fingerprint": {k: lut.fingerprint.get(k) for k in ("device", "cpu_model", "engine", "engine_version", "threads", "date")},
        "space": shown_path(space.path),
        "space_sha256": space.file_hash(),
        "resolution": space.resolution,
        "proxy_id": proxy.proxy_id(),
        "proxy_summary": proxy_summary(proxy),
        "multi_objective": args.multi_objective,
        "seed": args.seed,
    }
    worker = args.worker_index is not None
    study = open_study(name=name, storage=storage, multi_objective=args.multi_objective, seed=args.seed + (args.worker_index or 0), pruner=args.pruner, settings=settings)
    train = make_trainer(proxy)
    info = lut_info(lut)
    if study.user_attrs.get(LUT_INFO_ATTR) != info:
        study.set_user_attr(LUT_INFO_ATTR, info)  # what the outputs say of the latencies, for python -m nas.report
    estimated = " (estimated)" if lut.estimated else ""
    baselines: list[Baseline] = []
    if not worker:  # workers leave the header, baselines and outputs to their parent
        print(f"study {name}: budget {budget_ms:g} ms{estimated} on {info['device']} ({info['engine']}); fastest architecture of the space {fastest_ms:.2f} ms; proxy {proxy_summary(proxy)}", flush=True)
        if not args.no_baselines:
            baselines = evaluate_baselines(study, space=space, predict_ms=lut.predict, proxy_id=proxy.proxy_id(), train=train)
        enqueue_feasible(study, space, baselines, budget_ms)
    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id=proxy.proxy_id(), train=train, epochs=proxy.epochs, multi_objective=args.multi_objective, target=args.trials)
    done_before = count_evaluated(study)
    cap = args.max_trials if args.max_trials is not None else 20 * args.trials
    if done_before < args.trials and args.workers > 1:
        threads = args.threads or max(1, available_cores() // args.workers)
        print(f"{args.workers} workers on {storage_url}, {threads} torch thread(s) each", flush=True)
        commands = worker_commands(args.argv, workers=args.workers, storage_url=storage_url, study=name, threads=threads, max_trials=cap)
        codes = run_workers(commands)
        if any(codes):
            raise ValueError(f"worker exit codes {codes}: finished trials are kept in {storage_url}; rerun the same command to resume")
    elif done_before < args.trials:
        prefix = f"worker {args.worker_index + 1}/{args.worker_count} | " if worker else ""
        progress = Progress(args.trials, done_before, budget_ms, prefix)
        study.optimize(objective, n_trials=cap, callbacks=[progress, *([ParentWatch()] if worker else [])], gc_after_trial=False)
    elif not worker:
        print(f"study {name} already has {done_before} evaluated candidates (>= --trials {args.trials}); writing outputs", flush=True)
    if worker:
        return 0  # the parent writes the outputs
    paths = write_report(folder, study, baselines, settings, info)
    print(f"outputs in {folder}: " + ", ".join(p.name for p in paths.values()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
