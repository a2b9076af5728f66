"""Training configuration: dataclasses, loaded from YAML/TOML and overridden by CLI flags.

A config file has one table per dataclass::

    data:  {train: [photos/train, photos/extra], val: photos/val, size: 128}
    model: {architecture: unet, head: regression, args: {widths: [32, 64, 128, 256]}}
    optim: {lr: 0.0005, schedule: cosine, warmup_steps: 200}
    train: {steps: 20000, batch_size: 32, loss: l1, out: runs/photo}
    gan:   {gan_loss: lsgan, lambda_cycle: 10}   # only for train.regime pix2pix / cyclegan

Every field can be overridden on the command line as ``--section.field VALUE`` (for example
``--train.steps 500``); a few common ones have short aliases (``--data``, ``--val``, ``--steps``,
``--out``, ...). The resolved configuration is saved into every checkpoint, so a run can be resumed
or exported from its checkpoint alone.

Every number is checked when it is read (:data:`LIMITS`: finite, and in its range), so ``--lr nan``,
``--lr -1`` or ``--train.log_every 0`` is one line at parse time (:class:`~lumachrome.errors.UsageError`
for a flag: exit code 2; ``ConfigError`` for a config file) instead of a traceback during training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE, LINE_AUG_LIMITS
from lumachrome.errors import ConfigError, UsageError

__all__ = [
    "DataConfig",
    "GanConfig",
    "HintsConfig",
    "ModelConfig",
    "OptimConfig",
    "LIMITS",
    "RunConfig",
    "TrainConfig",
    "CROPS",
    "GAN_LOSSES",
    "GENERATORS",
    "add_config_arguments",
    "check_flags",
    "config_from_args",
    "load_config_file",
    "validate_gan_config",
]

LOSSES = ("l1", "huber", "l2", "ce")
SCHEDULES = ("cosine", "constant", "linear")


@dataclass
class DataConfig:
    """Where images come from and how they are cropped."""

    train: list[str] = field(default_factory=list)  # folders of colour images (recursive)
    pack: list[str] = field(default_factory=list)  # pre-decoded packs (lumachrome data pack)
    val: str | None = None  # a folder of colour images for per-epoch validation
    size: int = 128  # training crop size
    val_size: int = 128  # validation centre-crop size
    val_images: int = 64  # number of validation images used each epoch
    min_scale: float = 0.35  # random-resized crop: smallest area fraction
    flip: bool = True
    workers: int = 2  # DataLoader workers for folder datasets
    max_files: int | None = None  # cap on folder images (quick experiments)
    val_pack: str | None = None  # a paired domain pack for validation of image-to-image runs (train.regime pix2pix/cyclegan)
    line_aug: bool = False  # pix2pix on line art (A channel "line"): random line thickness, jitter and darkness on A only
    line_thickness: float = 1.0  # line_aug: max change of the line half-width, px (0.5 px steps, thinner or thicker)
    line_shift: float = 2.0  # line_aug: max offset of the line image against its colours, px per axis
    line_elastic: float = 1.0  # line_aug: max amplitude of a smooth random displacement of the lines, px
    line_darkness: float = 0.3  # line_aug: the ink keeps between 1 - this and all of its darkness
    line_gamma: float = 1.5  # line_aug: paper values p -> p ** g, g in [1/this, this]


@dataclass
class ModelConfig:
    """Which registered architecture to build (see ``lumachrome.models``)."""

    architecture: str = "unet"
    head: str = "regression"  # "regression" (ab) or "classification" (ab-bin logits)
    args: dict[str, Any] = field(default_factory=dict)  # factory arguments (the architecture's defaults if empty)
    temperature: float = ANNEALED_MEAN_TEMPERATURE  # annealed-mean T used when decoding classification models
    rebalance_lambda: float = 0.5  # Zhang et al. 2016, Eq. 4
    prior_images: int = 2000  # images used to estimate the empirical ab prior
    init: str | None = None  # start from the weights of a model folder or model .safetensors (fine-tuning)
    init_skip: list[str] = field(default_factory=lambda: ["head.", "ab_centers", "prior"])  # left freshly initialised
    pretrained: bool = False  # load the architecture's pretrained encoder (effunet: ImageNet EfficientNet-Lite) before init


@dataclass
class OptimConfig:
    """AdamW with warm-up and a decay schedule."""

    lr: float = 5e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    ema: float = 0.999  # EMA decay of the weights (0 disables)
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes that are not trained (e.g. encoder.)
    lr_mult: dict[str, float] = field(default_factory=dict)  # prefix -> learning-rate multiplier (e.g. {encoder.: 0.1})


@dataclass
class TrainConfig:
    """The loop: length, loss, logging and checkpointing."""

    out: str = "runs/run"
    steps: int = 1000
    batch_size: int = 16
    loss: str = "l1"
    huber_delta: float = 0.05  # in network ab units (ab / 110)
    perceptual: float = 0.0  # weight of a feature loss on the RGB result (frozen ImageNet EfficientNet-Lite0), 0: off
    rebalance: bool = False  # regression losses: weight each pixel by its true colour's rebalancing weight (model.rebalance_lambda)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (AMX / AVX512-BF16), see lumachrome.precision
    channels_last: bool = True  # channels-last tensors where bf16 autocast runs (CUDA, bf16 CPUs)
    log_every: int = 20
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    epoch_steps: int | None = None  # steps per "epoch" (validation + sample grid); default: one pass
    samples: int = 8  # images in the per-epoch sample grid
    progress: bool = True
    name: str = "model"
    regime: str = "supervised"  # supervised, pix2pix, cyclegan (lumachrome.train.gan) or hints (lumachrome.train.hints)


@dataclass
class GanConfig:
    """The adversarial regimes (``train.regime`` pix2pix / cyclegan, see ``lumachrome.train.gan``)."""

    gan_loss: str = "vanilla"  # vanilla (non-saturating BCE), lsgan or hinge
    lambda_gan: float = 1.0  # weight of the adversarial term (pix2pix with 0: the L1-only baseline, no D)
    lambda_l1: float = 100.0  # pix2pix: weight of the L1 term (Isola et al. 2017, Eq. 4: lambda = 100)
    lambda_cycle: float = 10.0  # CycleGAN: weight of each cycle-consistency term
    lambda_identity: float = 0.5  # CycleGAN: identity weight as a fraction of lambda_cycle (same channel counts only)
    pool_size: int = 50  # CycleGAN: history of generated images shown to the discriminators (0 disables)
    d_layers: int = 3  # PatchGAN stride-2 layers (3: 70x70 patches)
    d_width: int = 64
    d_norm: str = "instance"
    d_lr: float | None = None  # discriminator learning rate (default optim.lr)
    d_warmup: int = 0  # first steps: the discriminator trains, the generator sees no adversarial term
    decay_start: float = 0.5  # fraction of train.steps at constant LR, then linear decay to 0 (CycleGAN)
    crop: str = "random"  # domain packs: random (integer offsets) or resized (random-resized) crops


@dataclass
class HintsConfig:
    """The hint fine-tuning regime (``train.regime`` hints, see ``lumachrome.train.hints``)."""

    init: str | None = None  # plain model folder the hint model is widened from (None: from scratch)
    seed: int = 1  # seed of the simulated-hint sampler
    zero_share: float = 0.2  # share of training images without hints


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    hints: HintsConfig = field(default_factory=HintsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> RunConfig:
        cfg = cls()
        for section, value in (d or {}).items():
            if section not in _SECTIONS:
                raise ConfigError(f"{where}: unknown section '{section}' (expected {', '.join(_SECTIONS)})")
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: section '{section}' must be a table/mapping")
            sub = getattr(cfg, section)
            for key, v in value.items():
                _set_field(sub, section, key, v, where)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.train.loss not in LOSSES:
            raise ConfigError(f"train.loss: '{self.train.loss}' is not one of {', '.join(LOSSES)}")
        if self.optim.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule: '{self.optim.schedule}' is not one of {', '.join(SCHEDULES)}")
        if self.model.head not in ("regression", "classification"):
            raise ConfigError(f"model.head: '{self.model.head}' must be regression or classification")
        if (self.train.loss == "ce") != (self.model.head == "classification"):
            raise ConfigError("train.loss 'ce' goes with model.head 'classification' (and only with it)")
        for name in LIMITS:
            section, key = name.split(".", 1)
            check_value(name, getattr(getattr(self, section), key))
        if len(self.optim.betas) != 2:
            raise ConfigError(f"optim.betas: expected two numbers, got {self.optim.betas!r}")
        for prefix, mult in self.optim.lr_mult.items():
            if not isinstance(mult, (int, float)) or isinstance(mult, bool) or not 0 <= float(mult) < float("inf"):
                raise ConfigError(f"optim.lr_mult: {prefix!r}: must be a finite number >= 0, got {mult!r}")
        if self.train.regime not in REGIMES:
            raise ConfigError(f"train.regime: '{self.train.regime}' is not one of {', '.join(REGIMES)}")
        if self.train.regime in ("pix2pix", "cyclegan"):
            validate_gan_config(self)
        if self.data.line_aug and self.train.regime != "pix2pix":
            raise ConfigError(f"data.line_aug: only for paired line-art training (train.regime pix2pix), "
                              f"not {self.train.regime}")
        if self.train.regime == "hints" and self.model.head != "regression":
            raise ConfigError("train.regime hints: model.head must be regression (hint models predict ab)")


REGIMES = ("supervised", "pix2pix", "cyclegan", "hints")

GAN_LOSSES = ("vanilla", "lsgan", "hinge")
#: Image-to-image generators (``A -> B`` on domain packs); any other architecture is an ``L -> ab`` colorizer.
GENERATORS = ("resnet_gen", "unet_gen", "effunet_gen")
CROPS = ("random", "resized")


def validate_gan_config(cfg: RunConfig) -> None:
    """ConfigError for inconsistent ``gan`` options (called by ``RunConfig.validate`` for the GAN regimes,
    :mod:`lumachrome.train.gan`)."""
    g = cfg.gan
    if g.gan_loss not in GAN_LOSSES:
        raise ConfigError(f"gan.gan_loss: '{g.gan_loss}' is not one of {', '.join(GAN_LOSSES)}")
    for name in ("lambda_gan", "lambda_l1", "lambda_cycle", "lambda_identity"):
        if getattr(g, name) < 0:
            raise ConfigError(f"gan.{name}: must be >= 0, got {getattr(g, name)}")
    if g.pool_size < 0 or g.d_layers < 1 or g.d_width < 1 or g.d_warmup < 0:
        raise ConfigError("gan.pool_size and gan.d_warmup must be >= 0, gan.d_layers and gan.d_width >= 1")
    from lumachrome.models.gan import GAN_NORMS

    if g.d_norm not in GAN_NORMS:
        raise ConfigError(f"gan.d_norm: '{g.d_norm}' is not one of {', '.join(GAN_NORMS)}")
    if not 0 <= g.decay_start <= 1:
        raise ConfigError(f"gan.decay_start: must be in [0, 1], got {g.decay_start}")
    if g.crop not in CROPS:
        raise ConfigError(f"gan.crop: '{g.crop}' is not one of {', '.join(CROPS)}")
    if g.d_lr is not None and g.d_lr <= 0:
        raise ConfigError(f"gan.d_lr: must be > 0, got {g.d_lr}")
    translate = cfg.model.architecture in GENERATORS
    if cfg.train.regime == "cyclegan" and not translate:
        raise ConfigError(f"train.regime cyclegan: model.architecture must be one of {', '.join(GENERATORS)}, "
                          f"got '{cfg.model.architecture}'")
    if cfg.train.regime == "pix2pix" and g.lambda_gan == 0 and g.lambda_l1 == 0:
        raise ConfigError("train.regime pix2pix: gan.lambda_gan and gan.lambda_l1 are both 0 (nothing to train)")
    if not translate and cfg.model.head != "regression":
        raise ConfigError("train.regime pix2pix colorization needs model.head regression (the discriminator judges ab)")


#: Ranges of the numeric options: ``(low, high, low_open, high_open)``, None for no bound. Every float
#: must also be finite; a list (``optim.betas``) is checked item by item.
LIMITS: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "data.size": (1, None, False, False),
    "data.val_size": (1, None, False, False),
    "data.val_images": (0, None, False, False),
    "data.min_scale": (0, 1, True, False),
    "data.workers": (0, None, False, False),
    "data.max_files": (1, None, False, False),
    # data.line_*: the ranges LineAugment checks (lumachrome.constants.LINE_AUG_LIMITS)
    **{f"data.line_{k}": (lo, hi, False, False) for k, (lo, hi) in LINE_AUG_LIMITS.items() if k != "elastic_cells"},
    "model.temperature": (0, None, True, False),
    "model.rebalance_lambda": (0, 1, False, False),
    "model.prior_images": (1, None, False, False),
    "optim.lr": (0, None, True, False),
    "optim.weight_decay": (0, None, False, False),
    "optim.betas": (0, 1, False, True),
    "optim.warmup_steps": (0, None, False, False),
    "optim.min_lr_ratio": (0, 1, False, False),
    "optim.grad_clip": (0, None, False, False),
    "optim.ema": (0, 1, False, True),
    "train.steps": (1, None, False, False),
    "train.batch_size": (1, None, False, False),
    "train.huber_delta": (0, None, True, False),
    "train.perceptual": (0, None, False, False),
    "train.log_every": (1, None, False, False),
    "train.ckpt_every": (1, None, False, False),
    "train.keep_checkpoints": (0, None, False, False),
    "train.epoch_steps": (1, None, False, False),
    "train.samples": (1, None, False, False),
    "gan.lambda_gan": (0, None, False, False),
    "gan.lambda_l1": (0, None, False, False),
    "gan.lambda_cycle": (0, None, False, False),
    "gan.lambda_identity": (0, None, False, False),
    "gan.pool_size": (0, None, False, False),
    "gan.d_layers": (1, None, False, False),
    "gan.d_width": (1, None, False, False),
    "gan.d_lr": (0, None, True, False),
    "gan.d_warmup": (0, None, False, False),
    "gan.decay_start": (0, 1, False, False),
    "hints.zero_share": (0, 1, False, False),
}


def _describe(limits: tuple[float | None, float | None, bool, bool]) -> str:
    lo, hi, lo_open, hi_open = limits
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


def check_value(name: str, value: Any) -> None:
    """ConfigError (one line) unless ``value`` of option ``name`` is finite and within :data:`LIMITS`."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            check_value(name, v)
        return
    if not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ConfigError(f"{name}: must be a finite number, got {value!r}")
    limits = LIMITS.get(name)
    if limits is None:
        return
    lo, hi, lo_open, hi_open = limits
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or \
          (hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        raise ConfigError(f"{name}: must be {_describe(limits)}, got {value!r}")
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": TrainConfig,
             "gan": GanConfig, "hints": HintsConfig}


