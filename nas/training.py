"""Training an architecture for real (``python -m nas.train`` is its command line): every
training image but the search's validation split, the recipe's epochs with a checkpoint after
each, then the outputs a user ships.

A run is seeded and resumable: after each epoch the model, optimizer, scheduler and every random
generator are saved (``nas.checkpointing``), and a run started again in the same folder with the
same settings (the thread count included) goes on from there, to exactly the result of an
uninterrupted run (on CPU; tests/test_nas_train.py). Outputs: ``model.pt`` (official key layout with
its config: ``repghost.load_checkpoint("model.pt")`` rebuilds it), ``config.json``,
``model.onnx`` (deploy form, batch 1, normalized input at the training resolution, checked in
ONNX Runtime against PyTorch), ``metrics.json`` (rewritten after every epoch) and ``resume.pt``.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import repghost
from repghost import NetConfig

from .checkpointing import TrainingState, check_same_settings, write_json_atomic
from .data import Dataset, Split, load_dataset, resize, split
from .errors import UserError, user_input
from .proxy import DEFAULT as PROXY_DEFAULT
from .proxy import DEFAULT_THREADS, build_for, evaluate, normalizer, param_groups
from .recipes import Recipe, lr_factor

# Images whose logits are compared between PyTorch and ONNX Runtime, and the largest difference
# accepted.
ONNX_CHECK_IMAGES = 16
ONNX_TOLERANCE = 1e-4
# A run's record in its folder: settings, per-epoch accuracy, CPU seconds, completion.
METRICS_FILE = "metrics.json"


def held_out_split(data: str, resolution: int, split_seed: int) -> tuple[Split, Dataset]:
    """Every training image except the search's validation split, and that split: exactly
    ``nas.data.split`` with the search's validation size and seed, the rest for training."""
    with user_input():
        dataset = load_dataset(data)
    val_size = PROXY_DEFAULT.val_size
    available = int(dataset.train_labels.shape[0])
    if available - val_size < 2:
        raise UserError(f"--data {data} has {available} training images; at least {val_size + 2} are needed ({val_size} are the search's validation split)")
    return split(dataset, train_size=available - val_size, val_size=val_size, seed=split_seed, resolution=resolution), dataset


def augment(images: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """A random crop of the zero-padded images (and a random horizontal flip), on uint8."""
    if recipe.augment == "none":
        return images
    count, _, height, width = images.shape
    pad = recipe.crop_padding
    if pad:
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
        rows = (dy[:, None] + torch.arange(height))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(width))[:, None, None, :]
        images = padded[torch.arange(count)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]
    if recipe.augment == "flip+crop":
        flip = torch.rand(count, generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(3), images)
    return images


