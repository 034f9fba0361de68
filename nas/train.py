"""``python -m nas.train``: train what a search found (or a paper model) with the reference recipe
of its data set (``nas/recipes.py``), and ship it (``nas/training.py``): a checkpoint that
rebuilds on its own, the deploy-form ONNX with the trained weights and a metrics JSON.

    python -m nas.train results/budget-30ms-fashion-mnist     # the study's best (its best.json)
    python -m nas.train path/to/arch.json                     # a NetConfig JSON, or a best.json
    python -m nas.train --width 0.5                           # RepGhostNet 0.5x
    python -m nas.train --family ghostnet --width 1.0

The test split is evaluated only with ``--test``, and the metrics say whether it was. Rerun the
same command after a kill to resume; other settings in the same ``--out`` are refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import repghost
from repghost import NetConfig

from .cli import DefaultsFormatter, run_command
from .errors import UserError, user_input
from .proxy import DEFAULT_THREADS, OPTIMIZERS
from .recipes import AUGMENTATIONS, Recipe, recipe_for
from .training import train
from .vocabulary import BEST_FILE, name_part


@dataclass(frozen=True)
class Source:
    """The architecture to train and where it came from."""

    config: NetConfig
    name: str  # short, for the default output folder
    origin: str  # as the metrics record it
    search_seed: int | None = None  # the search's seed, when its files record it


def read_architecture(path: Path) -> Source:
    """A NetConfig JSON, or a study's ``best.json`` (its ``architecture`` entry)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not a readable JSON architecture file ({error}); pass a NetConfig JSON, a study's best.json or its folder") from None
    arch = data.get("architecture", data) if isinstance(data, dict) else data
    if arch is None:
        raise UserError(f"{path} names no architecture: its search has no feasible trial yet; run nas.search until one fits the budget")
    try:
        config = NetConfig.from_dict(arch)
    except (ValueError, TypeError) as error:
        raise UserError(f"{path} holds no valid network config ({error}); pass a NetConfig JSON as repghost's to_json writes it, or a study's best.json") from None
    seed = data.get("seed") if isinstance(data, dict) else None
    name = path.parent.name if path.name == BEST_FILE else path.stem
    return Source(config, name, str(path), seed if isinstance(seed, int) and not isinstance(seed, bool) else None)


def resolve_source(args: argparse.Namespace) -> Source:
    if args.arch is not None and args.width is not None:
        raise UserError("pass either an architecture (study folder or JSON file) or --width, not both")
    if args.arch is None and args.width is None:
        raise UserError("nothing to train: pass a study folder (results/<study>), an architecture JSON file, or --width for a paper model")
    if args.width is not None:
        make = repghost.repghostnet_config if args.family == "repghost" else repghost.ghostnet_config
        with user_input():
            config = make(args.width)
        label = f"{'repghostnet' if args.family == 'repghost' else 'ghostnet'}-{args.width:g}x"
        return Source(config, label, f"{args.family} width {args.width:g}")
    path = Path(args.arch)
    if path.is_dir():
        best = path / BEST_FILE
        if not best.is_file():
            raise UserError(f"{path} has no {BEST_FILE}: its search has no feasible trial yet; run nas.search into it until one fits the budget, or pass an architecture JSON")
        return read_architecture(best)
    if not path.is_file():
        raise UserError(f"{path} does not exist: pass a study folder (results/<study>), an architecture JSON file, or --width")
    return read_architecture(path)


def recipe_from(args: argparse.Namespace) -> Recipe:
    """The data set's reference recipe with the settings given on the command line."""
    base = recipe_for(args.data)
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe) if getattr(args, f.name) is not None}
    with user_input():
        return dataclasses.replace(base, **changes)


