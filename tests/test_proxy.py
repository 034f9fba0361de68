"""Proxy training on real (tiny) networks and synthetic data: learning, determinism, callbacks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import repghost
from nas import data as nas_data
from nas.data import split, synthetic_dataset
from nas.proxy import DEFAULT, PRESETS, QUICK, ProxyConfig, build_for, lr_at, train_proxy
from repghost import BlockConfig, NetConfig

TINY = NetConfig(
    stem=8,
    blocks=((BlockConfig(3, 16, 16, stride=2),), (BlockConfig(3, 32, 24, stride=2, se_ratio=0.25),)),
    final_conv=32,
    head=64,
    dropout=0.2,
)
RECIPE = ProxyConfig(data="synthetic", train_size=800, val_size=300, resolution=28, epochs=3, batch_size=32, threads=1)


@pytest.fixture(scope="module")
def data():
    return split(synthetic_dataset(), train_size=RECIPE.train_size, val_size=RECIPE.val_size, resolution=28)


@pytest.fixture(scope="module")
def first_run(data):
    return train_proxy(TINY, RECIPE, data=data)


def test_accuracy_rises_above_chance(first_run) -> None:
    accs = first_run.val_accuracies
    assert len(accs) == 3 and accs[-1] == first_run.accuracy
    assert first_run.accuracy > 0.3  # ten classes: chance is 0.1
    assert accs[-1] > accs[0]
    assert first_run.train_seconds > 0 and first_run.images_per_second > 0


def test_same_seed_same_accuracies(data, first_run) -> None:
    assert train_proxy(TINY, RECIPE, data=data).val_accuracies == first_run.val_accuracies
    other = train_proxy(TINY, dataclasses.replace(RECIPE, seed=1, epochs=1), data=data)
    assert other.val_accuracies[0] != first_run.val_accuracies[0]


def test_leaves_global_state_alone(data) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train_proxy(TINY, dataclasses.replace(RECIPE, epochs=1, train_size=64), data=data)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_report_is_called_per_epoch_and_its_exception_propagates(data) -> None:
    seen: list[tuple[int, float]] = []

    class Pruned(Exception):
        pass

    def report(epoch: int, accuracy: float) -> None:
        seen.append((epoch, accuracy))
        if epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        train_proxy(TINY, RECIPE, report, data=data)
    assert [e for e, _ in seen] == [1, 2]
    assert all(0.0 <= a <= 1.0 for _, a in seen)


def test_network_is_the_architecture_with_only_input_and_classes_adapted(data) -> None:
    model = build_for(repghost.repghostnet_config(0.5), data)
    assert model.config == dataclasses.replace(repghost.repghostnet_config(0.5), in_chans=1, num_classes=10)
    assert model.config.dropout == 0.2 and model.training
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_proxy_id_tracks_the_recipe_not_the_threads() -> None:
    assert ProxyConfig().proxy_id() == DEFAULT.proxy_id() == ProxyConfig(threads=1).proxy_id()
    assert len({p.proxy_id() for p in PRESETS.values()}) == len(PRESETS)
    assert ProxyConfig(lr=0.05).proxy_id() != DEFAULT.proxy_id()
    assert ProxyConfig(seed=1).proxy_id() != DEFAULT.proxy_id()
    int(DEFAULT.proxy_id(), 16)
    assert ProxyConfig.from_dict(QUICK.to_dict()) == QUICK
    with pytest.raises(ValueError, match="unknown proxy settings \\['epoch'\\]"):
        ProxyConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "epochs must be a positive integer"),
        ("batch_size", 1, "batch_size must be at least 2"),
        ("optimizer", "rmsprop", "optimizer must be one of"),
        ("schedule", "step", "schedule must be one of"),
        ("lr", "1e-3", "lr must be a number"),
        ("label_smoothing", 1.0, "label_smoothing must be a number in"),
        ("seed", -1, "seed must be a non-negative integer"),
        ("resolution", 4, "resolution must be at least 8"),
        ("data", "", "data must be a data set name"),
    ],
)
def test_bad_recipe_is_a_clear_error(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProxyConfig(**{field: value})


def test_learning_rate_schedule() -> None:
    recipe = ProxyConfig(lr=0.1, warmup_steps=10)
    assert lr_at(0, 100, recipe) == pytest.approx(0.01)
    assert lr_at(10, 100, recipe) == pytest.approx(0.1)
    assert lr_at(99, 100, recipe) < 0.001
    assert lr_at(50, 100, dataclasses.replace(recipe, schedule="constant")) == 0.1


@pytest.mark.skipif(not (nas_data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_quick_preset_on_fashion_mnist_learns() -> None:
    # One thread: with other processes on the cores, two threads each run several times slower.
    result = train_proxy(repghost.repghostnet_config(0.5), dataclasses.replace(QUICK, threads=1))
    assert len(result.val_accuracies) == QUICK.epochs
    assert result.accuracy > 0.3
