"""``python -m nas.train``: outputs that rebuild and agree (PyTorch, checkpoint, ONNX Runtime),
a run killed with SIGKILL that resumes to exactly the uninterrupted result, the held-out split,
and one-line errors. Tiny network, synthetic data, 16 px: seconds per run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import repghost
from nas.data import DEBIAN_FASHION_MNIST, load_dataset, resize, split
from nas.proxy import DEFAULT, QUICK, evaluate, normalizer
from nas.recipes import Recipe, lr_factor, recipe_for
from nas.train import default_out, main, parse_args, resolve_source
from nas.errors import UserError
from nas.training import augment, held_out_split, accuracy_on_test_split

PROJECT = Path(__file__).resolve().parent.parent
STUDY = PROJECT / "results" / "budget-30ms-fashion-mnist"
TINY_ARCH = {
    "stem": 8,
    "blocks": [
        [{"kernel": 3, "mid": 16, "out": 8, "stride": 2}],
        [{"kernel": 3, "mid": 24, "out": 16, "se_ratio": 0.25, "stride": 2, "branch": "bn+identity"}],
    ],
    "final_conv": 32,
    "head": 64,
}
EPOCHS = 3
# A recipe that exercises every part (warm-up, cosine, crop and flip) on the tiny network.
TINY = ["--data", "synthetic", "--epochs", str(EPOCHS), "--resolution", "16", "--batch-size", "64",
        "--augment", "flip+crop", "--threads", "1"]

# Run in a child process: stop after epoch 2's checkpoint, say so, and wait to be killed.
KILLED_CHILD = """
import sys
from nas.train import main

def stop(epoch):
    if epoch == 2:
        print("checkpointed", epoch, flush=True)
        sys.stdin.read()

raise SystemExit(main(sys.argv[1:], after_checkpoint=stop))
"""


@pytest.fixture(scope="module")
def arch_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "tiny.json"
    path.write_text(json.dumps(TINY_ARCH))
    return path


@pytest.fixture(scope="module")
def finished(arch_file, tmp_path_factory) -> Path:
    """An uninterrupted run's folder."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert main([str(arch_file), *TINY, "--out", str(out)]) == 0
    return out


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def val_images(resolution: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The run's validation images and labels, and its input normalization."""
    data, _ = held_out_split("synthetic", resolution, 0)
    mean, std = normalizer(data.train_images)
    return data.val_images, data.val_labels, mean, std


def test_outputs_exist_and_the_checkpoint_rebuilds_on_its_own(finished):
    for name in ("model.pt", "config.json", "model.onnx", "metrics.json", "resume.pt"):
        assert (finished / name).is_file(), name
    m = metrics(finished)
    assert m["complete"] and m["epochs_done"] == EPOCHS and len(m["val_accuracies"]) == EPOCHS
    assert m["settings"]["seed"] == 0 and m["settings"]["recipe"]["epochs"] == EPOCHS
    assert m["cpu_seconds"] > 0 and m["train_images"] == 4000 and m["val_images"] == DEFAULT.val_size
    model = repghost.load_checkpoint(finished / "model.pt").eval()  # no config given: the file carries it
    assert model.config == repghost.NetConfig.from_dict(json.loads((finished / "config.json").read_text()))
    assert (model.config.in_chans, model.config.num_classes) == (1, 10)
    images, labels, mean, std = val_images()
    assert evaluate(model, images, labels, mean, std) == m["val_accuracy"]
    # The official key layout: a model built from the config by hand loads the file too.
    again = repghost.load_checkpoint(finished / "model.pt", repghost.build(model.config)).eval()
    x = (images[:8].float() - mean) / std
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_onnx_agrees_with_pytorch(finished):
    m = metrics(finished)
    assert m["onnx"]["max_abs_logit_diff"] <= 1e-4 and m["onnx"]["resolution"] == 16
    model = repghost.load_checkpoint(finished / "model.pt").eval()
    images, _, mean, std = val_images()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(finished / "model.onnx"), options, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 1, 16, 16]
    worst = 0.0
    with torch.no_grad():
        for image in images[-20:]:  # other images than the run checked
            x = (image.unsqueeze(0).float() - mean) / std
            worst = max(worst, float(np.abs(model(x).numpy() - session.run(None, {"input": x.numpy()})[0]).max()))
    assert worst <= 1e-4


