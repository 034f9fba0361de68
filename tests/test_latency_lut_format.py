"""The LUT file format: one typed definition, read strictly by every path that reads a LUT,
written by one writer, and converted from the older format without changing a prediction.

Every reader (``load_lut`` and the space it belongs to, ``build_lut`` resuming, ``validate``,
``paper_phone --base``, ``nas.search --lut``) fails with one line on a missing field, an unknown
field, an older version and a space mismatch. The LUT is built with the deterministic engine
(its figures do not depend on the machine's load).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import repghost
from latency import FORMAT, load_lut, read_lut_file
from latency.build_lut import main as build_main
from latency.convert_lut import main as convert_main
from latency.paper_phone import main as phone_main
from latency.validate import main as validate_main
from space import load_space

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_space.yaml"


@pytest.fixture(scope="module")
def det_lut(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("det") / "tiny-det.json"
    assert build_main(["--engine", "deterministic", "--space", str(TINY), "--out", str(out), "--calibration-nets", "6"]) == 0
    return out


def _load_then_space(path: Path) -> None:
    load_lut(path).space()


def _search(path: Path) -> int:
    from nas.search import main as search_main

    return search_main(["--budget", "1000ms", "--lut", str(path), "--space", str(TINY), "--data", "synthetic", "--quick", "--trials", "1", "--no-baselines", "--results", str(path.parent / "results")])


READERS = {
    "load_lut": _load_then_space,
    "build_lut (resume)": lambda path: build_main(["--engine", "deterministic", "--space", str(TINY), "--out", str(path), "--calibration-nets", "6"]),
    "validate": lambda path: validate_main(["--lut", str(path), "--n", "2"]),
    "paper_phone --base": lambda path: phone_main(["--base", str(path), "--out", str(path.parent / "phone.json")]),
    "nas.search --lut": _search,
}


def one_line_error(reader, path: Path, capsys) -> str:
    """The reader's error as the user sees it: a ValueError's text, or a CLI's stderr."""
    try:
        code = reader(path)
    except ValueError as error:
        text = str(error)
    else:
        assert code == 2, code
        text = capsys.readouterr().err.strip().removeprefix("error: ")
    assert len(text.splitlines()) == 1, text
    return text


def spoiled(det_lut: Path, tmp_path: Path, change) -> Path:
    data = json.loads(det_lut.read_text())
    change(data)
    path = tmp_path / "spoiled.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("reader", READERS)
def test_missing_field_is_named(reader, det_lut, tmp_path, capsys):
    path = spoiled(det_lut, tmp_path, lambda data: data["fingerprint"].pop("space_hash"))
    before = path.read_bytes()
    text = one_line_error(READERS[reader], path, capsys)
    assert "missing field 'fingerprint.space_hash'" in text and str(path) in text
    assert path.read_bytes() == before


@pytest.mark.parametrize("reader", READERS)
def test_unknown_field_is_named(reader, det_lut, tmp_path, capsys):
    path = spoiled(det_lut, tmp_path, lambda data: next(iter(data["entries"].values())).update(median_us=3))
    text = one_line_error(READERS[reader], path, capsys)
    assert "unknown field 'entries." in text and ".median_us'" in text and str(path) in text


@pytest.mark.parametrize("reader", READERS)
def test_older_version_says_how_to_convert(reader, det_lut, tmp_path, capsys):
    path = spoiled(det_lut, tmp_path, to_v1)
    text = one_line_error(READERS[reader], path, capsys)
    assert "older format 'repghost-nas-lut/1'" in text and f"python -m latency.convert_lut {path}" in text


@pytest.mark.parametrize("reader", READERS)
def test_space_mismatch_says_so(reader, det_lut, tmp_path, capsys):
    """A LUT recorded for another space (another hash of its file)."""
    path = spoiled(det_lut, tmp_path, lambda data: data["fingerprint"].update(space_hash="0" * 64))
    text = one_line_error(READERS[reader], path, capsys)
    if reader == "build_lut (resume)":
        assert "another fingerprint" in text and "space_hash" in text
    else:
        assert "space" in text and "0000000000" in text and "tiny_space.yaml" in text