def _coerce(value: Any, tp: Any, what: str) -> Any:
    """Convert ``value`` (from YAML/TOML or a CLI string) to the annotated type ``tp``."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is type(None) or tp is type(None):
        return None
    # Optional[X] / X | None
    if args and type(None) in args and origin is not list and origin is not dict:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, what)
    if origin is list:
        (inner,) = args or (Any,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""] if not value.startswith("[") else json.loads(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(v, inner, what) for v in value]
    if origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{what}: expected a JSON object, got {value!r}") from e
        if not isinstance(value, dict):
            raise ConfigError(f"{what}: expected a mapping, got {value!r}")
        return dict(value)
    try:
        if tp is bool:
            if isinstance(value, str):
                low = value.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if tp is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if tp is float:
            f = float(value)
            if not math.isfinite(f):
                raise ConfigError(f"{what}: must be a finite number, got {value!r}")
            return f
        if tp is str:
            return str(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{what}: cannot read {value!r} as {getattr(tp, '__name__', tp)}") from e
    return value


def _set_field(obj: Any, section: str, key: str, value: Any, where: str) -> None:
    hints = get_type_hints(type(obj))
    if key not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(obj))
        raise ConfigError(f"{where}: unknown option '{section}.{key}' (known: {known})")
    value = _coerce(value, hints[key], f"{section}.{key}")
    check_value(f"{section}.{key}", value)
    setattr(obj, key, value)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) config file into a nested dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            return tomllib.loads(text)
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        if p.suffix.lower() == ".json":
            return json.loads(text)
    except Exception as e:  # parser errors carry line numbers; keep them on one line
        raise ConfigError(f"{p}: invalid config file: {str(e).splitlines()[0]}") from e
    raise ConfigError(f"{p}: unknown config format (use .yaml, .yml, .toml or .json)")


# Short aliases for the most used options: alias -> (section, field).
_ALIASES = {
    "data": ("data", "train"),
    "val": ("data", "val"),
    "pack": ("data", "pack"),
    "size": ("data", "size"),
    "arch": ("model", "architecture"),
    "head": ("model", "head"),
    "lr": ("optim", "lr"),
    "steps": ("train", "steps"),
    "batch-size": ("train", "batch_size"),
    "loss": ("train", "loss"),
    "out": ("train", "out"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "name": ("train", "name"),
}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--section.field`` for every config field and the short aliases."""
    group = parser.add_argument_group("configuration (override the config file)")
    for alias, (section, key) in _ALIASES.items():
        nargs = "+" if (section, key) in (("data", "train"), ("data", "pack")) else None
        group.add_argument(f"--{alias}", dest=f"cfg:{section}.{key}", nargs=nargs, default=None,
                           metavar=key.upper(), help=f"alias of --{section}.{key}")
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            tp = get_type_hints(cls)[f.name]
            nargs = "+" if get_origin(tp) is list else None
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            group.add_argument(f"--{section}.{f.name}", dest=f"cfg:{section}.{f.name}", nargs=nargs,
                               default=None, metavar="V", help=f"default: {default!r}")