def test_a_killed_run_resumes_to_the_uninterrupted_result(arch_file, finished, tmp_path):
    out = tmp_path / "killed"
    args = [str(arch_file), *TINY, "--out", str(out)]
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, *args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = iter(child.stdout.readline, "")
        assert any(line.split() == ["checkpointed", "2"] for line in lines)  # epoch lines come first
    finally:
        child.kill()  # SIGKILL: no cleanup, no flush
        child.wait(timeout=60)
    assert child.returncode == -9
    partial = metrics(out)
    assert partial["epochs_done"] == 2 and not partial["complete"] and not (out / "model.pt").exists()

    assert main(args) == 0
    resumed, whole = metrics(out), metrics(finished)
    assert resumed["resumed_after_epochs"] == [2]
    assert resumed["val_accuracies"] == whole["val_accuracies"]
    mine = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    theirs = torch.load(finished / "model.pt", weights_only=True)["state_dict"]
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_test_split_is_read_only_when_asked_and_recorded(arch_file, finished, tmp_path):
    assert metrics(finished)["test_split_read"] is False and metrics(finished)["test_accuracy"] is None
    out = tmp_path / "with-test"
    shutil.copytree(finished, out)  # a finished run asked again, now with --test: no training
    assert main([str(arch_file), *TINY, "--out", str(out), "--test"]) == 0
    m = metrics(out)
    assert m["test_split_read"] is True and m["test_images"] == 1000 and 0 <= m["test_accuracy"] <= 1
    assert m["val_accuracies"] == metrics(finished)["val_accuracies"] and m["resumed_after_epochs"] == []
    assert main([str(arch_file), *TINY, "--out", str(out)]) == 0  # asked again without --test: still recorded
    assert metrics(out)["test_split_read"] is True and metrics(out)["test_accuracy"] == m["test_accuracy"]
    model = repghost.load_checkpoint(out / "model.pt")
    dataset = load_dataset("synthetic")
    _, _, mean, std = val_images()
    assert evaluate(model, resize(dataset.test_images, 16), dataset.test_labels, mean, std) == m["test_accuracy"]


def test_a_finished_runs_saved_model_reads_the_test_split_as_training_would(arch_file, finished, tmp_path):
    """A run trained without --test, read on the test split later from its model.pt, gives the
    figure --test records at the end of training, and its metrics then say it was read: as a
    commit keeps it (no resume state), and with its state, through a rerun without --test."""
    asked = tmp_path / "asked"
    shutil.copytree(finished, asked)
    assert main([str(arch_file), *TINY, "--out", str(asked), "--test"]) == 0
    read = {key: metrics(asked)[key] for key in ("test_split_read", "test_accuracy", "test_images")}
    kept = tmp_path / "kept"
    shutil.copytree(finished, kept, ignore=shutil.ignore_patterns("resume.pt"))
    assert accuracy_on_test_split(kept) == read["test_accuracy"]
    assert metrics(kept) == {**metrics(finished), **read}
    whole = tmp_path / "whole"
    shutil.copytree(finished, whole)
    assert accuracy_on_test_split(whole) == read["test_accuracy"]
    assert main([str(arch_file), *TINY, "--out", str(whole)]) == 0
    assert {key: metrics(whole)[key] for key in read} == read
    with pytest.raises(UserError, match="no readable metrics.json"):
        accuracy_on_test_split(tmp_path)
    (kept / "metrics.json").write_text(json.dumps({**metrics(kept), "complete": False}))
    with pytest.raises(UserError, match="has not finished"):
        accuracy_on_test_split(kept)


def test_a_study_folder_trains_its_best(tmp_path):
    study = tmp_path / "budget-1ms-synthetic"
    study.mkdir()
    (study / "best.json").write_text(json.dumps({"trial": 3, "architecture": TINY_ARCH, "seed": 4}))
    out = tmp_path / "run"
    assert main([str(study), *TINY, "--epochs", "1", "--out", str(out)]) == 0
    m = metrics(out)
    assert m["source"] == str(study / "best.json") and m["settings"]["split_seed"] == 4


def test_the_committed_study_and_paper_models_resolve():
    best = json.loads((STUDY / "best.json").read_text())
    assert resolve_source(parse_args([str(STUDY)])).config == repghost.NetConfig.from_dict(best["architecture"])
    assert resolve_source(parse_args(["--width", "0.5"])).config == repghost.repghostnet_config(0.5)
    assert resolve_source(parse_args(["--family", "ghostnet", "--width", "1.0"])).config == repghost.ghostnet_config(1.0)


