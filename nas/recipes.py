"""Reference training recipes of ``python -m nas.train``: how a found architecture is trained
for real, one recipe per data set.

Every recipe trains on all training images except the search's validation split (the first
``nas.proxy.DEFAULT.val_size`` images of the seeded permutation that ``nas.data.split`` draws;
the quick preset's validation images are the first ones of the same permutation, so they are
held out too) and reports accuracy on that split after every epoch. The test split is read
only when asked for.

Fashion-MNIST (58 000 training images at 32x32, the proxy's resolution):
- SGD with Nesterov momentum 0.9, batch 128, peak lr 0.1 after one epoch of linear warm-up from
  lr/10, cosine decay per step to 0; weight decay 5e-5 on conv and linear weights only; label
  smoothing 0.1; the architecture's own dropout. The proxy's settings (benchmarks/README.md),
  with batch 128 instead of 64: 1.4x the images per second at one thread (RepGhostNet 0.5x,
  32x32: 349 against 251 img/s, median of 4 rounds, load 1.0-1.2), and a full epoch has steps
  to spare.
- Augmentation: random horizontal flip and a random crop after padding 2 pixels with zeros
  (the background): cheap (indexing on uint8 batches), and it measurably helps here:
  RepGhostNet 0.5x, 2 seeds per arm, final validation accuracy 0.9198 +- 0.0018 with it
  against 0.9093 +- 0.0004 without (+1.05 points; one-sided Welch t-test p = 0.033;
  ``benchmarks/augmentation_gain.py``, ``results/train/augmentation.csv``).
- 30 epochs. Why: one epoch of RepGhostNet 0.5x is 58 000 images, about 170 s at 349 img/s on
  one thread of this 2-core machine (about 3 minutes with validation, more when the other core
  is busy), so 30 epochs take 1.5 to 2 hours: a run that fits in an afternoon beside other
  work, while a cosine schedule that long has its last fifth of epochs at under a tenth of the
  peak learning rate. Whether the curve has flattened is measured, not assumed:
  ``benchmarks/train_plateau.py`` prints the gain of the last 20 % of epochs.

CIFAR-10 uses the same recipe with 4 pixels of crop padding (the usual setting for 32x32 colour
images). Other data (image folders, the synthetic set of the tests) trains without
augmentation: a flip can change what an unknown image shows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .proxy import ProxyConfig

AUGMENTATIONS = ("none", "crop", "flip+crop")
SHARED_WITH_PROXY = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "label_smoothing", "resolution")


@dataclass(frozen=True)
class Recipe:
    """Every setting that changes what a ``nas.train`` run computes (besides architecture,
    data and seed).

    Attributes:
        epochs: passes over the training images.
        batch_size: images per step (the last partial batch of an epoch is dropped).
        optimizer: ``sgd`` (Nesterov momentum 0.9) or ``adamw``.
        lr: peak learning rate.
        weight_decay: on conv and linear weights only (not batch norm or biases).
        warmup_epochs: linear warm-up from lr/10 to lr over this many epochs, then cosine decay
            to 0 per step.
        label_smoothing: cross-entropy label smoothing.
        augment: ``none``, ``crop`` or ``flip+crop`` (random horizontal flip).
        crop_padding: zero padding, in pixels, of the random crop.
        resolution: square input size the images are resized to once, up front.
    """

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-5
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    augment: str = "none"
    crop_padding: int = 2
    resolution: int = 32

    def __post_init__(self) -> None:
        # The settings a proxy run shares follow the proxy's rules (and messages).
        ProxyConfig(**{name: getattr(self, name) for name in SHARED_WITH_PROXY})
        for name in ("lr", "weight_decay", "label_smoothing"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("warmup_epochs", "crop_padding"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {list(AUGMENTATIONS)}, got {self.augment!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FASHION_MNIST = Recipe(augment="flip+crop", crop_padding=2)
CIFAR10 = Recipe(augment="flip+crop", crop_padding=4)
OTHER = Recipe()
RECIPES = {"fashion-mnist": FASHION_MNIST, "cifar10": CIFAR10}


def recipe_for(data: str) -> Recipe:
    """The reference recipe of a data set named as ``nas.data.load_dataset`` takes it."""
    return RECIPES.get(data.partition(":")[0], OTHER)


def lr_factor(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """Learning rate of step ``step`` (0-based) as a fraction of the peak: linear warm-up from
    0.1, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return 0.1 + 0.9 * step / warmup_steps
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