def test_search_with_a_lut_of_another_space_says_so(det_lut, capsys):
    """Without --space, nas.search asks for the packaged space: a LUT of the tiny space is refused."""
    from nas.search import main as search_main

    assert search_main(["--budget", "30ms", "--lut", str(det_lut), "--data", "synthetic", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another space" in err and "tests/data/tiny_space.yaml" in err and "space/repghost.yaml" in err


def to_v2(data: dict) -> None:
    """``data`` (this format) as format 2 wrote it: one statistic per item (the median), no
    quality record, calibration rounds instead of one interleaved job."""
    data["format"] = "repghost-nas-lut/2"
    del data["fingerprint"]["statistic"]
    for name in ("quality", "quality_notes"):
        data.pop(name, None)
    data["calibration"].pop("attempts", None)
    for entry in data["entries"].values():
        for name in ("min_ms", "p10_ms"):
            entry.pop(name, None)
    for net in data["calibration"]["nets"].values():
        net["round_medians_ms"] = [net.pop("median_ms")]
        net["measured_ms"] = net["round_medians_ms"][0]
        for name in ("min_ms", "p10_ms"):
            net.pop(name)


def to_v1(data: dict) -> None:
    """``data`` (this format) as format 1 wrote it: the inverse of latency.convert_lut."""
    to_v2(data)
    data["format"] = "repghost-nas-lut/1"
    data["build"] = {"export_worker": data.pop("export_worker")}
    if data["correction"]["model"] == "none":
        for name in ("ms_per_part", "ms_per_weight_mb"):
            data["correction"].pop(name)
    provenance = data.pop("provenance", None)
    if provenance:
        data["fingerprint"].update(estimated=True, estimate_of=provenance["estimate_of"], base_lut=provenance["base_lut"], base_fingerprint=provenance["base_fingerprint"])
        data["correction"].update(calibration=provenance["calibration"], leave_one_out=provenance["leave_one_out"])


@pytest.mark.parametrize("older", [to_v1, to_v2])
def test_conversion_keeps_every_prediction(older, det_lut, tmp_path, capsys):
    """An older file converts to this format marked ``statistic: median`` (all it measured);
    on the deterministic engine every statistic is the same figure, so predictions are equal."""
    path = spoiled(det_lut, tmp_path, older)
    assert json.loads(path.read_text())["format"] in ("repghost-nas-lut/1", "repghost-nas-lut/2")
    assert convert_main([str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: converted to {FORMAT}"
    converted_file = read_lut_file(path)
    assert converted_file.fingerprint.statistic == "median" and converted_file.quality is None
    original, converted = load_lut(det_lut), load_lut(path)
    assert converted_file.entries.keys() == original.file.entries.keys() and converted_file.correction == original.file.correction
    space = load_space(TINY)
    rng = random.Random(0)
    for _ in range(50):
        cfg = space.sample(rng)
        assert converted.predict(cfg) == original.predict(cfg)
    assert convert_main([str(path)]) == 0 and "already" in capsys.readouterr().out


def test_a_validation_of_another_statistic_is_refused(det_lut, capsys):
    assert validate_main(["--lut", str(det_lut), "--n", "2", "--statistic", "median"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "predicts the min" in err and "--statistic median" in err


def test_older_protocol_is_named_when_validated(det_lut, tmp_path, capsys):
    """A LUT timed by the older protocol (contiguous attempts, a median) cannot be validated
    with this one: it says so, and how to rebuild."""
    path = spoiled(det_lut, tmp_path, lambda data: data["fingerprint"].update(run_policy={"min_runs": 20, "max_runs": 200}))
    assert validate_main(["--lut", str(path), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "older protocol must be rebuilt" in err and "python -m latency.build_lut" in err


def test_committed_luts_are_in_this_format_and_belong_to_their_spaces():
    for path in sorted((ROOT / "results" / "lut").glob("*.json")):
        if "." in path.stem:  # a LUT's companions: <lut>.<validation name>.json, <lut>.loo.json
            continue
        lut = load_lut(path)
        lut.space()  # the recorded space file, by the one rule, with the recorded hash
        assert lut.predict(repghost.repghostnet_config(1.0)) > 0


def test_writer_round_trips_and_fill_command_names_the_whole_fingerprint(det_lut, tmp_path):
    from latency.lut import fill_command
    from latency.lut_format import write_lut_file

    file = read_lut_file(det_lut)
    copy = tmp_path / "copy.json"
    write_lut_file(copy, file)
    assert copy.read_text() == det_lut.read_text()
    file.fingerprint.precision, file.fingerprint.opt_level, file.fingerprint.remote = "fp16", "basic", "pi@board:2222"
    file.fingerprint.run_policy = {**file.fingerprint.run_policy, "rounds": 7}
    file.fingerprint.statistic = "p10"
    command = fill_command("x.json", file)
    for part in ("--engine deterministic", "--precision fp16", "--opt-level basic", "--remote pi@board:2222", "--rounds 7", "--statistic p10", "--space tests/data/tiny_space.yaml"):
        assert part in command, command


def test_deterministic_builds_repeat_exactly(det_lut, tmp_path):
    """Built twice, a LUT of the deterministic engine has the same entries, calibration and
    correction to the last digit: logic built on it can be tested for exact values."""
    again = tmp_path / "again.json"
    assert build_main(["--engine", "deterministic", "--space", str(TINY), "--out", str(again), "--calibration-nets", "6"]) == 0
    first, second = read_lut_file(det_lut), read_lut_file(again)
    assert first.entries == second.entries and first.calibration == second.calibration
    assert first.correction == second.correction and first.overhead == second.overhead
    assert first.fingerprint.engine == "deterministic" and first.overhead.session_call_ms > 0


def test_the_suggested_command_resumes_the_same_build(tmp_path):
    """The command an unfinished LUT's error suggests rebuilds with the whole fingerprint, so it
    resumes the file rather than being refused as another fingerprint."""
    import shlex

    out = tmp_path / "odd.json"
    settings = ["--engine", "deterministic", "--opt-level", "basic", "--inter-op-threads", "2", "--rounds", "7", "--burst-runs", "2", "--clock", "thread", "--statistic", "median"]
    assert build_main([*settings, "--space", str(TINY), "--out", str(out), "--calibration-nets", "0"]) == 0
    data = json.loads(out.read_text())
    data["complete"] = False
    out.write_text(json.dumps(data))
    with pytest.raises(ValueError) as caught:
        load_lut(out)
    command = str(caught.value).split("resume it with ", 1)[1]
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "latency.build_lut"]
    assert build_main([*argv[3:], "--calibration-nets", "0"]) == 0
    assert load_lut(out).fingerprint["opt_level"] == "basic"
