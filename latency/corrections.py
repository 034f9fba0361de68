"""What makes a sum of parts differ from the whole network, fitted on networks measured whole.

Each entry is a part timed alone; its session-call cost is taken out before summing. What is
left differs from an end-to-end run by effects that scale with the work (a part timed alone
finds its weights in cache, a part inside a network mostly does not) and by a constant (the
network's own session call, its input and output). Two models are fitted on the calibration
networks, each by a robust least squares on relative error (soft-L1, so that a network slowed
by a busy moment does not drag the fit), and the one with the lower leave-one-out error is kept:

- ``affine``: ``scale * sum_ms + offset_ms``
- ``affine+parts``: ``scale * sum_ms + ms_per_part * n_parts + offset_ms``: a cost (or saving)
  per part that a session call on a trivial graph does not show (depth varies in a space);
- ``affine+weights``: ``scale * sum_ms + ms_per_weight_mb * weight_mb + offset_ms``, where
  ``weight_mb`` is the network's parameter bytes (each entry records its part's) / 1e6.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repghost import NetConfig, part_key

from .lut_format import Correction, Entry, LutFile

MODELS = {
    "affine": ("sum_ms", "one"),
    "affine+parts": ("sum_ms", "n_parts", "one"),
    "affine+weights": ("sum_ms", "weight_mb", "one"),
}
COEFFICIENT_NAMES = {"sum_ms": "scale", "n_parts": "ms_per_part", "weight_mb": "ms_per_weight_mb", "one": "offset_ms"}
SOFT_L1_SCALE = 0.03  # relative errors beyond ~3 % count less than quadratically
MIN_SCALE = 0.5


def network_features(keys: list[str], entries: dict[str, Entry], session_call_ms: float, statistic: str) -> dict[str, float]:
    """The features of a network made of the parts ``keys`` (entries read as ``statistic``)."""
    return {
        "sum_ms": sum(entries[key].value(statistic) - session_call_ms for key in keys),
        "weight_mb": sum(float(entries[key].weight_bytes or 0) for key in keys) / 1e6,
        "n_parts": float(len(keys)),
        "one": 1.0,
    }


def calibration_points(data: LutFile, resolution: int) -> list[tuple[str, dict[str, float], float]]:
    """(id, features, measured ms) per calibration network."""
    overhead = _session_call_ms(data)
    entries = data.entries
    points = []
    for net_id, net in sorted(data.calibration.nets.items()):
        cfg = NetConfig.from_json(net.config)
        keys = [part_key(spec) for spec in cfg.parts(resolution)]
        missing = [key for key in keys if key not in entries]
        if missing:
            raise ValueError(f"calibration network {net_id} has parts missing from the LUT, e.g. {missing[0]}")
        points.append((net_id, network_features(keys, entries, overhead, data.fingerprint.statistic), float(net.measured_ms)))
    return points


def _session_call_ms(data: LutFile) -> float:
    return float(data.overhead.session_call_ms) if data.overhead else 0.0


def _fit(design: np.ndarray, measured: np.ndarray, lower: np.ndarray) -> np.ndarray:
    from scipy.optimize import least_squares

    rows = design / measured[:, None]
    start, *_ = np.linalg.lstsq(rows, np.ones_like(measured), rcond=None)
    start = np.maximum(start, lower + 1e-9)
    result = least_squares(lambda c: rows @ c - 1.0, start, loss="soft_l1", f_scale=SOFT_L1_SCALE, bounds=(lower, np.inf))
    return result.x


def _evaluate(model: str, points: list, overhead: float) -> dict[str, Any]:
    names = MODELS[model]
    design = np.array([[p[1][name] for name in names] for p in points])
    measured = np.array([p[2] for p in points])
    # Work and weights can only add time: their coefficients are kept non-negative, and the sum
    # of the parts keeps at least MIN_SCALE (a fit on a few noisy networks may otherwise drop
    # the measurements altogether and predict one constant for every network).
    lower = np.array([MIN_SCALE if name == "sum_ms" else -np.inf if name in ("one", "n_parts") else 0.0 for name in names])
    coefficients = _fit(design, measured, lower)
    errors = design @ coefficients / measured - 1.0
    loo = []
    for i in range(len(points)):
        keep = np.arange(len(points)) != i
        c = _fit(design[keep], measured[keep], lower)
        loo.append(design[i] @ c / measured[i] - 1.0)
    loo = np.array(loo)
    uncorrected = (design[:, 0] + overhead) / measured - 1.0
    return {
        "model": model,
        **{COEFFICIENT_NAMES[name]: round(float(value), 6) for name, value in zip(names, coefficients)},
        "fit": {
            "n": len(points),
            "in_sample_mean_abs_err_pct": round(float(np.mean(np.abs(errors))) * 100, 3),
            "leave_one_out_mean_abs_err_pct": round(float(np.mean(np.abs(loo))) * 100, 3),
            "leave_one_out_max_abs_err_pct": round(float(np.max(np.abs(loo))) * 100, 3),
            "leave_one_out_within_5pct": round(float(np.mean(np.abs(loo) <= 0.05)), 3),
            "uncorrected_mean_err_pct": round(float(np.mean(uncorrected)) * 100, 3),
            "uncorrected_mean_abs_err_pct": round(float(np.mean(np.abs(uncorrected))) * 100, 3),
        },
    }


def fit_correction(data: LutFile, resolution: int) -> Correction:
    """The correction to store in the LUT, with how it was obtained and how well it fits."""
    overhead = _session_call_ms(data)
    points = calibration_points(data, resolution)
    # A model is fitted only with more than two networks per coefficient.
    candidates = [_evaluate(model, points, overhead) for model in MODELS if len(points) > 2 * len(MODELS[model])]
    if not candidates:
        needed = 2 * min(len(names) for names in MODELS.values()) + 1
        return _no_fit(overhead, f"{len(points)} calibration networks (a fit needs {needed}): no fit; sum of entries less their session-call cost, plus one session call")
    # The simplest model (MODELS order) whose leave-one-out error is within 10 % of the best:
    # an extra term must earn its place, not fit the noise of a busy machine.
    lowest = min(c["fit"]["leave_one_out_mean_abs_err_pct"] for c in candidates)
    best = next(c for c in candidates if c["fit"]["leave_one_out_mean_abs_err_pct"] <= 1.1 * lowest + 1e-9)
    uncorrected = best["fit"]["uncorrected_mean_abs_err_pct"]
    if lowest >= uncorrected:  # a fit that predicts unseen networks no better than none is noise
        how = (
            f"no fit: over {len(points)} calibration networks the best leave-one-out error ({lowest:.1f} %) was no "
            f"better than the plain sum's ({uncorrected:.1f} %); sum of entries less their session-call cost, plus one session call"
        )
        return _no_fit(overhead, how, {c["model"]: c["fit"] for c in candidates})
    best["how"] = (
        f"soft-L1 least squares on relative error over {len(points)} whole networks measured end to end at "
        f"build time (see calibration); the simplest of {[c['model'] for c in candidates]} whose leave-one-out "
        "error is within 10 % of the lowest"
    )
    return Correction(
        model=best["model"],
        scale=best.get("scale", 1.0),
        ms_per_part=best.get("ms_per_part", 0.0),
        ms_per_weight_mb=best.get("ms_per_weight_mb", 0.0),
        offset_ms=best["offset_ms"],
        how=best["how"],
        fit=best["fit"],
        candidates={c["model"]: c["fit"] for c in candidates},
    )


def _no_fit(overhead: float, how: str, candidates: dict[str, Any] | None = None) -> Correction:
    """The plain sum of entries less their session-call cost, plus one session call."""
    return Correction(model="none", scale=1.0, ms_per_part=0.0, ms_per_weight_mb=0.0, offset_ms=overhead, how=how, candidates=candidates)
