"""``python -m nas.search --budget 30ms``: the most accurate architecture of the space whose
predicted latency fits the budget, scored by short proxy training, beside the paper's models."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.storages import JournalStorage

from latency import LUT, load_lut
from repghost import NetConfig
from space import DEFAULT_SPACE, SearchSpace

from .baselines import Baseline, enqueue_feasible, evaluate_baselines
from .budget import parse_budget
from .cli import DefaultsFormatter
from .confirmation import Plan, confirm, fresh_seeds, targets
from .errors import UserError, user_input
from .interrupts import TrialLoopInterrupts
from .lut_info import lut_info
from .objective import Objective, Trainer
from .outputs import trials_frame
from .progress import Progress, count_evaluated
from .proxy import DEFAULT_THREADS, PRESETS, ProxyConfig, split_for, train_proxy
from .report_writer import write_report
from .screens import naswot
from .study import DEFAULT_SAMPLER, PRUNERS, SAMPLERS, default_storage_url, move_to_journal, open_storage, open_study
from .vocabulary import DEFAULT_LUTS, PROJECT_ROOT, SQLITE_FILE, StudyAttr, name_part
from .workers import ParentWatch, run_workers, worker_commands


# Confirmation: the top 3 candidates and the baselines within the budget, 3 fresh seeds each
# (2 with --quick, which must end within 3 minutes).
CONFIRM_TOP = 3
CONFIRM_SEEDS = 3
QUICK_CONFIRM_SEEDS = 2


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
    parser.add_argument("--space", default=None, help="search space YAML (default: the packaged space, space/repghost.yaml); the LUT must be built for it")
    parser.add_argument("--trials", type=int, default=None, help="candidates to evaluate within the budget; infeasible ones are free and not counted (default: 30, or 8 with --quick)")
    parser.add_argument("--max-trials", type=int, default=None, help="cap on all trials of this run, infeasible and screened ones included (default: 20 x --screen x --trials)")
    parser.add_argument("--study", default=None, help="study name (default: derived from budget and data)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: SQLite under results/<study>/)")
    parser.add_argument("--results", default="results", help="folder for study outputs")
    parser.add_argument("--data", default="fashion-mnist", help="proxy data: fashion-mnist, cifar10, imagefolder:PATH or synthetic")
    parser.add_argument("--epochs", type=int, default=None, help="proxy training epochs (default: the recipe's)")
    parser.add_argument("--resolution", type=int, default=None, help="proxy input resolution (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampler, data split and training")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads per process for proxy training (benchmarks/threads_under_load.py measured the default)")
    parser.add_argument("--multi-objective", action="store_true", help="accuracy and latency both as objectives")
    parser.add_argument("--quick", action="store_true", help="the quick proxy recipe and 8 trials: a smoke run in minutes")
    parser.add_argument("--pruner", choices=PRUNERS, default="hyperband", help="pruner for proxy training (benchmarks/pruner_choice.py measured the choice)")
    parser.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER, help="Optuna sampler: tpe (multivariate TPE), or random, the baseline it is compared with")
    parser.add_argument("--screen", type=int, default=1, metavar="F",
                        help="screen candidates by NASWOT, a training-free score (a fraction of a CPU second), before training: a candidate "
                        "is trained only when it ranks within the top 1/F (rounded up) of the candidates screened so far; of random candidates "
                        "that is about one in F in the long run, more early on, and more as the sampler learns what the screen passes "
                        "(1: train every feasible candidate)")
    parser.add_argument("--no-baselines", action="store_true", help="skip training the paper baselines")
    parser.add_argument("--confirm-top", type=int, default=CONFIRM_TOP, help="searched candidates trained again with fresh seeds at the end, beside every paper baseline within the budget (0: no confirmation)")
    parser.add_argument("--confirm-seeds", type=int, default=None, help=f"fresh seeds per confirmed architecture (default: {CONFIRM_SEEDS}, or {QUICK_CONFIRM_SEEDS} with --quick)")
    parser.add_argument("--heartbeat-seconds", type=int, default=10, help="trial heartbeat; a killed worker's trial is retried after 3x this")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine, sharing one storage (default storage then: a journal file under results/<study>/); worker k samples with seed+k")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)  # set by --workers for each worker
    parser.add_argument("--worker-count", type=int, default=1, help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(joined_values(argv, ("--budget",)))
    args.argv = argv
    if args.trials is None:
        args.trials = 8 if args.quick else 30
    if args.confirm_seeds is None:
        args.confirm_seeds = QUICK_CONFIRM_SEEDS if args.quick else CONFIRM_SEEDS
    return args


def joined_values(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``--budget -5ms`` as ``--budget=-5ms``: argparse takes a value that starts with "-" for
    an option and answers with its usage; joined, the value reaches its own check."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in options and index + 1 < len(argv) and argv[index + 1].startswith("-") and argv[index + 1][1:2].isdigit():
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def study_name(budget_ms: float, data: str, quick: bool, multi: bool) -> str:
    data_part = name_part(data)
    return f"budget-{budget_ms:g}ms-{data_part}{'-mo' if multi else ''}{'-quick' if quick else ''}"


# Optuna's trial loop logs a trial stopped by Ctrl-C as failed, with a traceback, from this
# logger (a private module's name: Optuna has no public switch for that one message).
OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"
INTERRUPTED = ("interrupted: every finished trial, baseline and confirmation is kept in the study's storage (a candidate "
               "whose training was cut short is queued again); rerun the same command to resume")


class NoInterruptTraceback(logging.Filter):
    """Drops Optuna's two records of a trial stopped by Ctrl-C ("Trial N failed with parameters
    ..." with the traceback, then "Trial N failed with value None."): the search says it in one line."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped: set[str] = set()  # "Trial N" of each trial dropped so far

    def filter(self, record: logging.LogRecord) -> bool:
        trial = record.getMessage().split(" failed with ", 1)[0]
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            self.stopped.add(trial)
            return False
        return trial not in self.stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker_index is not None:
        # The parent stops its workers with SIGINT; a search started from a background shell
        # (`nohup ... &`) hands its children SIGINT ignored, and they would never stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    quiet = NoInterruptTraceback()
    logging.getLogger(OPTUNA_TRIAL_LOGGER).addFilter(quiet)
    try:
        return run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.worker_index is None:  # a worker's parent says what happened
            print(INTERRUPTED, file=sys.stderr)
        return 130
    finally:
        logging.getLogger(OPTUNA_TRIAL_LOGGER).removeFilter(quiet)


