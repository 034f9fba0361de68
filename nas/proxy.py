"""Proxy training: a short, seeded, CPU-friendly training run that scores an architecture.

The network is exactly what ``repghost.build`` makes of the config (train form, dropout kept);
only the input channels and the number of classes are adapted to the data. Images stay in
memory as uint8 and are normalized per batch; no DataLoader, no worker processes.

Default recipe (``DEFAULT``; ``benchmarks/README.md`` has the measurements behind it):
Fashion-MNIST, 3750 training + 2000 validation images drawn (seeded) from the training set,
resized once to 32x32; 2 epochs of batch 64 (116 steps); SGD, Nesterov momentum 0.9, lr 0.1
with 10 warm-up steps then cosine decay per step, weight decay 5e-5 on weights only, label
smoothing 0.1, no augmentation; batch-norm statistics recomputed from 256 training images
before each validation. ``QUICK``: 640 + 500 images, one epoch of batch 32 (20 steps).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F

import repghost
from repghost import NetConfig

from .data import Split, load_dataset, split

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant")
# Settings that change how fast a run goes but not what it computes; left out of proxy_id().
RUNTIME_FIELDS = ("threads",)
# One torch thread: with another job on the second core, two threads trained at a third of one
# thread's rate, and on a quiet machine gained nothing (benchmarks/threads_under_load.py).
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class ProxyConfig:
    """Every setting of a proxy training run.

    Attributes:
        data: data set name (see ``nas.data.load_dataset``).
        train_size: training images drawn from the training set.
        val_size: validation images drawn from the training set (disjoint from the above).
        resolution: square input size the images are resized to once, up front.
        epochs: passes over the ``train_size`` images.
        batch_size: images per step (the last partial batch of an epoch is dropped).
        optimizer: ``sgd`` (Nesterov momentum 0.9) or ``adamw``.
        lr: peak learning rate.
        weight_decay: on conv and linear weights only (not BN or biases).
        schedule: ``cosine`` (per step, after warm-up) or ``constant``.
        warmup_steps: linear warm-up steps from lr/10 to lr.
        label_smoothing: cross-entropy label smoothing.
        bn_recalibration: before each validation, batch-norm running statistics are recomputed
            from this many training images (0: keep the running averages). After a few dozen
            steps the running averages still lag the weights, which scores short runs near chance.
        seed: weight initialization, dropout and batch order.
        split_seed: which images form the train/validation split (fixed across training seeds,
            so the seed-to-seed spread measures training noise alone).
        threads: torch intra-op threads (default ``DEFAULT_THREADS``); not part of ``proxy_id``.
    """

    data: str = "fashion-mnist"
    train_size: int = 3750
    val_size: int = 2000
    resolution: int = 32
    epochs: int = 2
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-5
    schedule: str = "cosine"
    warmup_steps: int = 10
    label_smoothing: float = 0.1
    bn_recalibration: int = 256
    seed: int = 0
    split_seed: int = 0
    threads: int = DEFAULT_THREADS

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(f"data must be a data set name, got {self.data!r}")
        for name in ("train_size", "val_size", "resolution", "epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "bn_recalibration", "seed", "split_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.resolution < 8:
            raise ValueError(f"resolution must be at least 8, got {self.resolution}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (batch norm), got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        for name, upper in (("lr", math.inf), ("weight_decay", math.inf), ("label_smoothing", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < upper:
                raise ValueError(f"{name} must be a number in [0, {upper}), got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.lr == 0:
            raise ValueError("lr must be positive, got 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ProxyConfig":
        """Inverse of ``to_dict``; an unknown key is an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown proxy settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    def proxy_id(self) -> str:
        """A stable hash of every setting that changes the result (not ``threads``): results
        cached under (architecture id, proxy id) are valid exactly for this recipe."""
        settings = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT = ProxyConfig()
QUICK = ProxyConfig(train_size=640, val_size=500, epochs=1, batch_size=32, warmup_steps=3)
PRESETS = {"default": DEFAULT, "quick": QUICK}


@dataclass(frozen=True)
class ProxyResult:
    """What one proxy training measured.

    Attributes:
        val_accuracies: validation accuracy (0..1) after each epoch.
        accuracy: the final epoch's validation accuracy.
        train_seconds: wall time of the training steps (evaluation excluded).
        eval_seconds: wall time of the per-epoch validations (with batch-norm recalibration).
        images_per_second: training images processed per second of ``train_seconds``.
        proxy_id: ``ProxyConfig.proxy_id()`` of the recipe.
    """

    val_accuracies: tuple[float, ...]
    accuracy: float
    train_seconds: float
    eval_seconds: float
    images_per_second: float
    proxy_id: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@lru_cache(maxsize=4)
def prepared_split(data: str, train_size: int, val_size: int, split_seed: int, resolution: int) -> Split:
    """The split for these settings, loaded and resized once per process (a search trains
    dozens of networks on the same images)."""
    return split(load_dataset(data), train_size=train_size, val_size=val_size, seed=split_seed, resolution=resolution)


