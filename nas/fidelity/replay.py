"""Would a search that screens more candidates cheaply, and trains only the promising ones, pick
better architectures for the same training? A replay of the fidelity study's measured scores
(``python -m nas.fidelity replay``), to choose a screening design before building it.

The rows inside the latency band are a random sample of the space there, each with its tier-1
accuracy (the ground truth: the mean of two longer trainings) and its scores (proxy recipes and
training-free scores, per seed). A replayed search draws candidates from those rows without
replacement, scores them as its strategy says, and picks the best by its last stage; a
"training" reads one of the row's per-seed proxy scores at random, as a fresh seed would give.
Every strategy gets the same training images: ``trainings`` runs of today's proxy, or fewer of
a dearer recipe. Per strategy, over many draws: the mean tier-1 accuracy of the pick, its
regret against the subset's best row, and how often the pick is among the subset's top 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .analysis import TRUTH
from .scorers import PROXY_RECIPES, proxy_config

SCREENS = ("naswot", "synflow")


@dataclass(frozen=True)
class Strategy:
    """Train ``trained`` candidates with ``recipe``, chosen as the top ones by ``screen`` among
    ``screened`` drawn (all drawn are trained when ``screen`` is None); with no ``recipe``, pick
    the top one of ``screened`` by ``screen`` alone."""

    name: str
    recipe: str | None
    screen: str | None
    screened: int
    trained: int


def images_per_training(recipe: str) -> int:
    """Training image passes of one run of a proxy recipe (its train size x epochs)."""
    config = proxy_config(recipe, data="fashion-mnist", split_seed=0, seed=0, threads=1)
    return config.train_size * config.epochs


def strategies(frame: pd.DataFrame, trainings: int, factors: list[int]) -> list[Strategy]:
    """Each proxy recipe scored with both seeds on every row, alone and after each training-free
    score's screen at every factor; each training-free score alone over the largest pool. A
    recipe gets the training images of ``trainings`` runs of today's proxy."""
    both = lambda name: {f"{name}@0", f"{name}@1"} <= set(frame.columns) and frame[[f"{name}@0", f"{name}@1"]].notna().all().all()  # noqa: E731
    recipes = [r for r in PROXY_RECIPES if both(r)]
    screens = [s for s in SCREENS if both(s)]
    today = images_per_training("proxy-today")
    out = []
    for recipe in recipes:
        afforded = max(1, trainings * today // images_per_training(recipe))
        out.append(Strategy(recipe, recipe, None, afforded, afforded))
        out += [Strategy(f"{recipe} on top 1/{k} by {screen}", recipe, screen, afforded * k, afforded) for screen in screens for k in factors if k > 1]
    out += [Strategy(f"{screen} alone", None, screen, trainings * max(factors), 0) for screen in screens]
    return out


def replay(frame: pd.DataFrame, plan: list[Strategy], draws: int, seed: int) -> pd.DataFrame:
    """One line per strategy: the mean tier-1 accuracy of its pick over ``draws`` draws, the
    regret of that mean against the subset's best row (points) and the top-3 rate. The draws
    average over orders of fixed rows: how far a figure would move with other rows is what the
    band's other half tells (choose on one half, check on the other)."""
    too_many = [s.name for s in plan if s.screened > len(frame)]
    if too_many:
        raise ValueError(f"{', '.join(too_many)} would draw more than the {len(frame)} rows: lower trainings or factors")
    rng = np.random.default_rng(seed)
    truth = frame[TRUTH].to_numpy()
    top3 = set(np.argsort(-truth)[:3].tolist())
    picks: dict[str, list[int]] = {s.name: [] for s in plan}
    for _ in range(draws):
        order = rng.permutation(len(frame))  # one order per draw: a strategy that screens more sees a longer prefix
        for s in plan:
            pool = order[: s.screened]
            if s.screen is not None:
                cheap = frame[[f"{s.screen}@0", f"{s.screen}@1"]].to_numpy()[pool, rng.integers(2, size=len(pool))]
                pool = pool[np.argsort(-cheap, kind="stable")][: max(s.trained, 1)]
            if s.recipe is not None:
                scores = frame[[f"{s.recipe}@0", f"{s.recipe}@1"]].to_numpy()[pool, rng.integers(2, size=len(pool))]
                pool = pool[[int(np.argmax(scores))]]
            picks[s.name].append(int(pool[0]))
    lines = []
    for s in plan:
        accuracy = truth[picks[s.name]]
        lines.append({"strategy": s.name, "screened": s.screened, "trained": s.trained, "pick_tier1": accuracy.mean(),
                      "regret_pt": 100 * (truth.max() - accuracy.mean()), "top3_rate": float(np.mean([i in top3 for i in picks[s.name]]))})
    return pd.DataFrame(lines).sort_values("pick_tier1", ascending=False, kind="stable").reset_index(drop=True)
