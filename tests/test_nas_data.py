"""Data for proxy training: IDX reading, data set loading, the checked download and the split."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nas import data as nas_data
from nas.data import Dataset, load_dataset, load_fashion_mnist, resize, split, synthetic_dataset
from nas.idx import parse_idx, read_idx

DEBIAN = nas_data.DEBIAN_FASHION_MNIST
needs_debian = pytest.mark.skipif(
    not all((DEBIAN / f"{stem}.gz").is_file() for stem in nas_data.FASHION_MNIST_FILES),
    reason="Debian's dataset-fashion-mnist is not installed",
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(dtype).tobytes()


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("type_code", [0x08, 0x0B, 0x0D])
def test_idx_round_trip(tmp_path: Path, compressed: bool, type_code: int) -> None:
    array = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 7 - 20) % 250
    payload = idx_bytes(array, type_code)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(payload) if compressed else payload)
    tensor = read_idx(path)
    assert tensor.shape == (2, 3, 5)
    np.testing.assert_array_equal(tensor.numpy(), array.astype(tensor.numpy().dtype))


def test_idx_errors(tmp_path: Path) -> None:
    good = idx_bytes(np.zeros((4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="bad magic"):
        parse_idx(b"\x01\x00" + good[2:])
    with pytest.raises(ValueError, match="unknown IDX type"):
        parse_idx(b"\x00\x00\x07" + good[3:])
    with pytest.raises(ValueError, match="truncated IDX file"):
        parse_idx(good[:-1])
    with pytest.raises(ValueError, match="oversized IDX file"):
        parse_idx(good + b"\x00")
    with pytest.raises(ValueError, match="truncated IDX header"):
        parse_idx(good[:6])
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(ValueError, match="truncated gzip"):
        read_idx(path)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist([tmp_path / "a", tmp_path / "b"], download=False)
    assert str(tmp_path / "b") in str(info.value) and "\n" not in str(info.value)


def test_missing_cifar_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz"):
        load_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(ValueError, match="not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'none'}")
    with pytest.raises(ValueError, match="unknown data 'mnist'.*fashion-mnist"):
        load_dataset("mnist")


@needs_debian
def test_fashion_mnist_found_in_a_later_folder(tmp_path: Path) -> None:
    second = tmp_path / "second"
    second.mkdir()
    for stem in nas_data.FASHION_MNIST_FILES:  # raw (decompressed) copies: the other accepted form
        (second / stem).write_bytes(gzip.decompress((DEBIAN / f"{stem}.gz").read_bytes()))
    ds = load_fashion_mnist([tmp_path / "empty", second], download=False)
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.test_images.shape == (10000, 1, 28, 28)
    assert ds.train_images.dtype == torch.uint8 and ds.num_classes == 10
    assert sorted(ds.train_labels.unique().tolist()) == list(range(10))


@needs_debian
def test_checked_download_from_a_mirror(tmp_path: Path) -> None:
    """The download path end to end, with Debian's folder as a file:// mirror (no network)."""
    cache = tmp_path / "cache"
    nas_data.download_fashion_mnist(cache, mirrors=[DEBIAN.as_uri() + "/"])
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in nas_data.FASHION_MNIST_FILES)
    ds = load_fashion_mnist([tmp_path / "nothing", cache], download=False)
    assert ds.train_images.shape[0] == 60000 and ds.test_labels.shape == (10000,)


def test_download_rejects_a_wrong_checksum_and_leaves_nothing(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for stem in nas_data.FASHION_MNIST_FILES:
        (mirror / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), dtype=np.uint8))))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch.*apt-get install dataset-fashion-mnist"):
        nas_data.download_fashion_mnist(cache, mirrors=[mirror.as_uri() + "/"])
    assert list(cache.iterdir()) == []


def test_fetch_checked_accepts_the_right_content(tmp_path: Path) -> None:
    payload = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    source = tmp_path / "x.gz"
    source.write_bytes(gzip.compress(payload))
    target = tmp_path / "out" / "x.gz"
    target.parent.mkdir()
    nas_data._fetch_checked(source.as_uri(), target, hashlib.sha256(payload).hexdigest())
    assert read_idx(target).tolist() == np.arange(12).reshape(3, 4).tolist()
    assert [p.name for p in target.parent.iterdir()] == ["x.gz"]


def test_cifar10_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, count in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        entry = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, count))}
        (tmp_path / name).write_bytes(pickle.dumps(entry))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    ds = load_dataset(f"cifar10:{tmp_path}")
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (3, 3, 32, 32)
    assert ds.classes[3] == "c3" and ds.channels == 3


def test_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    for label, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (20 + i, 24), color).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ("cat", "dog") and ds.train_images.shape == (6, 3, 20, 20)
    assert ds.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.train_images[0, 0].float().mean() > 250 and ds.train_images[3, 2].float().mean() > 250


def test_synthetic_is_seeded() -> None:
    a, b, c = synthetic_dataset(seed=1), synthetic_dataset(seed=1), synthetic_dataset(seed=2)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.train_labels, b.train_labels)
    assert not torch.equal(a.train_images, c.train_images)


def marked_dataset() -> Dataset:
    """Training images hold their own index; test images are all 255 (never below 255 in train)."""
    n = 200
    train = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 8, 8).clone()
    test = torch.full((50, 1, 8, 8), 255, dtype=torch.uint8)
    return Dataset("marked", train, torch.arange(n) % 10, test, torch.zeros(50, dtype=torch.long), tuple("abcdefghij"))


def test_split_uses_the_training_set_only_and_is_seeded() -> None:
    ds = marked_dataset()
    s = split(ds, train_size=120, val_size=50, seed=3)
    train_ids, val_ids = s.train_images[:, 0, 0, 0].long(), s.val_images[:, 0, 0, 0].long()
    assert torch.equal(train_ids, s.train_indices) and torch.equal(val_ids, s.val_indices)
    assert set(train_ids.tolist()).isdisjoint(val_ids.tolist())
    assert max(train_ids.max(), val_ids.max()) < 200  # every image is a training image, none is a test image (255)
    assert torch.equal(s.train_labels, ds.train_labels[s.train_indices])
    again, other = split(ds, train_size=120, val_size=50, seed=3), split(ds, train_size=120, val_size=50, seed=4)
    assert torch.equal(again.val_indices, s.val_indices) and not torch.equal(other.val_indices, s.val_indices)
    with pytest.raises(ValueError, match="exceeds the 200 training images"):
        split(ds, train_size=160, val_size=50)


def test_split_resizes_once_as_uint8() -> None:
    s = split(synthetic_dataset(train=100, test=10), train_size=60, val_size=20, resolution=32)
    assert s.train_images.shape == (60, 1, 32, 32) and s.val_images.dtype == torch.uint8
    assert resize(s.train_images, 32).data_ptr() == s.train_images.data_ptr()
    with pytest.raises(ValueError, match="resolution must be"):
        resize(s.train_images, 4)
