"""A LUT of the tiny space: build, predict against end-to-end runs, resume, quality control, bad input.

The logic is tested on the deterministic engine (each graph's cost is a known function of it),
so every assertion is exact and fails on a real bug, never on a busy machine; the real ONNX
Runtime build is tested for what noise cannot change. Builds are stopped at counted points,
never after a sleep.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import repghost
import space
from latency import RunPolicy, get_engine, load_lut
from latency.build_lut import main as build_main
from latency.devices import HostDevice
from latency.lut_builder import DRIFT_LIMIT, BuildSettings, build, default_out
from latency.lut_format import read_lut_file
from latency.overhead import trivial_onnx
from space import arch_id

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_space.yaml"
CALIBRATION = 6
DETERMINISTIC = get_engine("deterministic")


@pytest.fixture(scope="module")
def tiny_space():
    return space.load_space(TINY)


@pytest.fixture
def tiny_lut(tiny_lut_path, tmp_path):
    """A copy of the session's deterministic LUT of the tiny space (conftest.py; 6 calibration networks)."""
    out = tmp_path / "tiny.json"
    shutil.copy(tiny_lut_path, out)
    return out


def exact_ms(module, shape, path: Path) -> float:
    """What the deterministic engine says ``module`` costs (exported to ``path``)."""
    repghost.export_onnx(module, path, input_shape=shape)
    return DETERMINISTIC.measure(str(path), shape).median_ms


def held_out(tiny_space, lut, n: int, seed: int) -> list:
    calibration, configs, rng = set(lut.file.calibration.nets), {}, random.Random(seed)
    while len(configs) < n:
        cfg = tiny_space.sample(rng)
        if arch_id(cfg) not in calibration:
            configs.setdefault(arch_id(cfg), cfg)
    return list(configs.values())


def test_lut_holds_the_engine_figures_with_a_fingerprint(tiny_lut, tiny_space, tmp_path):
    """Every entry, the session call and every calibration network is the engine's exact figure
    for that graph; the fingerprint says how it was measured."""
    data = read_lut_file(tiny_lut)
    assert data.complete and data.quality == "good" and data.quality_notes == []
    specs = {repghost.part_key(spec): spec for spec in tiny_space.parts()}
    assert set(data.entries) == set(specs)
    for key, entry in data.entries.items():
        spec = specs[key]
        expected = exact_ms(repghost.build_part(spec, deploy=True), spec.input_shape(), tmp_path / "part.onnx")
        assert entry.min_ms == entry.p10_ms == entry.median_ms == round(expected, 6) and entry.iqr_ms == 0 and entry.weight_bytes > 0
    trivial = trivial_onnx(tmp_path / "trivial.onnx")
    assert data.overhead.session_call_ms == round(DETERMINISTIC.measure(trivial, (1, 1)).median_ms, 6)
    assert len(data.calibration.nets) == CALIBRATION and data.calibration.attempts == 1
    for net in data.calibration.nets.values():
        cfg = repghost.NetConfig.from_json(net.config)
        shape = (1, 3, tiny_space.resolution, tiny_space.resolution)
        assert net.measured_ms == round(exact_ms(repghost.build(cfg, deploy=True), shape, tmp_path / "net.onnx"), 6)
    fingerprint = data.fingerprint
    assert fingerprint.statistic == "min" and fingerprint.engine == "deterministic" and fingerprint.threads == 1
    assert fingerprint.space_hash == tiny_space.file_hash() and fingerprint.run_policy == RunPolicy().to_dict()
    for name in ("cpu_model", "arch", "os", "engine_version", "opset", "opt_level", "date"):
        assert getattr(fingerprint, name) not in (None, ""), name
    correction = data.correction
    assert correction.fit["n"] == CALIBRATION and correction.model == "affine" and correction.fit["leave_one_out_mean_abs_err_pct"] < 5


def test_prediction_matches_end_to_end_costs(tiny_lut, tiny_space, tmp_path):
    """Ten networks that were not calibration networks, each exported whole: the prediction is
    within 5 % of the engine's figure for each (the sum of parts alone is not: a part counts its
    own input and the whole network does not, which the correction takes out)."""
    lut = load_lut(tiny_lut)
    shape = (1, 3, tiny_space.resolution, tiny_space.resolution)
    for cfg in held_out(tiny_space, lut, 10, seed=123):
        measured = exact_ms(repghost.build(cfg, deploy=True), shape, tmp_path / "net.onnx")
        assert abs(lut.predict(cfg) / measured - 1) < 0.05, (cfg.to_json(), lut.predict(cfg), measured)
        assert abs(lut.sum_ms(cfg) + lut.session_call_ms - measured) > 0  # the correction has work to do


