"""Colorization networks, their registry and model folders (``config.json`` + ``model.safetensors``).

Architectures register themselves when their module is imported; this package imports each one
explicitly below (the only place registration happens).
"""

from lumachrome.models.registry import create_model, list_models, register_model
from lumachrome.models import unet as _unet  # noqa: F401  (registers "unet" and its presets)
from lumachrome.models import gan as _gan  # noqa: F401  (registers "resnet_gen", "unet_gen", "patchgan")
from lumachrome.models import effnet as _effnet  # noqa: F401  (registers "effunet")
from lumachrome.models.unet import UNetColorizer, count_flops, count_macs
from lumachrome.models.io import (
    CONFIG_NAME,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    load_model_dir,
    save_model_dir,
)

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "UNetColorizer",
    "WEIGHTS_NAME",
    "count_flops",
    "count_macs",
    "create_model",
    "list_models",
    "load_model_dir",
    "register_model",
    "save_model_dir",
]