def split_for(proxy: ProxyConfig) -> Split:
    return prepared_split(proxy.data, proxy.train_size, proxy.val_size, proxy.split_seed, proxy.resolution)


def build_for(cfg: NetConfig, data: Split) -> torch.nn.Module:
    """The architecture in train form with its input channels and classes set for ``data``."""
    if not isinstance(cfg, NetConfig):
        raise ValueError(f"cfg must be a repghost NetConfig, got {type(cfg).__name__}")
    return repghost.build(dataclasses.replace(cfg, in_chans=data.channels, num_classes=data.num_classes))


def normalizer(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (on the 0..255 scale) of the training images."""
    flat = images.transpose(0, 1).reshape(images.shape[1], -1).float()
    mean, std = flat.mean(1), flat.std(1).clamp_min(1.0)
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(model: torch.nn.Module, proxy: ProxyConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, proxy.weight_decay)
    if proxy.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=proxy.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=proxy.lr)


def lr_at(step: int, total_steps: int, proxy: ProxyConfig) -> float:
    """Learning rate of step ``step`` (0-based) out of ``total_steps``."""
    warmup = min(proxy.warmup_steps, max(total_steps - 1, 0))
    if step < warmup:
        return proxy.lr * (0.1 + 0.9 * step / warmup)
    if proxy.schedule == "constant":
        return proxy.lr
    progress = (step - warmup) / max(total_steps - warmup, 1)
    return proxy.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def recalibrate_bn(model: torch.nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                   batch_size: int = 128) -> None:
    """Replace every batch norm's running statistics by their plain average over ``images``
    (forward passes in train mode, no gradients)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or images.shape[0] == 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the recalibration batches
    model.train()
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size]
            if chunk.shape[0] > 1:
                model((chunk.float() - mean) / std)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor,
             std: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy (0..1) of ``model`` in eval mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            x = (images[start : start + batch_size].float() - mean) / std
            correct += int((model(x).argmax(1) == labels[start : start + batch_size]).sum())
    return correct / max(int(images.shape[0]), 1)


def train_proxy(
    cfg: NetConfig,
    proxy: ProxyConfig = DEFAULT,
    report: Callable[[int, float], None] | None = None,
    *,
    data: Split | None = None,
) -> ProxyResult:
    """Train ``cfg`` with the proxy recipe and return its validation accuracy per epoch.

    Args:
        cfg: the architecture (its ``in_chans``/``num_classes`` are replaced to fit the data).
        proxy: the recipe.
        report: called as ``report(epoch, accuracy)`` after each epoch (epoch counts from 1),
            e.g. to feed an Optuna pruner; whatever it raises (``optuna.TrialPruned``)
            propagates.
        data: a ready split (default: the one ``proxy`` names, loaded once per process).

    Returns:
        A ``ProxyResult``. Same config, recipe and thread count give the same accuracies.
    """
    if not isinstance(proxy, ProxyConfig):
        raise ValueError(f"proxy must be a ProxyConfig, got {type(proxy).__name__}")
    data = data if data is not None else split_for(proxy)
    count = int(data.train_images.shape[0])
    batch = min(proxy.batch_size, count)
    if batch < 2:
        raise ValueError(f"the training split holds {count} image(s); batch norm needs at least 2")
    steps_per_epoch = count // batch
    total_steps = steps_per_epoch * proxy.epochs
    mean, std = normalizer(data.train_images)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(proxy.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(proxy.seed)
            model = build_for(cfg, data)
            optimizer = _optimizer(model, proxy)
            order_gen = torch.Generator().manual_seed(proxy.seed)
            accuracies: list[float] = []
            train_seconds = eval_seconds = 0.0
            step = 0
            for epoch in range(1, proxy.epochs + 1):
                model.train()
                order = torch.randperm(count, generator=order_gen)
                start_time = time.perf_counter()
                for i in range(steps_per_epoch):
                    idx = order[i * batch : (i + 1) * batch]
                    x = (data.train_images[idx].float() - mean) / std
                    lr = lr_at(step, total_steps, proxy)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    loss = F.cross_entropy(model(x), data.train_labels[idx], label_smoothing=proxy.label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                train_seconds += time.perf_counter() - start_time
                start_time = time.perf_counter()
                if proxy.bn_recalibration:
                    recalibrate_bn(model, data.train_images[order[: proxy.bn_recalibration]], mean, std)
                accuracies.append(evaluate(model, data.val_images, data.val_labels, mean, std))
                eval_seconds += time.perf_counter() - start_time
                if report is not None:
                    report(epoch, accuracies[-1])
    finally:
        torch.set_num_threads(previous_threads)
    return ProxyResult(
        val_accuracies=tuple(accuracies),
        accuracy=accuracies[-1],
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        images_per_second=total_steps * batch / max(train_seconds, 1e-9),
        proxy_id=proxy.proxy_id(),
    )
