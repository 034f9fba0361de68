"""Image classification data for proxy training, held in memory as uint8 tensors.

Data sets by name (``load_dataset``):
- ``fashion-mnist`` (default): the four IDX files, read from Debian's ``dataset-fashion-mnist``
  folder, else from the cache folder, else downloaded there (checked by sha256).
- ``cifar10`` or ``cifar10:PATH``: the python-pickle batches folder (``cifar-10-batches-py``).
- ``imagefolder:PATH``: ``PATH/<class>/<image>`` (or ``PATH/train/<class>/...``); needs Pillow.
- ``synthetic``: small, seeded, learnable patterns for tests.

The proxy trains and validates on a seeded split of the *training* set only (``split``); the
test set is loaded but never used by the search.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .idx import read_bytes, parse_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
# sha256 of each file's *decompressed* IDX content. Computed from Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1, whose .gz files are the upstream ones with
# the stored file name stripped (each is smaller than upstream by exactly that name's length),
# so the deflate stream and CRC are upstream's; the gzip headers differ, hence no .gz checksums.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Dataset:
    """A whole data set in memory: images ``uint8 [N, C, H, W]``, labels ``int64 [N]``."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            images, labels = getattr(self, f"{part}_images"), getattr(self, f"{part}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(f"{self.name}: {part}_images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
            if labels.shape != (images.shape[0],):
                raise ValueError(f"{self.name}: {part}_labels must hold one label per image")

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Split:
    """The proxy's training and validation images, both drawn from the training set."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    train_indices: torch.Tensor
    val_indices: torch.Tensor
    num_classes: int

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])


def data_root() -> Path:
    """Where data sets are cached: ``$REPGHOST_NAS_DATA``, else ``~/.cache/repghost-nas``."""
    env = os.environ.get("REPGHOST_NAS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "repghost-nas"


def load_dataset(spec: str = "fashion-mnist", *, download: bool = True) -> Dataset:
    """Load a data set by name: ``fashion-mnist``, ``cifar10[:PATH]``, ``imagefolder:PATH`` or
    ``synthetic``. ``download`` allows fetching Fashion-MNIST into the cache when it is missing."""
    if not isinstance(spec, str):
        raise ValueError(f"data must be a string, got {spec!r}")
    name, _, path = spec.partition(":")
    if name == "fashion-mnist" and not path:
        return load_fashion_mnist(download=download)
    if name == "cifar10":
        return load_cifar10(Path(path) if path else data_root() / "cifar-10-batches-py")
    if name == "imagefolder" and path:
        return load_imagefolder(Path(path))
    if name == "synthetic" and not path:
        return synthetic_dataset()
    raise ValueError(
        f"unknown data {spec!r}; use fashion-mnist, cifar10, cifar10:PATH, imagefolder:PATH or synthetic"
    )


# Fashion-MNIST -----------------------------------------------------------------------------


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def fashion_mnist_folders() -> list[Path]:
    """Folders searched for the four files, in order."""
    return [DEBIAN_FASHION_MNIST, data_root() / "fashion-mnist"]


def load_fashion_mnist(
    folders: Sequence[Path] | None = None, *, cache: Path | None = None, download: bool = True
) -> Dataset:
    """Fashion-MNIST from the first folder holding all four IDX files; else downloaded into
    ``cache`` (default: the last folder searched) when ``download`` is true."""
    folders = [Path(f) for f in (folders if folders is not None else fashion_mnist_folders())]
    cache = Path(cache) if cache is not None else (folders[-1] if folders else data_root() / "fashion-mnist")
    for folder in folders:
        paths = {stem: _find_idx(folder, stem) for stem in FASHION_MNIST_FILES}
        if all(paths.values()):
            return _fashion_mnist_from(paths)
    searched = ", ".join(str(f) for f in folders)
    if not download:
        raise ValueError(
            f"Fashion-MNIST not found in {searched}: install it with "
            f"`apt-get install dataset-fashion-mnist`, or allow the download into {cache} (needs a network)"
        )
    download_fashion_mnist(cache)
    return _fashion_mnist_from({stem: cache / (stem + ".gz") for stem in FASHION_MNIST_FILES})


def _fashion_mnist_from(paths: dict[str, Path]) -> Dataset:
    arrays = {stem: parse_idx(read_bytes(path), str(path)) for stem, path in paths.items()}
    expected = {
        "train-images-idx3-ubyte": (60000, 28, 28),
        "train-labels-idx1-ubyte": (60000,),
        "t10k-images-idx3-ubyte": (10000, 28, 28),
        "t10k-labels-idx1-ubyte": (10000,),
    }
    for stem, shape in expected.items():
        if arrays[stem].shape != shape or arrays[stem].dtype != np.uint8:
            raise ValueError(f"{paths[stem]}: expected uint8 {shape}, got {arrays[stem].dtype} {arrays[stem].shape}")
    images = {k: torch.from_numpy(v).unsqueeze(1) for k, v in arrays.items() if "images" in k}
    return Dataset(
        name="fashion-mnist",
        train_images=images["train-images-idx3-ubyte"],
        train_labels=torch.from_numpy(arrays["train-labels-idx1-ubyte"]).long(),
        test_images=images["t10k-images-idx3-ubyte"],
        test_labels=torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long(),
        classes=FASHION_MNIST_CLASSES,
    )


def download_fashion_mnist(cache: Path, mirrors: Sequence[str] = FASHION_MNIST_MIRRORS) -> None:
    """Fetch the four ``.gz`` files into ``cache``; each is checked (sha256 of its content) in a
    temporary file before it is moved into place, so a failed download leaves nothing behind."""
    cache.mkdir(parents=True, exist_ok=True)
    for stem, sha256 in FASHION_MNIST_FILES.items():
        target = cache / (stem + ".gz")
        if target.is_file():
            continue
        errors = []
        for mirror in mirrors:
            try:
                _fetch_checked(mirror + stem + ".gz", target, sha256)
                break
            except (OSError, ValueError) as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise ValueError(
                f"could not download {stem}.gz into {cache} ({'; '.join(errors)}); install "
                f"`apt-get install dataset-fashion-mnist` or copy the four files there"
            )


def _fetch_checked(url: str, target: Path, sha256: str) -> None:
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp_path, "wb") as out:
            out.write(response.read())
        digest = hashlib.sha256(read_bytes(tmp_path)).hexdigest()
        if digest != sha256:
            raise ValueError(f"checksum mismatch (sha256 of content {digest}, expected {sha256})")
        tmp_path.replace(target)
    finally:
        tmp_path.unlink(missing_ok=True)


# CIFAR-10 and image folders ----------------------------------------------------------------


def load_cifar10(folder: Path) -> Dataset:
    """CIFAR-10 from its python-pickle batches folder."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names + ["batches.meta"] if not (folder / n).is_file()]
    if missing:
        raise ValueError(
            f"CIFAR-10 not found in {folder} (missing {', '.join(missing)}): download "
            f"cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
            f"into {folder.parent}, or pass cifar10:PATH"
        )

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as handle:
            entry = pickle.load(handle, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data, np.asarray(entry[b"labels"], dtype=np.int64)

    train = [batch(n) for n in names[:5]]
    test_x, test_y = batch("test_batch")
    with open(folder / "batches.meta", "rb") as handle:
        classes = tuple(c.decode() for c in pickle.load(handle, encoding="bytes")[b"label_names"])
    return Dataset(
        name="cifar10",
        train_images=torch.from_numpy(np.concatenate([x for x, _ in train])),
        train_labels=torch.from_numpy(np.concatenate([y for _, y in train])),
        test_images=torch.from_numpy(test_x),
        test_labels=torch.from_numpy(test_y),
        classes=classes,
    )


def load_imagefolder(root: Path, size: int | None = None) -> Dataset:
    """Images in ``root/<class>/`` (or ``root/train/<class>/`` with an optional ``root/val`` or
    ``root/test`` beside it), converted to RGB and resized to ``size`` (default: the first
    image's smaller side, capped at 64) so they stack into one tensor."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise ValueError("imagefolder data needs Pillow: pip install pillow") from None
    if not root.is_dir():
        raise ValueError(f"imagefolder: {root} is not a folder; expected {root}/<class>/<image files>")
    train_root = root / "train" if (root / "train").is_dir() else root
    test_root = next((root / n for n in ("val", "test") if (root / n).is_dir() and train_root != root), None)
    classes = tuple(sorted(d.name for d in train_root.iterdir() if d.is_dir()))
    if len(classes) < 2:
        raise ValueError(f"imagefolder: {train_root} needs at least two class subfolders, found {len(classes)}")

    def read(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal size
        images, labels = [], []
        for label, name in enumerate(classes):
            for file in sorted((folder / name).glob("*")) if (folder / name).is_dir() else []:
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                with Image.open(file) as img:
                    img = img.convert("RGB")
                    if size is None:
                        size = min(64, *img.size)
                    img = img.resize((size, size), Image.BILINEAR)
                    images.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
                labels.append(label)
        if not images:
            return torch.zeros((0, 3, size or 1, size or 1), dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
        return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long)

    train_x, train_y = read(train_root)
    if len(train_y) == 0:
        raise ValueError(f"imagefolder: no images ({', '.join(IMAGE_SUFFIXES)}) under {train_root}/<class>/")
    test_x, test_y = read(test_root) if test_root is not None else read(Path("/nonexistent"))
    return Dataset(f"imagefolder:{root}", train_x, train_y, test_x, test_y, classes)


# Synthetic ---------------------------------------------------------------------------------


def synthetic_dataset(
    *, num_classes: int = 10, train: int = 6000, test: int = 1000, size: int = 28, seed: int = 0
) -> Dataset:
    """Learnable, seeded images, enough for either proxy preset's split: each class is a fixed
    smooth pattern; each sample is its class pattern, randomly shifted by up to 2 pixels and
    scaled in contrast, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 1, 4, 4, generator=gen)
    patterns = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, num_classes, (count,), generator=gen)
        images = patterns[labels]
        shifts = torch.randint(-2, 3, (count, 2), generator=gen)
        images = torch.stack([torch.roll(img, (int(dy), int(dx)), dims=(1, 2)) for img, (dy, dx) in zip(images, shifts)])
        contrast = 0.6 + 0.8 * torch.rand(count, 1, 1, 1, generator=gen)
        noise = 0.25 * torch.randn(count, 1, size, size, generator=gen)
        images = ((images - 0.5) * contrast + 0.5 + noise).clamp(0, 1)
        return (images * 255).round().to(torch.uint8), labels

    train_x, train_y = draw(train)
    test_x, test_y = draw(test)
    classes = tuple(f"pattern{i}" for i in range(num_classes))
    return Dataset("synthetic", train_x, train_y, test_x, test_y, classes)