def test_default_output_folders_name_the_data_set_once():
    study = resolve_source(parse_args([str(STUDY)]))
    assert default_out(study, "fashion-mnist", 2) == Path("results/train/budget-30ms-fashion-mnist-seed2")
    assert default_out(resolve_source(parse_args(["--width", "0.5"])), "fashion-mnist", 0) == Path("results/train/repghostnet-0.5x-fashion-mnist-seed0")


def test_training_holds_out_exactly_the_searchs_validation_split():
    data, dataset = held_out_split("synthetic", 16, 7)
    search = split(dataset, train_size=DEFAULT.train_size, val_size=DEFAULT.val_size, seed=7)
    quick = split(dataset, train_size=QUICK.train_size, val_size=QUICK.val_size, seed=7)
    val = set(data.val_indices.tolist())
    assert val == set(search.val_indices.tolist()) and set(quick.val_indices.tolist()) <= val
    train = set(data.train_indices.tolist())
    assert not train & val and len(train | val) == dataset.train_labels.shape[0]


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_holds_out_the_searchs_validation_split():
    data, dataset = held_out_split("fashion-mnist", 32, 0)
    search = split(dataset, train_size=DEFAULT.train_size, val_size=DEFAULT.val_size, seed=0, resolution=32)
    assert torch.equal(data.val_indices, search.val_indices) and torch.equal(data.val_images, search.val_images)
    assert data.train_images.shape == (58000, 1, 32, 32)
    assert recipe_for("fashion-mnist").augment == "flip+crop"


def test_augmentation_crops_and_flips_the_padded_image():
    images = torch.randint(0, 256, (32, 1, 10, 10), dtype=torch.uint8)
    recipe = Recipe(augment="flip+crop", crop_padding=2)
    out = augment(images, recipe, torch.Generator().manual_seed(0))
    assert torch.equal(out, augment(images, recipe, torch.Generator().manual_seed(0)))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for original, got in zip(padded, out):
        windows = [original[:, dy : dy + 10, dx : dx + 10] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(got, w) or torch.equal(got, w.flip(2)) for w in windows)
    assert not torch.equal(out, images)
    assert augment(images, Recipe(augment="none"), torch.Generator()) is images


def test_schedule_warms_up_then_decays_to_zero():
    assert lr_factor(0, warmup_steps=10, total_steps=100) == pytest.approx(0.1)
    assert lr_factor(10, warmup_steps=10, total_steps=100) == pytest.approx(1.0)
    assert lr_factor(55, warmup_steps=10, total_steps=100) == pytest.approx(0.5)
    assert lr_factor(100, warmup_steps=10, total_steps=100) == pytest.approx(0.0)


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line(capsys, arch_file, finished, tmp_path):
    assert "does not exist" in one_line_error(capsys, [str(tmp_path / "nope.json"), *TINY])
    (tmp_path / "broken.json").write_text("{not json")
    assert "not a readable JSON" in one_line_error(capsys, [str(tmp_path / "broken.json"), *TINY])
    (tmp_path / "other.json").write_text(json.dumps({"stem": 8}))
    assert "no valid network config" in one_line_error(capsys, [str(tmp_path / "other.json"), *TINY])
    (tmp_path / "empty-study").mkdir()
    assert "no best.json" in one_line_error(capsys, [str(tmp_path / "empty-study"), *TINY])
    (tmp_path / "empty-study" / "best.json").write_text(json.dumps({"architecture": None}))
    assert "no feasible trial" in one_line_error(capsys, [str(tmp_path / "empty-study"), *TINY])
    missing = one_line_error(capsys, [str(arch_file), *TINY, "--data", f"cifar10:{tmp_path / 'nodata'}", "--out", str(tmp_path / "o")])
    assert "CIFAR-10 not found" in missing
    assert "epochs must be a positive integer, got 0" in one_line_error(capsys, [str(arch_file), *TINY, "--epochs", "0"])
    assert "width must be one of" in one_line_error(capsys, ["--width", "0.7"])
    assert "nothing to train" in one_line_error(capsys, [])


def test_resuming_under_other_settings_is_refused(capsys, arch_file, finished):
    err = one_line_error(capsys, [str(arch_file), *TINY, "--out", str(finished), "--epochs", "5", "--seed", "1"])
    assert "other settings" in err and "seed 1 here, 0 there" in err and "recipe (epochs)" in err
    # Another thread count sums in another order: not the same run either.
    assert "threads 2 here, 1 there" in one_line_error(capsys, [str(arch_file), *TINY, "--out", str(finished), "--threads", "2"])
    assert metrics(finished)["complete"]  # nothing was lost