def onnx_max_diff(model: torch.nn.Module, path: Path, images: torch.Tensor) -> tuple[float, str]:
    """Largest |logit difference| between ``model`` (eval mode) and the ONNX file in ONNX
    Runtime (one thread, batch 1) over ``images`` (already normalized), and ORT's version."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for image in images:
            x = image.unsqueeze(0)
            expected = model(x).numpy()
            got = session.run(None, {"input": x.numpy()})[0]
            worst = max(worst, float(np.abs(expected - got).max()))
    return worst, ort.__version__


def run_settings(config: NetConfig, recipe: Recipe, data: str, seed: int, split_seed: int, threads: int) -> dict[str, Any]:
    """What fixes a run's result, bit for bit: a run resumes only when these match. The thread
    count is one of them: torch sums in another order with another count, and a tiny RepGhost
    network trained 3 epochs ended with weights up to 0.31 apart at 1 and 2 threads (identical
    from run to run at either count)."""
    return {
        "architecture": config.to_dict(),
        "data": data,
        "split_seed": split_seed,
        "val_size": PROXY_DEFAULT.val_size,
        "seed": seed,
        "recipe": recipe.to_dict(),
        "threads": threads,
    }


@dataclass(frozen=True)
class Prepared:
    """The images as a run uses them: the split, the whole data set (for its test images), the
    input normalization and the batch."""

    split: Split
    dataset: Dataset
    mean: torch.Tensor
    std: torch.Tensor
    batch: int

    @property
    def train_count(self) -> int:
        return int(self.split.train_images.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        return self.train_count // self.batch


def prepare(data: str, recipe: Recipe, split_seed: int) -> Prepared:
    data_split, dataset = held_out_split(data, recipe.resolution, split_seed)
    mean, std = normalizer(data_split.train_images)
    return Prepared(data_split, dataset, mean, std, min(recipe.batch_size, int(data_split.train_images.shape[0])))


class Run:
    """One process's share of a training run: the live model, optimizer, scheduler and random
    generators, built from the seed and then, when resuming, set to the saved state."""

    def __init__(self, config: NetConfig, recipe: Recipe, data: Prepared, state: TrainingState, *, resume: bool) -> None:
        self.recipe, self.data, self.state = recipe, data, state
        seed = state.settings["seed"]
        torch.manual_seed(seed)
        self.model = build_for(config, data.split)
        groups = param_groups(self.model, recipe.weight_decay)
        if recipe.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=recipe.lr, momentum=0.9, nesterov=True)
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=recipe.lr)
        total_steps = data.steps_per_epoch * recipe.epochs
        schedule = functools.partial(lr_factor, warmup_steps=recipe.warmup_epochs * data.steps_per_epoch, total_steps=total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.generators = {"order": torch.Generator().manual_seed(seed), "augment": torch.Generator().manual_seed(seed + 1)}
        if resume:
            self.model.load_state_dict(state.model)
            self.optimizer.load_state_dict(state.optimizer)
            self.scheduler.load_state_dict(state.scheduler)
            torch.set_rng_state(state.rng["torch"])
            for name, generator in self.generators.items():
                generator.set_state(state.rng[name])

    def train_epoch(self, bar: tqdm) -> float:
        """One pass over the training images; returns the last step's loss."""
        data, recipe = self.data, self.recipe
        self.model.train()
        order = torch.randperm(data.train_count, generator=self.generators["order"])
        loss = torch.zeros(())
        for i in range(data.steps_per_epoch):
            idx = order[i * data.batch : (i + 1) * data.batch]
            x = augment(data.split.train_images[idx], recipe, self.generators["augment"])
            logits = self.model((x.float() - data.mean) / data.std)
            loss = F.cross_entropy(logits, data.split.train_labels[idx], label_smoothing=recipe.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            bar.update(data.batch)
            if i % 20 == 0:
                bar.set_postfix(epoch=self.state.epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
        return float(loss.item())

    def validate(self) -> float:
        return evaluate(self.model, self.data.split.val_images, self.data.split.val_labels, self.data.mean, self.data.std)

    def snapshot(self) -> None:
        """Copy the live objects into the state, ready to save."""
        self.state.model = self.model.state_dict()
        self.state.optimizer = self.optimizer.state_dict()
        self.state.scheduler = self.scheduler.state_dict()
        self.state.rng = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in self.generators.items()}}

    def metrics(self, origin: str) -> dict[str, Any]:
        """The metrics JSON so far (``complete`` stays false until the outputs are written)."""
        state, data = self.state, self.data
        images = data.steps_per_epoch * data.batch * state.epoch
        return {
            "complete": False,
            "source": origin,
            "settings": state.settings,
            "train_images": data.train_count,
            "val_images": int(data.split.val_images.shape[0]),
            "epochs_done": state.epoch,
            "val_accuracies": list(state.val_accuracies),
            "val_accuracy": state.val_accuracies[-1] if state.val_accuracies else None,
            "cpu_seconds": round(state.cpu_seconds, 1),
            "wall_seconds": round(state.wall_seconds, 1),
            "train_seconds": round(state.train_seconds, 1),
            "train_images_per_second": round(images / state.train_seconds, 1) if state.train_seconds else None,
            "resumed_after_epochs": list(state.resumed_after),
            "input_normalization": {"scale": "0..255", "mean": data.mean.flatten().tolist(), "std": data.std.flatten().tolist()},
            "test_split_read": state.test_accuracy is not None,
            "test_accuracy": state.test_accuracy,
            "torch": torch.__version__,
        }

    def finish(self, out: Path, test: bool) -> dict[str, Any]:
        """Write checkpoint, config and ONNX, check the ONNX, evaluate the test split if asked;
        returns what this adds to the metrics."""
        model, data, resolution = self.model.eval(), self.data, self.recipe.resolution
        repghost.save_checkpoint(model, out / "model.pt")
        write_json_atomic(out / "config.json", model.config.to_dict())
        onnx_path = repghost.export_onnx(model, out / "model.onnx", resolution=resolution)
        sample = (data.split.val_images[:ONNX_CHECK_IMAGES].float() - data.mean) / data.std
        diff, version = onnx_max_diff(model, onnx_path, sample)
        if diff > ONNX_TOLERANCE:
            raise RuntimeError(f"{onnx_path}: ONNX Runtime logits differ from PyTorch's by {diff:.2e} (> {ONNX_TOLERANCE:g})")
        result: dict[str, Any] = {
            "complete": True,
            "checkpoint": "model.pt",
            "onnx": {"file": onnx_path.name, "resolution": resolution, "max_abs_logit_diff": diff,
                     "images_checked": int(sample.shape[0]), "tolerance": ONNX_TOLERANCE, "onnxruntime": version},
        }
        if test:
            images = resize(data.dataset.test_images, resolution)
            self.state.test_accuracy = evaluate(model, images, data.dataset.test_labels, data.mean, data.std)
            self.state.save(out)
        if self.state.test_accuracy is not None:
            result.update(test_split_read=True, test_accuracy=self.state.test_accuracy,
                          test_images=int(data.dataset.test_labels.shape[0]))
        return result