# Split -------------------------------------------------------------------------------------


def split(dataset: Dataset, *, train_size: int, val_size: int, seed: int = 0, resolution: int | None = None) -> Split:
    """A seeded, disjoint train/validation split of the *training* images, resized once to
    ``resolution`` (bilinear, kept as uint8) when it differs from the stored size."""
    available = int(dataset.train_labels.shape[0])
    for name, value in (("train_size", train_size), ("val_size", val_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if train_size + val_size > available:
        raise ValueError(
            f"train_size + val_size = {train_size + val_size} exceeds the {available} training images of {dataset.name}"
        )
    order = torch.randperm(available, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size : val_size + train_size]
    return Split(
        train_images=resize(dataset.train_images[train_idx], resolution),
        train_labels=dataset.train_labels[train_idx].clone(),
        val_images=resize(dataset.train_images[val_idx], resolution),
        val_labels=dataset.train_labels[val_idx].clone(),
        train_indices=train_idx,
        val_indices=val_idx,
        num_classes=dataset.num_classes,
    )


def resize(images: torch.Tensor, resolution: int | None, chunk: int = 4096) -> torch.Tensor:
    """uint8 images resized to ``resolution`` square (bilinear, antialiased when shrinking)."""
    if resolution is None or tuple(images.shape[-2:]) == (resolution, resolution):
        return images.contiguous()
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an integer of at least 8, got {resolution!r}")
    out = torch.empty((images.shape[0], images.shape[1], resolution, resolution), dtype=torch.uint8)
    shrink = resolution < min(images.shape[-2:])
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(part, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrink)
        out[start : start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out