def test_real_engine_build_gives_positive_statistics(tmp_path, tiny_space):
    """ONNX Runtime, for what noise cannot change: every part measured with the protocol's count
    of samples, 0 < min <= p10 <= median, a correction, the right fingerprint."""
    out = tmp_path / "ort.json"
    assert build_main(["--space", str(TINY), "--out", str(out), "--calibration-nets", "4", "--rounds", "2", "--burst-runs", "3"]) == 0
    data = read_lut_file(out)
    assert set(data.entries) == {repghost.part_key(spec) for spec in tiny_space.parts()}
    for entry in data.entries.values():
        assert 0 < entry.min_ms <= entry.p10_ms <= entry.median_ms and math.isfinite(entry.median_ms) and entry.runs == 6
    assert data.fingerprint.engine == "ort" and data.fingerprint.statistic == "min" and data.fingerprint.run_policy["rounds"] == 2
    assert data.complete and data.quality in ("good", "poor") and data.overhead.session_call_ms > 0 and len(data.calibration.nets) == 4
    assert len(data.drift.samples) >= 2 and all(sample[1] > 0 for sample in data.drift.samples)
    cfg = tiny_space.sample(random.Random(1))
    assert math.isfinite(load_lut(out).predict(cfg)) and load_lut(out).predict(cfg) > 0


def test_breakdown_adds_up_and_follows_the_network(tiny_lut, tiny_space):
    lut = load_lut(tiny_lut)
    cfg = tiny_space.sample(random.Random(5))
    rows = lut.breakdown(cfg)
    assert [key for key, _ in rows[:-1]] == [repghost.part_key(spec) for spec in cfg.parts(tiny_space.resolution)]
    assert rows[-1][0] == "(offset)"
    assert sum(ms for _, ms in rows) == pytest.approx(lut.predict(cfg))
    assert all(ms > 0 for _, ms in rows[:-1])


def test_missing_key_names_it_and_the_remedy(tiny_lut):
    lut = load_lut(tiny_lut)
    outside = repghost.repghostnet_config(1.0)
    missing = next(key for key in lut.keys(outside) if key not in lut)
    with pytest.raises(ValueError, match=re.escape(f"has no entry for {missing}:") + ".*python -m latency.build_lut"):
        lut.predict(outside)
    with pytest.raises(ValueError, match="has no entry"):
        lut.breakdown(outside)


def _run_cli(capsys, argv):
    code = build_main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def test_corrupt_lut_is_one_line_and_left_alone(tmp_path, capsys):
    out = tmp_path / "corrupt.json"
    out.write_text('{"format": "repghost-nas-lut/3", "entries": {')
    before = out.read_bytes()
    with pytest.raises(ValueError, match="corrupt"):
        load_lut(out)
    code, err = _run_cli(capsys, ["--space", str(TINY), "--out", str(out)])
    assert code == 2 and err.startswith("error: LUT file") and "corrupt" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == before


def test_other_fingerprint_is_refused_and_left_alone(tiny_lut, tmp_path, capsys):
    data = json.loads(tiny_lut.read_text())
    data["fingerprint"]["cpu_model"] = "Some Other CPU"
    out = tmp_path / "other.json"
    out.write_text(json.dumps(data))
    before = out.read_bytes()
    code, err = _run_cli(capsys, ["--space", str(TINY), "--engine", "deterministic", "--out", str(out)])
    assert code == 2 and "another fingerprint" in err and "cpu_model" in err and "choose another --out (for example" in err
    assert len(err.splitlines()) == 1 and out.read_bytes() == before
    code, err = _run_cli(capsys, ["--space", str(TINY), "--engine", "deterministic", "--threads", "2", "--out", str(tiny_lut)])
    assert code == 2 and "threads" in err