def _flag_names(section: str, key: str) -> str:
    aliases = [f"--{a}" for a, target in _ALIASES.items() if target == (section, key)]
    return "/".join(aliases + [f"--{section}.{key}"])


def check_flags(ns: argparse.Namespace) -> None:
    """Check every ``--section.field`` value of a parsed namespace on its own (type, finite, range):
    :class:`UsageError` (exit code 2) naming the flag, before any file or data is read."""
    for dest, value in vars(ns).items():
        if not dest.startswith("cfg:") or value is None:
            continue
        section, key = dest[4:].split(".", 1)
        cls = _SECTIONS[section]
        try:
            _set_field(cls(), section, key, value, "config")
        except ConfigError as e:
            reason = str(e).split(": ", 1)[-1]
            raise UsageError(f"train: argument {_flag_names(section, key)}: {reason}") from None


def config_from_args(ns: argparse.Namespace, base: dict[str, Any] | None = None) -> RunConfig:
    """Merge a parsed namespace (from :func:`add_config_arguments`) over ``base`` (a config dict).
    A bad flag value is a :class:`UsageError`; a bad config file value a ``ConfigError``."""
    check_flags(ns)
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (base or {}).items() if isinstance(v, dict)}
    for k, v in (base or {}).items():
        if not isinstance(v, dict):
            raise ConfigError(f"config: section '{k}' must be a table/mapping")
    for dest, value in vars(ns).items():
        if not dest.startswith("cfg:") or value is None:
            continue
        section, key = dest[4:].split(".", 1)
        merged.setdefault(section, {})[key] = value
    return RunConfig.from_dict(merged, where="config")
