"""RepGhostNet (arXiv 2211.06088) and GhostNet, built from one architecture config."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import BlockConfig, BlockSpec, HeadSpec, NetConfig, PartSpec, StemSpec, make_divisible, part_key
from .counting import Counts, count, count_params
from .export import export_onnx
from .model import RepGhostNet, build, build_part, reparameterize
from .presets import GHOSTNET_WIDTHS, REPGHOST_WIDTHS, ghostnet_config, reference, repghostnet_config

__all__ = [
    "BlockConfig",
    "BlockSpec",
    "HeadSpec",
    "PartSpec",
    "StemSpec",
    "build_part",
    "part_key",
    "Counts",
    "GHOSTNET_WIDTHS",
    "NetConfig",
    "REPGHOST_WIDTHS",
    "RepGhostNet",
    "build",
    "count",
    "count_params",
    "export_onnx",
    "ghostnet_config",
    "load_checkpoint",
    "make_divisible",
    "reference",
    "reparameterize",
    "repghostnet_config",
    "save_checkpoint",
]