def test_first_build_on_another_cpu_gets_its_own_default_file(tiny_lut, tmp_path):
    """The default --out is the committed name; when that file was measured on another CPU, the
    name ends in this machine's CPU instead of being refused."""
    device = HostDevice()
    folder = tmp_path / "lut"
    folder.mkdir()
    assert default_out("host", DETERMINISTIC, device, str(folder)) == folder / "host-deterministic-t1.json"
    data = json.loads(tiny_lut.read_text())
    (folder / "host-deterministic-t1.json").write_text(json.dumps(data))
    assert default_out("host", DETERMINISTIC, device, str(folder)) == folder / "host-deterministic-t1.json"  # this machine's
    data["fingerprint"]["cpu_model"] = "Another Vendor CPU 9000"
    (folder / "host-deterministic-t1.json").write_text(json.dumps(data))
    mine = default_out("host", DETERMINISTIC, device, str(folder))
    slug = re.sub(r"[^a-z0-9]+", "-", device.fingerprint(DETERMINISTIC)["cpu_model"].lower()).strip("-")[:40]
    assert mine == folder / f"host-deterministic-t1-{slug}.json"


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for option, value in (("--device", "tpu"), ("--engine", "trt"), ("--opt-level", "max"), ("--precision", "int4"), ("--statistic", "mean")):
        with pytest.raises(SystemExit) as caught:  # argparse's choices: the usage line, then the error
            build_main([option, value, "--space", str(TINY)])
        err = capsys.readouterr().err
        assert caught.value.code == 2 and f"argument {option}: invalid choice: '{value}'" in err
    cases = {
        "unwritable output": (["--space", str(TINY), "--out", str(blocker / "lut.json")], "cannot create folder"),
        "output is a folder": (["--space", str(TINY), "--out", str(tmp_path)], "is a folder"),
        "no rounds": (["--space", str(TINY), "--rounds", "0", "--out", str(tmp_path / "x.json")], "rounds"),
        "chunk too small": (["--space", str(TINY), "--engine", "deterministic", "--chunk-items", "2", "--out", str(tmp_path / "x.json")], "--chunk-items"),
    }
    bad_space = tmp_path / "bad_space.yaml"
    bad_space.write_text(TINY.read_text().replace("resolution: 64", "resolution: 64\nbogus_key: 1"))
    cases["space file with errors"] = (["--space", str(bad_space), "--out", str(tmp_path / "x.json")], "bad_space.yaml")
    for name, (argv, expected) in cases.items():
        code, err = _run_cli(capsys, argv)
        assert code == 2, name
        assert err.startswith("error: ") and expected in err and len(err.splitlines()) == 1, (name, err)
    assert not (tmp_path / "x.json").exists()


def test_unfinished_lut_cannot_be_used(tmp_path, tiny_lut):
    data = json.loads(tiny_lut.read_text())
    data["complete"] = False
    out = tmp_path / "unfinished.json"
    out.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unfinished.*resume it with python -m latency.build_lut"):
        load_lut(out)


def test_a_lut_of_the_older_protocol_warns_with_the_rebuild_command(tmp_path, tiny_lut):
    """Its entries are medians of one contiguous attempt each: usable, but whoever loads it is told."""
    assert load_lut(tiny_lut).warnings() == []
    data = json.loads(tiny_lut.read_text())
    data["fingerprint"]["run_policy"] = {"attempts": 3, "batch_runs": 10, "min_runs": 20, "max_runs": 200, "warmup_runs": 5}
    out = tmp_path / "older.json"
    out.write_text(json.dumps(data))
    (warning,) = load_lut(out).warnings()
    assert warning.startswith(f"warning: LUT {out} was timed with an older protocol")
    assert warning.endswith(f"--engine deterministic --threads 1 --out {out}")


class CountingHost(HostDevice):
    """The host device, counting the parts it times, stopping (as a killed build would) when
    chunk number ``stop_at`` starts, and multiplying what ``slow`` says by its factor."""

    def __init__(self, stop_at: int | None = None, slow=None) -> None:
        super().__init__()
        self.timed: list[str] = []
        self.chunks = 0
        self.stop_at = stop_at
        self.slow = slow or (lambda chunk, job: 1.0)

    def measure_stream(self, jobs, engine, policy):
        jobs = list(jobs)
        self.chunks += 1
        if self.stop_at is not None and self.chunks >= self.stop_at:
            raise KeyboardInterrupt
        for job, measurement in super().measure_stream(jobs, engine, policy):
            if not job.key.startswith("("):  # the session-call and drift probes
                self.timed.append(job.key)
            factor = self.slow(self.chunks, job)
            yield job, dataclasses.replace(measurement, **{name: getattr(measurement, name) * factor for name in ("median_ms", "min_ms", "p10_ms")})