def default_out(source: Source, data: str, seed: int) -> Path:
    """``results/train/<arch>-<data>-seed<seed>``; a study folder's name already ends in its data set."""
    data_part = name_part(data)
    stem = source.name if source.name.endswith(f"-{data_part}") else f"{source.name}-{data_part}"
    return Path("results") / "train" / f"{stem}-seed{seed}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nas.train",
        description="Train an architecture with the reference recipe of its data set and write a "
        "checkpoint, the deploy-form ONNX and a metrics JSON. Rerun the same command to resume.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("arch", nargs="?", default=None, help="a study folder (results/<study>: its best.json), or an architecture JSON (NetConfig, or a best.json)")
    parser.add_argument("--width", type=float, default=None, help="train a paper model of this width instead")
    parser.add_argument("--family", choices=("repghost", "ghostnet"), default="repghost", help="paper model family of --width")
    parser.add_argument("--data", default="fashion-mnist", help="data: fashion-mnist, cifar10, cifar10:PATH, imagefolder:PATH or synthetic")
    parser.add_argument("--out", default=None, help="output folder (default: results/train/<arch>-<data>-seed<seed>)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization, dropout, batch order and augmentation")
    parser.add_argument("--split-seed", type=int, default=None, help="the search's --seed, which drew the validation split held out here (default: the seed best.json records, else 0)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads (one is fastest when other work shares the cores: nas/proxy.py)")
    parser.add_argument("--test", action="store_true", help="also evaluate the test split (recorded in the metrics)")
    recipe = parser.add_argument_group("recipe", "default: the data set's reference recipe (nas/recipes.py): fashion-mnist "
                                       + ", ".join(f"{k} {v}" for k, v in recipe_for("fashion-mnist").to_dict().items()))
    recipe.add_argument("--epochs", type=int, default=None, help="training epochs")
    recipe.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="images per step")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="sgd (Nesterov momentum 0.9) or adamw")
    recipe.add_argument("--lr", type=float, default=None, help="peak learning rate (cosine decay per step)")
    recipe.add_argument("--weight-decay", dest="weight_decay", type=float, default=None, help="on conv and linear weights")
    recipe.add_argument("--warmup-epochs", dest="warmup_epochs", type=int, default=None, help="linear warm-up epochs")
    recipe.add_argument("--label-smoothing", dest="label_smoothing", type=float, default=None, help="cross-entropy label smoothing")
    recipe.add_argument("--augment", choices=AUGMENTATIONS, default=None, help="training augmentation")
    recipe.add_argument("--crop-padding", dest="crop_padding", type=int, default=None, help="zero padding of the random crop, pixels")
    recipe.add_argument("--resolution", type=int, default=None, help="input resolution (also the ONNX's)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, after_checkpoint: Callable[[int], None] | None = None) -> dict[str, Any]:
    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    source = resolve_source(args)
    recipe = recipe_from(args)
    split_seed = args.split_seed if args.split_seed is not None else (source.search_seed or 0)
    if split_seed < 0:
        raise UserError(f"--split-seed must be non-negative, got {split_seed}")
    out = Path(args.out) if args.out else default_out(source, args.data, args.seed)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder")
    metrics = train(source.config, recipe, data=args.data, out=out, origin=source.origin, seed=args.seed,
                    split_seed=split_seed, threads=args.threads, test=args.test, after_checkpoint=after_checkpoint)
    test = f", test accuracy {metrics['test_accuracy']:.4f}" if metrics["test_split_read"] else ""
    print(f"{out}: val accuracy {metrics['val_accuracy']:.4f} after {metrics['epochs_done']} epochs{test}; "
          f"ONNX max |logit diff| {metrics['onnx']['max_abs_logit_diff']:.1e}; model.pt, model.onnx, metrics.json", flush=True)
    return metrics


def main(argv: list[str] | None = None, *, after_checkpoint: Callable[[int], None] | None = None) -> int:
    """The command line; ``after_checkpoint(epoch)`` runs after each epoch's checkpoint (tests
    stop the process there)."""
    args = parse_args(argv)
    return run_command(lambda: run(args, after_checkpoint), on_interrupt="every finished epoch is checkpointed (none if the first was cut short); rerun the same command to resume")


if __name__ == "__main__":
    raise SystemExit(main())