def proxy_settings(args: argparse.Namespace) -> ProxyConfig:
    """The proxy recipe: the default (or quick) preset with the command line's changes."""
    base = PRESETS["quick" if args.quick else "default"]
    changes: dict[str, Any] = {"data": args.data, "seed": args.seed, "split_seed": args.seed}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.resolution is not None:
        changes["resolution"] = args.resolution
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


def run(args: argparse.Namespace) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines say what happens
    budget_ms = parse_budget(args.budget)
    if args.trials < 1:
        raise UserError(f"--trials must be at least 1, got {args.trials}")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.screen < 1:
        raise UserError(f"--screen must be 1 (no screen) or more, got {args.screen}")
    if args.confirm_top < 0 or args.confirm_seeds < 0:
        raise UserError(f"--confirm-top and --confirm-seeds must be 0 or more, got {args.confirm_top} and {args.confirm_seeds}")
    with user_input():
        lut = load_lut(args.lut)
    for line in lut.warnings():
        print(line, file=sys.stderr, flush=True)
    with user_input():
        space = lut.space(args.space or DEFAULT_SPACE)  # the LUT must belong to the space asked for
    fastest_ms = space.fastest(lut.part_ms)[0] + lut.correction.offset_ms
    with user_input():
        proxy = proxy_settings(args)
    with user_input():
        split_for(proxy)  # loads the data now: a missing data set fails before any study is written
    if budget_ms < fastest_ms:
        raise UserError(f"budget {budget_ms:g} ms is below the fastest architecture of the space ({fastest_ms:.2f} ms predicted by {args.lut}): raise the budget")
    name = args.study or study_name(budget_ms, args.data, args.quick, args.multi_objective)
    folder = Path(args.results) / name
    created = not folder.exists()
    try:
        return search(args, folder, lut, space, proxy, budget_ms, fastest_ms)
    finally:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a run that failed before writing anything leaves no empty folder behind


