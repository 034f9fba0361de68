"""Which pruner should proxy training use? Replays real learning curves through each of
``nas.study``'s pruners.

The curves are the per-epoch validation accuracies of every candidate a study trained to the
end (its shared evaluations: searched candidates and paper baselines). For many random orders
of those candidates, a fresh in-memory Optuna study with the pruner under test sees them one by
one, as a search would, and decides after each epoch but the last (as ``nas.objective`` asks
it). Per pruner: the epochs spent (share of training everything), how often the best candidate
was pruned, and the mean regret (best final accuracy of all candidates minus the best one that
survived pruning).

    .venv/bin/python benchmarks/pruner_choice.py --storage sqlite:///results/budget-30ms-fashion-mnist/study.db
"""

from __future__ import annotations

import argparse
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nas.evaluations import PREFIX  # noqa: E402
from nas.study import PRUNERS, make_pruner  # noqa: E402


def load_curves(storage: str, study_name: str | None, curves: dict[str, tuple[float, ...]]) -> None:
    """Add to ``curves`` the full learning curves of every study in ``storage`` (or of one),
    one per (proxy settings, architecture): a candidate seen in two studies counts once."""
    names = [study_name] if study_name else [s.study_name for s in optuna.get_all_study_summaries(storage)]
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        epochs = max((len(v["epoch_accuracies"]) for k, v in study.user_attrs.items() if k.startswith(PREFIX + ":")), default=0)
        for key, value in study.user_attrs.items():
            if key.startswith(PREFIX + ":") and len(value["epoch_accuracies"]) == epochs:
                curves[key] = tuple(value["epoch_accuracies"])
        for trial in study.get_trials(deepcopy=False):
            accuracies = trial.user_attrs.get("epoch_accuracies", [])
            if epochs and len(accuracies) == epochs:
                key = f"{PREFIX}:{trial.user_attrs.get('proxy_id')}:{trial.user_attrs.get('arch_id')}"
                curves.setdefault(key, tuple(accuracies))


def replay(curves: list[tuple[float, ...]], pruner: str, seed: int, shares: tuple[float, ...]) -> tuple[float, bool, float, list[float]]:
    """(share of epochs spent, best candidate pruned?, regret, regret once each share of all
    epochs is spent) for one random order."""
    order = list(curves)
    random.Random(seed).shuffle(order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction="maximize", pruner=make_pruner(pruner), sampler=optuna.samplers.RandomSampler(seed=seed))
    spent = 0
    survivors: list[float] = []
    total = sum(len(c) for c in curves)
    best = max(c[-1] for c in curves)
    checkpoints = [share * total for share in shares]
    at_share: list[float] = []
    for curve in order:
        trial = study.ask()
        pruned = False
        for epoch, accuracy in enumerate(curve, start=1):
            spent += 1
            trial.report(accuracy, epoch)
            if epoch < len(curve) and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, curve[-1])
            survivors.append(curve[-1])
        while len(at_share) < len(checkpoints) and spent >= checkpoints[len(at_share)]:
            at_share.append(best - max(survivors, default=min(c[-1] for c in curves)))
    at_share += [best - max(survivors)] * (len(checkpoints) - len(at_share))
    return spent / total, best not in survivors, best - max(survivors), at_share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--storage", action="append", required=True, help="Optuna storage URL with trained candidates (repeatable)")
    parser.add_argument("--study", default=None, help="one study of the storage (default: all)")
    parser.add_argument("--orders", type=int, default=300, help="random orders replayed per pruner")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    found: dict[str, tuple[float, ...]] = {}
    for url in args.storage:
        load_curves(url, args.study, found)
    curves = list(found.values())
    if len(curves) < 5:
        print(f"error: found {len(curves)} full learning curves; a replay needs at least 5 (run a search first)", file=sys.stderr)
        return 2
    finals = np.array([c[-1] for c in curves])
    firsts = np.array([c[0] for c in curves])
    from scipy.stats import kendalltau

    tau = kendalltau(firsts, finals)[0]
    print(f"{len(curves)} curves of {len(curves[0])} epochs; final accuracy {finals.min():.4f}..{finals.max():.4f}; Kendall tau (epoch 1 vs final) {tau:.3f}")
    shares = (0.25, 0.5)
    print("Regret: best final accuracy of all candidates minus the best that survived (at the end, and once a")
    print("share of the epochs of training everything was spent: equal compute for every pruner).")
    print("| pruner | epochs spent | best pruned | mean regret | max regret | " + " | ".join(f"regret at {s:.0%} compute" for s in shares) + " |")
    print("| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in shares) + " |")
    for pruner in PRUNERS:
        results = [replay(curves, pruner, seed, shares) for seed in range(args.orders)]
        spent, lost, regret = (np.array(x, dtype=float) for x in list(zip(*results))[:3])
        at_share = np.array([r[3] for r in results]).mean(axis=0)
        print(f"| {pruner} | {spent.mean():.1%} | {lost.mean():.1%} | {regret.mean():.4f} | {regret.max():.4f} | " + " | ".join(f"{r:.4f}" for r in at_share) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
