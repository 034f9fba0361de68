"""Opening a finished study from its storage alone, for reports and notebooks: its settings,
the LUT description and the baselines are all kept there (studies made before that was so get
them from the LUT and space files, when those are here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import optuna

from latency import LUT, load_lut
from repghost import NetConfig
from space import load_space

from .baselines import Baseline, stored_baselines
from .errors import UserError
from .evaluations import all_evaluations
from .lut_info import fingerprint_info, lut_info
from .objective import Candidate, describe
from .report_writer import write_report
from .study import open_storage
from .vocabulary import PROJECT_ROOT, StudyAttr, TrialAttr


def project_path(shown: str) -> Path:
    """A path as the settings show it (relative to the project when inside it) made usable here."""
    path = Path(shown)
    return path if path.is_absolute() else PROJECT_ROOT / path


def try_lut(settings: dict[str, Any], log: Callable[[str], None]) -> LUT | None:
    path = project_path(str(settings.get("lut", "")))
    try:
        return load_lut(path)
    except ValueError:
        log(f"LUT {settings.get('lut')} is not available here: the report uses the predicted latencies stored in the study")
        return None


def legacy_baselines(study: optuna.Study, settings: dict[str, Any], lut: LUT | None, log: Callable[[str], None]) -> list[Baseline]:
    """Baselines of a study made before baseline records were stored: each evaluation made for
    a paper width, with its candidate from the LUT and space when both are here, else from the
    trial it was enqueued as (baselines outside the budget have none: left out, with a line)."""
    space = None
    if lut is not None:
        try:
            space = load_space(project_path(str(settings.get("space", ""))))
        except ValueError:
            space = None
    trials = {t.user_attrs.get(TrialAttr.ARCH_ID): t for t in study.get_trials(deepcopy=False) if TrialAttr.ARCH in t.user_attrs}
    baselines, missing = [], []
    for arch, evaluation in all_evaluations(study, settings["proxy_id"]).items():
        match = re.fullmatch(r"baseline ([0-9.]+)x", evaluation.source)
        if match is None:
            continue
        width = float(match.group(1))
        candidate: Candidate | None = None
        if space is not None and lut is not None and space.file_hash() == settings.get("space_sha256"):
            candidate = describe(space.decode(space.paper_point(width)), lut.predict, space.resolution)
        elif arch in trials:
            attrs = trials[arch].user_attrs
            candidate = Candidate(NetConfig.from_json(attrs[TrialAttr.ARCH]), arch, float(attrs[TrialAttr.LATENCY_MS]), int(attrs[TrialAttr.PARAMS]), int(attrs[TrialAttr.MACS]))
        if candidate is None:
            missing.append(f"{width:g}x")
            continue
        baselines.append(Baseline(width, candidate, evaluation))
    if missing:
        log(f"baselines {', '.join(missing)} left out: their latency needs the LUT and space, which are not here")
    return sorted(baselines, key=lambda b: b.width)


def pick_study_name(storage: optuna.storages.BaseStorage, wanted: str | None, folder: Path | None) -> str:
    names = optuna.get_all_study_names(storage=storage)
    if wanted is not None:
        if wanted not in names:
            raise UserError(f"no study {wanted!r} in the storage (it has {names}): pass one of them with --study")
        return wanted
    if len(names) == 1:
        return names[0]
    if folder is not None and folder.name in names:
        return folder.name
    raise UserError(f"the storage holds {len(names)} studies {names}: pick one with --study")


def load_stored_study(storage_url: str, study_name: str | None, folder: Path | None = None) -> optuna.Study:
    """A study made by ``nas.search``, opened read-only (no stale trial is failed here)."""
    storage = open_storage(storage_url)
    name = pick_study_name(storage, study_name, folder)
    study = optuna.load_study(study_name=name, storage=storage)
    if StudyAttr.SETTINGS not in study.user_attrs:
        raise UserError(f"study {name!r} has no stored settings: it was not made by python -m nas.search")
    return study


def report_inputs(study: optuna.Study, log: Callable[[str], None] = print) -> tuple[dict[str, Any], dict[str, Any], list[Baseline]]:
    """Settings, LUT description and baselines of a study, from its storage (and, for studies
    made before baselines and LUT description were stored, from the LUT when it is here)."""
    settings = study.user_attrs[StudyAttr.SETTINGS]
    lut = try_lut(settings, log)
    info = study.user_attrs.get(StudyAttr.LUT_INFO)
    if info is None and lut is not None:  # a study made before the LUT description was stored
        info = lut_info(lut, settings.get("lut"))
    elif info is None:  # ... and reported without its LUT: estimated LUTs name their engine "estimate from ..."
        fingerprint = settings.get("lut_fingerprint") or {}
        info = fingerprint_info(fingerprint, estimated=str(fingerprint.get("engine", "")).startswith("estimate"))
    baselines = stored_baselines(study, settings["proxy_id"]) or legacy_baselines(study, settings, lut, log)
    return settings, info, baselines


def report_study(folder: Path, storage_url: str, study_name: str | None = None, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Every output of a study, from its storage, into ``folder``."""
    study = load_stored_study(storage_url, study_name, folder)
    settings, info, baselines = report_inputs(study, log)
    return write_report(folder, study, baselines, settings, info)
