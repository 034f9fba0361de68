"""Latency of architectures on a device: engines, the lookup table (LUT) and its predictor.

``load_lut(path).predict(cfg)`` is the latency model the search uses. The LUT is built by
``python -m latency.build_lut`` and checked by ``python -m latency.validate`` (neither CLI
module is imported here).
"""

from .agent import ENGINES, Engine, Measurement, RunPolicy, get_engine, machine_fingerprint
from .devices import DEVICES, Device, Job, get_device
from .lut import LUT, load_lut

__all__ = [
    "DEVICES",
    "ENGINES",
    "LUT",
    "Device",
    "Engine",
    "Job",
    "Measurement",
    "RunPolicy",
    "get_device",
    "get_engine",
    "load_lut",
    "machine_fingerprint",
]