def train(
    config: NetConfig,
    recipe: Recipe,
    *,
    data: str,
    out: Path,
    origin: str = "",
    seed: int = 0,
    split_seed: int = 0,
    threads: int = DEFAULT_THREADS,
    test: bool = False,
    after_checkpoint: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume training of) ``config`` with ``recipe``, write the outputs to ``out``
    and return the metrics.

    Args:
        config: the architecture (input channels and classes are set to fit the data).
        recipe: the training settings.
        data: data set name (see ``nas.data.load_dataset``).
        out: the run's folder; a run saved there resumes when its settings match.
        origin: where the architecture came from, as the metrics record it.
        seed: weight initialization, dropout, batch order and augmentation.
        split_seed: the search's seed, which drew its validation split.
        threads: torch threads (a setting of the result: a run resumes only with the same).
        test: also evaluate the data set's test split, and record that it was read.
        after_checkpoint: called with the epoch number once that epoch's checkpoint is on disk.
    """
    settings = run_settings(config, recipe, data, seed, split_seed, threads)
    saved = TrainingState.load(out) if out.is_dir() else None
    if saved is not None:
        check_same_settings(saved.settings, settings, out)
    prepared = prepare(data, recipe, split_seed)
    if test and prepared.dataset.test_labels.shape[0] == 0:
        raise UserError(f"--test: {data} has no test split (for image folders: a test/ or val/ folder beside train/)")
    out.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            state = saved or TrainingState(settings, 0, {}, {}, {}, {}, [], 0.0, 0.0)
            run = Run(config, recipe, prepared, state, resume=saved is not None)
            if saved is not None and saved.epoch < recipe.epochs:
                state.resumed_after.append(saved.epoch)
            _epochs(run, out, origin, after_checkpoint)
            metrics = {**run.metrics(origin), **run.finish(out, test)}
    finally:
        torch.set_num_threads(previous_threads)
    write_json_atomic(out / METRICS_FILE, metrics)
    return metrics


def _epochs(run: Run, out: Path, origin: str, after_checkpoint: Callable[[int], None] | None) -> None:
    """The remaining epochs, each ended by validation and a checkpoint, under a progress bar."""
    state, recipe = run.state, run.recipe
    images_per_epoch = run.data.steps_per_epoch * run.data.batch
    bar = tqdm(total=images_per_epoch * recipe.epochs, initial=images_per_epoch * state.epoch, unit="img",
               unit_scale=True, desc=out.name, mininterval=1 if sys.stderr.isatty() else 60, dynamic_ncols=True)
    with bar:
        for epoch in range(state.epoch + 1, recipe.epochs + 1):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            loss = run.train_epoch(bar)
            state.train_seconds += time.perf_counter() - wall_start
            state.val_accuracies.append(run.validate())
            state.epoch = epoch
            state.cpu_seconds += time.process_time() - cpu_start
            state.wall_seconds += time.perf_counter() - wall_start
            run.snapshot()
            state.save(out)
            write_json_atomic(out / METRICS_FILE, run.metrics(origin))
            bar.write(f"epoch {epoch}/{recipe.epochs}: val accuracy {state.val_accuracies[-1]:.4f} "
                      f"(last loss {loss:.3f}, lr {run.optimizer.param_groups[0]['lr']:.3g})")
            if after_checkpoint is not None:
                after_checkpoint(epoch)


def finished_metrics(out: Path) -> dict[str, Any]:
    """The metrics of the finished ``python -m nas.train`` run in ``out``; a one-line error for
    a folder without them, or a run not finished."""
    try:
        metrics = json.loads((out / METRICS_FILE).read_text())
        settings = metrics["settings"]
        complete = bool(metrics["complete"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{out} holds no readable {METRICS_FILE}: name a python -m nas.train output folder") from None
    if not complete:
        raise UserError(f"{out} has not finished ({metrics.get('epochs_done')} epochs of its recipe's {settings['recipe']['epochs']}): "
                        "rerun its nas.train command to finish it first")
    return metrics


def accuracy_on_test_split(out: Path, metrics: dict[str, Any] | None = None) -> float:
    """Test-split accuracy of the finished run in ``out``, read from its ``model.pt`` with the data,
    input normalization and resolution its metrics record: for a run trained without ``test``, the
    figure ``train(..., test=True)`` would have recorded (tests/test_nas_train.py). The run's
    metrics (and its saved state, if kept) then record it, as if it had been read at the end.
    ``metrics``: the run's, when the caller has read them (``finished_metrics``)."""
    metrics = metrics or finished_metrics(out)
    settings, norm = metrics["settings"], metrics["input_normalization"]
    try:
        model = repghost.load_checkpoint(out / metrics.get("checkpoint", "model.pt"))
    except ValueError as error:
        raise UserError(str(error)) from None
    with user_input():
        dataset = load_dataset(settings["data"])
    shape = (1, -1, 1, 1)
    mean, std = torch.tensor(norm["mean"]).view(shape), torch.tensor(norm["std"]).view(shape)
    images = resize(dataset.test_images, settings["recipe"]["resolution"])
    accuracy = evaluate(model, images, dataset.test_labels, mean, std)
    state = TrainingState.load(out)
    if state is not None:  # a rerun of its nas.train command keeps the record
        state.test_accuracy = accuracy
        state.save(out)
    write_json_atomic(out / METRICS_FILE, {**metrics, "test_split_read": True, "test_accuracy": accuracy,
                                           "test_images": int(dataset.test_labels.shape[0])})
    return accuracy


def finished_run(run: Path, configs: dict[str, NetConfig], recipe: Recipe, *, data: str, split_seed: int, threads: int,
                 kind: str) -> tuple[str, dict[str, Any]]:
    """The finished ``python -m nas.train`` run in ``run`` as a ``kind`` run: which of ``configs``
    (by name) it trained, and its metrics. Refused, in one line naming what differs, unless it
    trained one of them with exactly ``recipe``, ``data``, ``split_seed`` and ``threads``."""
    metrics = finished_metrics(run)
    settings = metrics["settings"]
    names = {json.dumps(config.to_dict(), sort_keys=True): name for name, config in configs.items()}
    name = names.get(json.dumps(settings["architecture"], sort_keys=True))
    if name is None:
        raise UserError(f"{run} trained none of the architectures a {kind} run may have ({', '.join(configs)})")
    expected = json.loads(json.dumps(run_settings(configs[name], recipe, data, settings["seed"], split_seed, threads)))  # as stored
    differing = sorted(key for key in expected if settings.get(key) != expected[key])
    if differing:
        raise UserError(f"{run} differs from a {kind} run of {name} in {', '.join(differing)}: it cannot stand for one")
    return name, metrics