def _settings(tiny_space, seeds=(1, 2, 3, 4, 5, 6)) -> tuple[list, dict, BuildSettings]:
    info = {"space_file": str(TINY), "space_hash": tiny_space.file_hash(), "resolution": tiny_space.resolution}
    configs = [tiny_space.sample(random.Random(seed)) for seed in seeds]
    return tiny_space.parts(), info, BuildSettings(policy=RunPolicy(chunk_items=5), calibration=configs)


def test_interrupted_build_resumes_without_re_measuring(tmp_path, tiny_space):
    """Stopped when its third chunk starts (two chunks of three parts saved), a build's rerun
    times only the rest, keeps the saved entries, and a third run times nothing."""
    out = tmp_path / "resume.json"
    parts, info, settings = _settings(tiny_space)
    first = CountingHost(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        build(parts, out, device=first, engine=DETERMINISTIC, space_info=info, settings=settings, log=lambda _: None)
    saved = json.loads(out.read_text())
    assert saved["complete"] is False and set(saved["entries"]) == set(first.timed) and len(first.timed) == 6

    second = CountingHost()
    data = build(parts, out, device=second, engine=DETERMINISTIC, space_info=info, settings=settings, log=lambda _: None)
    n_parts = len({repghost.part_key(p) for p in parts})
    assert not set(second.timed) & set(first.timed)
    assert len(second.timed) == n_parts - 6 + len({arch_id(c) for c in settings.calibration})
    for key in first.timed:
        assert data.to_json()["entries"][key] == saved["entries"][key]
    assert data.complete is True

    third = CountingHost()
    build(parts, out, device=third, engine=DETERMINISTIC, space_info=info, settings=settings, log=lambda _: None)
    assert third.timed == []


@pytest.mark.parametrize("still_moving_later", [False, True])
def test_a_chunk_whose_reference_moved_is_measured_again_later_then_marked_poor(tmp_path, tiny_space, still_moving_later):
    """The drift reference reads 10 % slower in chunk 3 (both tries): the chunk is timed twice,
    and once more after all the others. When it then holds still its entries are replaced and
    the LUT is good; when it still moves, the LUT is written marked quality: poor with the reason,
    and a reader is warned. A move within the limit in chunk 6 changes nothing."""
    out = tmp_path / "moved.json"
    parts, info, settings = _settings(tiny_space)
    settings = dataclasses.replace(settings, calibration=[])
    n_parts = len({repghost.part_key(p) for p in parts})
    per_chunk = settings.policy.chunk_items - 2
    later = math.ceil(n_parts / per_chunk) + 2  # the regular chunks and the third chunk's second try come first
    moving = {3, 4, later} if still_moving_later else {3, 4}

    def slow(chunk, job):
        if not job.key.startswith("(reference)"):
            return 1.25 if chunk in moving else 1.0  # the parts slowed down too
        return 1.10 if chunk in moving else 1 + DRIFT_LIMIT / 2 if chunk == 6 else 1.0

    device = CountingHost(slow=slow)
    lines: list[str] = []
    data = build(parts, out, device=device, engine=DETERMINISTIC, space_info=info, settings=settings, log=lines.append)
    assert device.chunks == later
    assert len(device.timed) == n_parts + 2 * per_chunk  # the third chunk's parts twice more
    assert sum("measuring it again" in line for line in lines) == 1
    assert sum("measuring it once more, after the other chunks" in line for line in lines) == 1
    third = set(device.timed[2 * per_chunk : 3 * per_chunk])
    plain = build(parts, tmp_path / "plain.json", device=CountingHost(), engine=DETERMINISTIC, space_info=info, settings=settings, log=lambda _: None)
    kept = 1.25 if still_moving_later else 1.0  # the slowed first tries' entries stand, or the later try's replace them
    for key, entry in data.entries.items():
        assert entry.min_ms == pytest.approx(plain.entries[key].min_ms * (kept if key in third else 1.0), abs=2e-6), key  # entries keep 6 decimals
    if still_moving_later:
        assert data.quality == "poor" and len(data.quality_notes) == 1
        assert "drift reference moved 10.0%" in data.quality_notes[0] and data.quality_notes[0].endswith("once more after the other chunks")
        (warning,) = load_lut(out).warnings()
        assert warning.startswith(f"warning: LUT {out} is marked quality: poor") and "drift reference" in warning
    else:
        assert data.quality == "good" and data.quality_notes == []
        assert sum("held still this time" in line for line in lines) == 1
        assert load_lut(out).warnings() == []


def test_a_calibration_that_fits_badly_is_measured_again_then_marked_poor(tmp_path, tiny_space):
    """Every other calibration network reads 30 % slow: the fit's leave-one-out error is above
    the limit, the calibration is measured a second time, and the LUT is marked poor."""
    out = tmp_path / "badfit.json"
    parts, info, settings = _settings(tiny_space)
    calibration = {arch_id(cfg) for cfg in settings.calibration}
    ids = sorted(calibration)

    def slow(chunk, job):
        return 1.3 if job.key in calibration and ids.index(job.key) % 2 else 1.0

    device = CountingHost(slow=slow)
    data = build(parts, out, device=device, engine=DETERMINISTIC, space_info=info, settings=settings, log=lambda _: None)
    assert data.calibration.attempts == 2 and data.quality == "poor"
    assert "calibration fit leave-one-out mean" in data.quality_notes[0]  # (the same build unslowed: the first test)


KILL_AFTER_SAVE = """
import os, signal, sys
import latency.lut_builder as builder
builder.SAVE_EVERY_S = 0.0  # save after every chunk
write = builder.write_lut_file
def write_then_die(path, data):
    write(path, data)
    if len(data.entries) >= int(sys.argv[1]) and not data.complete:
        os.kill(os.getpid(), signal.SIGKILL)
builder.write_lut_file = write_then_die
from latency.build_lut import main
sys.exit(main(sys.argv[2:]))
"""


def test_killed_cli_build_resumes(tmp_path):
    """SIGKILL a real build process right after it saved its second chunk, then rerun the
    command: nothing saved is measured again."""
    out = tmp_path / "killed.json"
    argv = ["--space", str(TINY), "--engine", "deterministic", "--out", str(out), "--calibration-nets", "6", "--chunk-items", "5"]
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SAVE, "6", *argv], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    saved = json.loads(out.read_text())
    assert len(saved["entries"]) == 6 and not saved["complete"]
    result = subprocess.run([sys.executable, "-m", "latency.build_lut", *argv], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "(6 already measured)" in result.stderr
    data = json.loads(out.read_text())
    for key, entry in saved["entries"].items():
        assert data["entries"][key] == entry
    assert data["complete"] is True and len(data["calibration"]["nets"]) == 6


def test_validate_writes_csv_plot_and_summary(tiny_lut, tiny_space, tmp_path, capsys):
    """On the deterministic engine the ground truth is each network's exact cost; the report has
    the LUT, the MACs-only and MACs + bytes fits side by side and the budget feasibility."""
    from latency.validate import main as validate_main, output_paths

    code = validate_main(["--lut", str(tiny_lut), "--n", "6", "--seed", "3", "--name", "pass1"])
    out = capsys.readouterr().out
    assert code == 0
    paths = output_paths(tiny_lut, "pass1")
    frame = pd.read_csv(paths["csv"])
    assert len(frame) == 6 and set(frame["kind"]) == {"random"}  # the paper models are not in the tiny space
    assert not set(frame["arch_id"]) & set(json.loads(tiny_lut.read_text())["calibration"]["nets"])
    lut = load_lut(tiny_lut)
    shape = (1, 3, tiny_space.resolution, tiny_space.resolution)
    for row in frame.itertuples():
        cfg = repghost.NetConfig.from_json(row.config)
        assert row.measured_ms == pytest.approx(exact_ms(repghost.build(cfg, deploy=True), shape, tmp_path / "n.onnx"), rel=1e-12)
        assert row.predicted_ms == pytest.approx(lut.predict(cfg), rel=1e-12) and row.statistic == "min"
    assert paths["png"].stat().st_size > 10_000
    report = json.loads(paths["json"].read_text())
    assert report["summary"]["random"]["n"] == 6 and "random_q1" in report["summary"] and report["statistic"] == "min"
    assert set(report["baselines"]) == {"macs", "macs+bytes"} and set(report["budget_feasibility"]) == {"lut", "macs", "macs+bytes"}
    errors = (frame["predicted_ms"] / frame["measured_ms"] - 1).abs()
    assert report["summary"]["random"]["within_5pct"] == pytest.approx((errors <= 0.05).mean()) and (errors < 0.10).all()
    assert "within10=" in out and "tau=" in out and "macs+bytes fit" in out and "the min of each network's samples" in out


def test_budget_feasibility_and_baselines_by_hand():
    from latency.validate import baseline_predictions, budget_feasibility

    frame = pd.DataFrame({"measured_ms": [1.0, 2.0, 3.0, 4.0, 5.0], "predicted_ms": [1.0, 3.2, 2.9, 3.0, 6.0]})
    # budget 3.0 ms: predicted within it are 1.0, 2.9 and 3.0 (measured 1, 3, 4): one is over 3.15
    assert budget_feasibility(frame) == {"budget_ms": 3.0, "predicted_within": 3, "of_them_measured_over_5pct": 1, "share": 1 / 3}
    calibration = pd.DataFrame({"mmacs": [1.0, 2.0, 3.0, 5.0], "mbytes": [0.5, 0.1, 0.9, 0.2], "measured_ms": [2.5, 4.5, 6.5, 10.5]})
    predictions = baseline_predictions(pd.DataFrame({"mmacs": [4.0, 10.0], "mbytes": [0.3, 0.0]}), calibration)
    assert predictions["macs"] == pytest.approx([8.5, 20.5])  # ms = 2 * MMACs + 0.5, exactly
    assert predictions["macs+bytes"] == pytest.approx([8.5, 20.5])  # the bytes term earns nothing


def test_error_stats_by_hand():
    from latency.validate import error_stats, summarize

    frame = pd.DataFrame(
        {
            "kind": ["random"] * 8,
            "predicted_ms": [1.01, 1.96, 3.18, 4.5, 5.0, 6.3, 7.0, 8.0],
            "measured_ms": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    frame["error_pct"] = (frame["predicted_ms"] - frame["measured_ms"]) / frame["measured_ms"] * 100
    stats = error_stats(frame)
    # errors: +1, -2, +6, +12.5, 0, +5, 0, 0 percent
    assert stats["within_5pct"] == pytest.approx(6 / 8)
    assert stats["within_10pct"] == pytest.approx(7 / 8)
    assert stats["max_abs_err_pct"] == pytest.approx(12.5)
    assert stats["mean_err_pct"] == pytest.approx((1 - 2 + 6 + 12.5 + 5) / 8)
    assert stats["kendall_tau"] == pytest.approx(1.0) and stats["spearman_rho"] == pytest.approx(1.0)
    summary = summarize(frame)
    assert [summary[f"random_q{i}"]["n"] for i in range(1, 5)] == [2, 2, 2, 2]
    assert summary["random_q2"]["max_abs_err_pct"] == pytest.approx(12.5)


def test_measure_one_network_against_the_lut(tiny_lut, tiny_space, tmp_path, capsys):
    """``latency.measure`` on an architecture file: measured by the LUT's engine and protocol,
    predicted by the LUT (exact figures on the deterministic engine); an ONNX file is measured
    by a real engine; an estimate says where its evidence is."""
    from latency.measure import main as measure_main

    cfg = held_out(tiny_space, load_lut(tiny_lut), 1, seed=7)[0]
    arch = tmp_path / "best.json"
    arch.write_text(json.dumps({"trial": 3, "architecture": json.loads(cfg.to_json())}))
    assert measure_main([str(arch), "--lut", str(tiny_lut)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    shape = (1, 3, tiny_space.resolution, tiny_space.resolution)
    assert result["measured_ms"] == pytest.approx(exact_ms(repghost.build(cfg, deploy=True), shape, tmp_path / "n.onnx"), rel=1e-12)
    assert result["predicted_ms"] == pytest.approx(load_lut(tiny_lut).predict(cfg)) and abs(result["error_pct"]) < 5
    onnx = tmp_path / "n.onnx"
    assert measure_main([str(onnx), "--rounds", "2", "--burst-runs", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["engine"]["engine"] == "ort" and result["runs"] == 6 and 0 < result["min_ms"] <= result["median_ms"]
    assert measure_main([str(arch), "--lut", str(tiny_lut), "--clock", "wall", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --threads, --clock cannot be combined with --lut") and len(err.splitlines()) == 1
    assert measure_main([str(arch), "--lut", str(ROOT / "results" / "lut" / "paper-phone.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "leave-one-out" in err and "paper-phone.loo.json" in err
    assert measure_main([str(tmp_path / "nothing.json")]) == 2
    assert "no file at" in capsys.readouterr().err


def test_validating_an_estimate_points_to_its_leave_one_out_table(capsys):
    from latency.validate import main as validate_main

    assert validate_main(["--lut", str(ROOT / "results" / "lut" / "paper-phone.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "an estimate is judged by its leave-one-out table" in err and "results/lut/paper-phone.loo.json" in err