def search(args: argparse.Namespace, folder: Path, lut: LUT, space: SearchSpace, proxy: ProxyConfig, budget_ms: float, fastest_ms: float) -> int:
    """The search proper, once its inputs are checked: study, baselines, trials, outputs."""
    name = folder.name
    if args.storage is None:
        folder.mkdir(parents=True, exist_ok=True)
        if args.workers > 1 and (folder / SQLITE_FILE).exists():
            move_to_journal(folder)
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
    if args.sampler != DEFAULT_SAMPLER:  # studies from before the option were TPE and stored no sampler
        settings["sampler"] = args.sampler
    if args.screen > 1:  # likewise: studies from before the option screened nothing and stored no screen
        settings["screen"] = {"score": "naswot", "factor": args.screen}
    worker = args.worker_index is not None
    study = open_study(name=name, storage=storage, multi_objective=args.multi_objective, seed=args.seed + (args.worker_index or 0), pruner=args.pruner, settings=settings,
                       sampler=args.sampler)
    train = make_trainer(proxy)
    info = lut_info(lut, settings["lut"])
    if study.user_attrs.get(StudyAttr.LUT_INFO) != info:
        study.set_user_attr(StudyAttr.LUT_INFO, info)  # what the outputs say of the latencies, for python -m nas.report
    estimated = " (estimated)" if lut.estimated else ""
    baselines: list[Baseline] = []
    if not worker:  # workers leave the header, baselines and outputs to their parent
        print(f"study {name}: budget {budget_ms:g} ms{estimated} on {info['device']} ({info['engine']}); fastest architecture of the space {fastest_ms:.2f} ms; proxy {proxy_summary(proxy)}", flush=True)
        if not args.no_baselines:
            baselines = evaluate_baselines(study, space=space, predict_ms=lut.predict, proxy_id=proxy.proxy_id(), train=train)
        enqueue_feasible(study, space, baselines, budget_ms)
    # Journal files have no heartbeats of their own: the objective beats for them.
    beat_every_s = float(args.heartbeat_seconds) if isinstance(storage, JournalStorage) else None
    interrupts = TrialLoopInterrupts()
    objective = Objective(space=space, predict_ms=lut.predict, budget_ms=budget_ms, proxy_id=proxy.proxy_id(), train=train, epochs=proxy.epochs,
                          multi_objective=args.multi_objective, target=args.trials, beat_every_s=beat_every_s, interrupts=interrupts,
                          screen=(lambda config: naswot(config, proxy)) if args.screen > 1 else None, screen_factor=args.screen)
    done_before = count_evaluated(study)
    if not worker and done_before < args.trials and args.confirm_top > 0 and args.confirm_seeds > 0:
        within = sum(b.candidate.latency_ms <= budget_ms for b in baselines)
        print(f"after the trials, confirmation trains up to {(args.confirm_top + within) * args.confirm_seeds} more proxy runs "
              f"(top {args.confirm_top} and {within} baseline(s) within the budget, {args.confirm_seeds} fresh seeds each), "
              "which the trials' ETA leaves out", flush=True)
    if not worker and done_before < args.trials and args.screen > 1:
        print(f"screen: NASWOT ranks each feasible candidate before training; only those within the top 1/{args.screen} (rounded up) of the "
              f"candidates screened so far are trained (of random candidates about one in {args.screen} in the long run, more early on and as "
              "the sampler learns what the screen passes)", flush=True)
    cap = args.max_trials if args.max_trials is not None else 20 * args.screen * args.trials
    if done_before < args.trials and args.workers > 1:
        print(f"{args.workers} workers on {storage_url}, {args.threads} torch thread(s) each", flush=True)
        commands = worker_commands(args.argv, workers=args.workers, storage_url=storage_url, study=name, threads=args.threads, max_trials=cap)
        codes = run_workers(commands)
        if any(codes):
            raise UserError(f"worker exit codes {codes}: finished trials are kept in {storage_url}; rerun the same command to resume")
    elif done_before < args.trials:
        prefix = f"worker {args.worker_index + 1}/{args.worker_count} | " if worker else ""
        progress = Progress(args.trials, done_before, prefix)
        with interrupts.installed():
            study.optimize(interrupts.taken_in(objective, objective.interrupted), n_trials=cap, callbacks=[progress, *([ParentWatch()] if worker else [])], gc_after_trial=False)
    elif not worker:
        print(f"study {name} already has {done_before} evaluated candidates (>= --trials {args.trials}); writing outputs", flush=True)
    if worker:
        return 0  # the parent confirms and writes the outputs
    if args.confirm_top > 0 and args.confirm_seeds > 0:
        plan = Plan(args.confirm_top, fresh_seeds(args.seed, args.confirm_seeds), reduced=args.confirm_seeds < CONFIRM_SEEDS)
        chosen = targets(trials_frame(study), baselines, budget_ms, plan.top_k)
        confirm(study, proxy.proxy_id(), plan, chosen, lambda config, seed: make_trainer(dataclasses.replace(proxy, seed=seed))(config, lambda epoch, accuracy: None),
                log=lambda line: print(line, flush=True))
    paths = write_report(folder, study, baselines, settings, info)
    print(f"outputs in {folder}: " + ", ".join(p.name for p in paths.values()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
