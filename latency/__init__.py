"""Latency of architectures on a device: engines, devices, the lookup table (LUT) and its predictor.

``load_lut(path).predict(cfg)`` is the latency model the search uses. The LUT is built by
``python -m latency.build_lut`` and checked by ``python -m latency.validate`` (neither CLI
module, nor the timing agent, is imported here).
"""

from .device_registry import DEVICES, get_device
from .devices import Device, Job
from .engines import ENGINES, Engine, engine_from_settings, get_engine
from .lut import LUT, load_lut
from .lut_format import FORMAT, Fingerprint, LutFile, read_lut_file, write_lut_file
from .machine import machine_fingerprint
from .timing import Measurement, RunPolicy

__all__ = [
    "DEVICES",
    "ENGINES",
    "FORMAT",
    "LUT",
    "Device",
    "Engine",
    "Fingerprint",
    "Job",
    "LutFile",
    "Measurement",
    "RunPolicy",
    "engine_from_settings",
    "get_device",
    "get_engine",
    "load_lut",
    "machine_fingerprint",
    "read_lut_file",
    "write_lut_file",
]
