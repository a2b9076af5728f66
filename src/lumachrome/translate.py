"""Inference for exported image-to-image models (pix2pix / CycleGAN): line art, NIR, thermal -> RGB.

::

    from lumachrome.translate import Translator

    tr = Translator.load("nir")                        # a shipped name or a model folder
    rgb = tr.translate_array(nir)                      # (H, W) -> uint8 (H, W, 3)
    tr.translate_file("scene.tif", "scene_rgb.tif")    # GeoTIFF in -> GeoTIFF out, same CRS/transform

A model folder for this module has ``config["task"] == "translate"`` and (written by
``lumachrome export`` of a pix2pix/CycleGAN run)::

    "domain": "nir", "input": {"channels": ["nir"], "range": [-1, 1]},
    "output": {"space": "rgb", "range": [-1, 1]}, "preprocessing": {"size": 128}

The network maps ``(B, Ca, h, w)`` in ``[-1, 1]`` (``uint8 / 127.5 - 1``, as the domain packs) to
RGB ``(B, 3, h, w)`` in ``[-1, 1]``. Optional ``config["inference"]`` keys override the per-domain
defaults of :data:`DOMAIN_DEFAULTS`.

Full-resolution inputs of any size (the strategy per domain)
-----------------------------------------------------------
* ``tile`` (``nir``; satellite scenes have a physical scale: a 10 m pixel must stay a 10 m pixel):
  the network runs at native resolution on ``tile x tile`` windows (default the training crop,
  ``preprocessing.size``) that overlap by ``overlap`` px (default ``tile // 4``); each tile's output
  is weighted by a linear ramp over the overlap (no ramp at the image border) and the weighted mean
  is written, so seams do not show. Tiles are processed one row of tiles at a time and finished
  rows are written out at once; a GeoTIFF is read and written window by window, so memory is
  ``O(tile x width)`` whatever the height.
* ``resize`` (``sketch``, ``thermal``): the whole image is resized to a *working size* at the scale
  the model was trained at, translated in one pass (the generators are fully convolutional and
  pad to their multiple), and the RGB result is resized back to full resolution (bicubic).
  Memory beyond the uint8 input and output is bounded by the working size (``max_side``, default
  1024 px). The scale:

  - ``thermal``: the short side becomes ``short_side`` (default ``preprocessing.size``), as the
    RoadScene frames were packed (short side -> S);
  - ``sketch``: lines are made about ``line_width`` px wide (default 3.0, the median width of the
    OpenMoji training lines at 96 px, measured with :func:`estimate_line_width`); when no line is
    found, the long side becomes ``2 * preprocessing.size``. At full resolution the input's own
    dark lines are multiplied back over the colour (``overlay_lines``), so the lines stay as
    crisp as drawn.

Inputs: 1-channel models take the luminance of RGB inputs (Rec. 601). ``nir`` inputs are
stretched per band from their 2nd/98th percentile (computed on the whole image, from a decimated
read for GeoTIFFs) as in the packs (:mod:`lumachrome.data.domains`); pass ``bands=[4]`` or
``bands=["nir"]`` for multi-band GeoTIFFs. A GeoTIFF input written to ``.tif`` gives a GeoTIFF
with the same CRS and transform; if the input has no-data (a no-data value, a mask or NaN),
those pixels are 0 in the output, valid pixels are at least 1, and the output's no-data is 0.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from lumachrome.constants import REC601_LUMA
from lumachrome.errors import ConfigError, ImageError, LumachromeWarning, ModelError
from lumachrome.models.io import ModelFolder, load_model_dir, open_model
from lumachrome.precision import inference_autocast, resolve_device

__all__ = ["DOMAIN_DEFAULTS", "Translator", "estimate_line_width", "is_translate_model"]

#: Inference defaults per domain (override with ``config["inference"]`` or :meth:`Translator.load`).
DOMAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "sketch": {"mode": "resize", "scale": "line_width", "line_width": 3.0, "overlay_lines": True,
               "max_side": 1024, "stretch": None},
    "thermal": {"mode": "resize", "scale": "short_side", "overlay_lines": False, "max_side": 1024,
                "stretch": None},
    "nir": {"mode": "tile", "overlay_lines": False, "stretch": [2.0, 98.0]},
}  # fmt: skip
_GENERIC = {"mode": "resize", "scale": "short_side", "overlay_lines": False, "max_side": 1024, "stretch": None}
_NIR_NAMES = ("nir", "near infrared", "near-infrared", "nir08", "b08", "b8", "b5_nir", "infrared")
_ROWS_PER_CHUNK = 512
#: GDAL block cache while translating a GeoTIFF (MB).
GDAL_CACHE_MB = 32


def is_translate_model(name_or_dir: str | os.PathLike[str]) -> bool:
    """True when ``name_or_dir`` (a shipped name or folder) is an image-to-image model
    (``config["task"] == "translate"``); False for colorizers and for anything unreadable."""
    try:
        return open_model(name_or_dir).task == "translate"
    except (ModelError, OSError):
        return False


def estimate_line_width(gray: np.ndarray, threshold: int = 128, max_pixels: int = 4_000_000) -> float | None:
    """Typical width (px) of the dark strokes in a line drawing, or None when there are too few.

    ``2 * dark pixels / dark boundary pixels`` (a stroke of width w and length L has ``w L`` pixels
    and ``2 L`` boundary pixels); 2 for 1-2 px lines. Measured on a centre crop of at most
    ``max_pixels``.
    """
    g = np.asarray(gray)
    h, w = g.shape[:2]
    if h * w > max_pixels:
        side = int(math.sqrt(max_pixels))
        ch, cw = min(h, side), min(w, max_pixels // min(h, side))
        g = g[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
    dark = (g < threshold).astype(np.uint8)
    n = int(dark.sum())
    if n < 50 or n > 0.6 * dark.size:
        return None
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    inner = int(cv2.erode(dark, cross, borderType=cv2.BORDER_CONSTANT, borderValue=0).sum())
    return 2.0 * n / max(1, n - inner)


def _luma(f: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of a float ``(h, w, >=3)`` RGB image (``(h, w)``, float32)."""
    return f[:, :, 0] * REC601_LUMA[0] + f[:, :, 1] * REC601_LUMA[1] + f[:, :, 2] * REC601_LUMA[2]


def _ramp(n: int, overlap: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    """1-D blending weights: a linear ramp over ``overlap`` px at tapered ends, 1 elsewhere (> 0)."""
    w = np.ones(n, dtype=np.float32)
    if overlap > 0:
        i = np.arange(n, dtype=np.float32)
        if taper_start:
            w = np.minimum(w, (i + 0.5) / overlap)
        if taper_end:
            w = np.minimum(w, (n - i - 0.5) / overlap)
    return w


class Translator:
    """An exported image-to-image generator ready for inference on arrays and files.

    Args:
        model: ``(B, Ca, h, w)`` -> ``(B, 3, h, w)``, both in ``[-1, 1]``.
        config: the model folder's ``config.json``.
        device: ``"auto"`` (CUDA when available, as for Colorizer), ``"cpu"``, ``"cuda"``, ``"cuda:N"``...
        size: override: the working long side (``resize`` mode) or the tile side (``tile`` mode).
        **options: override ``mode``, ``tile``, ``overlap``, ``overlay_lines``, ``max_side``,
            ``short_side``, ``line_width``, ``stretch`` (see the module doc).
    """

    def __init__(
        self, model: nn.Module, config: dict[str, Any], device: str | torch.device = "auto", *, size: int | None = None,
        **options: Any,
    ) -> None:  # fmt: skip
        self.config = dict(config)
        self.device = resolve_device(device)
        # The precision policy of Colorizer (lumachrome.precision.inference_autocast: bf16 on CUDA, float32
        # on the CPU), but the contiguous layout: channels-last changes these generators' CPU outputs.
        self.model = model.to(self.device).eval()
        self.domain = str(self.config.get("domain") or "")
        self.name = str(self.config.get("name") or self.domain or "model")
        inp = self.config.get("input") or {}
        args = self.config.get("args") or {}
        self.in_channels = int(args.get("in_channels") or len(inp.get("channels") or [1]) or 1)
        self.channels = list(inp.get("channels") or ["gray"] * self.in_channels)
        pre = self.config.get("preprocessing") or {}
        self.train_size = int(pre.get("size") or 128)
        opts = dict(DOMAIN_DEFAULTS.get(self.domain, _GENERIC))
        opts.setdefault("tile", self.train_size)
        opts.setdefault("short_side", self.train_size)
        opts.update(self.config.get("inference") or {})
        opts.update({k: v for k, v in options.items() if v is not None})
        unknown = sorted(set(opts) - {"mode", "scale", "line_width", "overlay_lines", "max_side", "stretch", "tile",
                                      "overlap", "short_side"})  # fmt: skip
        if unknown:
            raise ConfigError(f"translate: unknown option(s) {unknown}")
        if opts["mode"] not in ("tile", "resize"):
            raise ConfigError(f"translate: mode must be 'tile' or 'resize', got {opts['mode']!r}")
        self.multiple = max(1, int(getattr(model, "multiple", 1) or 1))
        if size is not None:
            if int(size) < 8:
                raise ConfigError(f"translate: size must be >= 8, got {size}")
            opts["tile" if opts["mode"] == "tile" else "long_side"] = int(size)
        opts.setdefault("overlap", int(opts["tile"]) // 4)
        if not 0 <= int(opts["overlap"]) < int(opts["tile"]):
            raise ConfigError(f"translate: overlap {opts['overlap']} must be in [0, tile={opts['tile']})")
        self.options = opts

    # ---------------------------------------------------------------- construction
    @classmethod
    def load(cls, name_or_dir: str | os.PathLike[str], device: str | torch.device = "auto", **kwargs: Any) -> "Translator":
        """Load a shipped model (``lumachrome/weights/<name>``) or a model folder whose config has
        ``task: translate``. ``kwargs`` go to :class:`Translator` (``size``, ``mode``, ``tile``...).

        Raises:
            ModelError: unknown name, not a model folder, not a translation model, weights that do
                not match the config.
        """
        return cls.from_folder(open_model(name_or_dir).require("translate"), device, **kwargs)

    @classmethod
    def from_folder(cls, model: ModelFolder, device: str | torch.device = "auto", **kwargs: Any) -> "Translator":
        """The translator of an opened model folder (:func:`lumachrome.models.io.open_model`; its config is
        not read again): the shared load path of :meth:`load` and :func:`lumachrome.pipeline.load_pipeline`.
        Arguments and errors as :meth:`load`."""
        out_space = (model.config.get("output") or {}).get("space", "rgb")
        if out_space != "rgb":
            raise ModelError(f"{model.path}: output space {out_space!r} is not supported (rgb only)")
        dev = resolve_device(device)
        network, config = load_model_dir(model.path, device=str(dev), config=dict(model.config))
        config.setdefault("name", model.path.name)
        return cls(network, config, dev, **kwargs)

    def __repr__(self) -> str:
        return f"Translator({self.name!r}, domain={self.domain!r}, mode={self.options['mode']!r}, device={self.device})"

    @property
    def supports_flat(self) -> bool:
        """Whether :meth:`translate_array` takes ``flat=True``: line-art (``sketch``) models."""
        return self.domain == "sketch"

    def check_flat(self) -> None:
        """Raise ``ConfigError`` (one line) unless this model supports flat fill."""
        if not self.supports_flat:
            raise ConfigError(f"flat fill is for line-art (sketch) models; {self.name!r} is a {self.domain or 'generic'} model")

    # ---------------------------------------------------------------- network
    @torch.inference_mode()
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Network on a float32 batch ``(B, Ca, h, w)`` in ``[-1, 1]`` -> float32 ``(B, 3, h, w)`` in ``[0, 1]``."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        with inference_autocast(self.device):
            y = self.model(t)
        if y.shape[1] != 3 or y.shape[-2:] != t.shape[-2:]:
            raise ModelError(f"{self.name}: network returned {tuple(y.shape)} for input {tuple(t.shape)} (expected 3 channels, same size)")
        return ((y.float().clamp(-1.0, 1.0) + 1.0) * 0.5).cpu().numpy()

    # ---------------------------------------------------------------- inputs
    def _to_channels(self, image: np.ndarray) -> np.ndarray:
        """uint8/uint16/float image -> float32 ``(Ca, H, W)`` in [0, 1] (luminance for 1-channel models)."""
        a = np.asarray(image)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3:
            raise ImageError(f"translate: expected an (H, W) or (H, W, C) image, got shape {a.shape}")
        if a.dtype == np.uint8:
            f = a.astype(np.float32) * np.float32(1 / 255)
        elif a.dtype == np.uint16:
            f = a.astype(np.float32) * np.float32(1 / 65535)
        elif a.dtype.kind == "f":
            f = a.astype(np.float32, copy=False)
        else:
            raise ImageError(f"translate: unsupported dtype {a.dtype}")
        c = f.shape[2]
        if c == self.in_channels:
            return np.ascontiguousarray(f.transpose(2, 0, 1))
        if self.in_channels == 1 and c in (3, 4):
            g = _luma(f)
            return g[None].astype(np.float32)
        if self.in_channels == 3 and c == 1:
            return np.repeat(f.transpose(2, 0, 1), 3, axis=0)
        raise ImageError(f"translate: the model takes {self.in_channels} channel(s) {self.channels}, the image has {c}")

    def _stretch_limits(self, x: np.ndarray, valid: np.ndarray | None) -> list[tuple[float, float]] | None:
        st = self.options.get("stretch")
        if not st:
            return None
        from lumachrome.geo import percentile_limits

        step = max(1, int(math.sqrt(x.shape[1] * x.shape[2] / 1_000_000)))
        sub = x[:, ::step, ::step]
        v = None if valid is None else valid[::step, ::step]
        return percentile_limits(sub, v, float(st[0]), float(st[1]))

    @staticmethod
    def _apply_limits(x: np.ndarray, limits: Sequence[tuple[float, float]] | None) -> np.ndarray:
        if limits is None:
            return x
        out = np.empty(x.shape, dtype=np.float32)
        for c, (lo, hi) in enumerate(limits):
            span = hi - lo if hi - lo > 1e-12 else 1.0
            # no-data NaN -> 0: a NaN reaching the network spreads through its convolutions into
            # the valid pixels around it (and numpy warns when casting the result)
            out[c] = np.nan_to_num(np.clip((x[c] - lo) / span, 0.0, 1.0), nan=0.0)
        # as the packs: stretched values are stored as uint8
        return np.rint(out * 255.0) / 255.0

    # ---------------------------------------------------------------- arrays
    def translate_array(
        self, image: np.ndarray, *, valid: np.ndarray | None = None, stretch: bool = True, flat: bool | str = False,
        where: str | None = None, notes: list[str] | None = None,
    ) -> np.ndarray:
        """Translate one image: ``(H, W)`` or ``(H, W, C)`` uint8/uint16/float ``[0, 1]`` (raw values for
        stretched domains) -> uint8 ``(H, W, 3)`` RGB at the input's resolution.

        ``flat=True`` (``sketch`` models only): one flat colour per closed region between the lines,
        lines kept as drawn (:func:`lumachrome.flatfill.flat_fill` on the full-resolution output), when
        the drawing is clean line art (:func:`lumachrome.flatfill.is_clean_line_art`); for a cluttered
        one (an edge map of a photo) the network's own colours are returned (without the lines
        multiplied over them) and a :class:`~lumachrome.errors.LumachromeWarning` says so (``where``
        names the input in it; with a ``notes`` list the line is appended there instead).
        ``flat="always"`` fills every drawing.

        ``valid``: optional ``(H, W)`` bool mask (False: no-data; those output pixels are 0).
        ``stretch=False``: the input is already stretched (skip the domain's percentile stretch).
        """
        a = np.asarray(image)
        if a.ndim not in (2, 3) or min(a.shape[:2]) < 1:
            raise ImageError(f"translate: expected an (H, W) or (H, W, C) image, got shape {a.shape}")
        H, W = a.shape[:2]
        if valid is not None and valid.shape != (H, W):
            raise ImageError(f"translate: mask {valid.shape} does not match the image {(H, W)}")
        # gray_u8: the drawing's luminance, computed once for the clutter check and the flat fill (or the overlay)
        fill, gray_u8 = self._flat_applies(a, flat, where, notes)
        fallback = bool(flat) and not fill  # asked for flat colours, but the drawing is an edge map
        if self.options["mode"] == "tile":
            x = self._to_channels(a)
            if stretch:
                x = self._apply_limits(x, self._stretch_limits(x, valid))
            out = np.empty((H, W, 3), dtype=np.uint8)

            def read(r0: int, r1: int) -> np.ndarray:
                return x[:, r0:r1]

            def write(r0: int, rows: np.ndarray) -> None:
                out[r0 : r0 + rows.shape[0]] = rows

            self._run_tiled(read, H, W, write)
            if fill:
                from lumachrome.flatfill import flat_fill

                out = flat_fill(gray_u8, out)
        else:
            # a drawing too cluttered to fill: the network's colours without the lines multiplied over them (the
            # dense strokes of an edge map darken it: -0.8 to -1.2 dB on the sketch hold-out's edge maps)
            out = self._run_resized(a, valid, stretch, flat=fill, overlay=not fallback, gray_u8=gray_u8)
        if valid is not None and not valid.all():
            np.maximum(out, 1, out=out)
            out[~valid] = 0
        return out

    def _flat_applies(self, a: np.ndarray, flat: bool | str, where: str | None,
                      notes: list[str] | None) -> tuple[bool, np.ndarray | None]:  # fmt: skip
        """Whether ``translate_array(flat=...)`` fills the image ``a`` (see there), and its uint8 luminance when
        flat colours were asked for (else None); warns when it falls back."""
        if flat not in (False, None, True, "auto", "always"):
            raise ConfigError(f"flat: use True, 'auto', 'always' or False, got {flat!r}")
        if not flat:
            return False, None
        self.check_flat()
        gray_u8 = self._gray_u8(a)
        if flat == "always":
            return True, gray_u8
        from lumachrome.flatfill import MAX_CLUTTER, line_art_clutter

        clutter = line_art_clutter(gray_u8)
        if clutter <= MAX_CLUTTER:
            return True, gray_u8
        msg = (f"flat fill skipped, the network's colours kept: {clutter:.0%} of the paper lies next to a line (clean "
               f"line art: <= {MAX_CLUTTER:.0%}), so this looks like an edge map of a photo, which closes too few regions to fill")
        if notes is not None:
            notes.append(msg)
        else:
            warnings.warn(f"{where or 'drawing'}: {msg}", LumachromeWarning, stacklevel=3)
        return False, gray_u8

    def _working_shape(self, H: int, W: int, line_source: np.ndarray | None) -> tuple[int, int]:
        o = self.options
        if o.get("long_side"):
            scale = int(o["long_side"]) / max(H, W)
        elif o.get("scale") == "line_width":
            width = None if line_source is None else estimate_line_width(line_source)
            scale = float(o.get("line_width", 3.0)) / width if width else 2 * self.train_size / max(H, W)
            scale = min(scale, 2.0)
        else:  # short side
            scale = int(o.get("short_side") or self.train_size) / min(H, W)
        max_side = int(o.get("max_side") or 1024)
        scale = min(scale, max_side / max(H, W))
        scale = max(scale, 16 / min(H, W))
        return max(16, round(H * scale)), max(16, round(W * scale))

    @staticmethod
    def _gray_u8(a: np.ndarray) -> np.ndarray:
        """uint8 ``(H, W)`` luminance of an ``(H, W[, C])`` image, in row chunks (1 byte per pixel;
        a uint8 ``(H, W)`` image is returned as is)."""
        if a.dtype == np.uint8 and a.ndim == 2:
            return a
        g = np.empty(a.shape[:2], dtype=np.uint8)
        for r0 in range(0, a.shape[0], _ROWS_PER_CHUNK):
            c = a[r0 : r0 + _ROWS_PER_CHUNK]
            if a.dtype == np.uint8 and (c.ndim == 2 or c.shape[2] == 1):
                g[r0 : r0 + len(c)] = c.reshape(c.shape[:2])
                continue
            f = c.astype(np.float32) * np.float32(1 / 255 if a.dtype == np.uint8 else 1 / 65535 if a.dtype == np.uint16 else 1)
            if f.ndim == 3:
                f = _luma(f) if f.shape[2] >= 3 else f[:, :, 0]
            g[r0 : r0 + len(c)] = np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)
        return g

    def _run_resized(self, a: np.ndarray, valid: np.ndarray | None, stretch: bool, flat: bool = False,
                     overlay: bool = True, gray_u8: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Working size + upsample. The input is shrunk *before* any float conversion: besides the
        input and the uint8 output, full-resolution memory is one uint8 plane (line width, overlay)
        (``flat``: plus the flat fill's label and float planes). ``overlay=False``: never multiply the
        lines over the output (``overlay_lines`` notwithstanding). ``gray_u8``: the input's luminance
        when the caller has it already."""
        H, W = a.shape[:2]
        overlay = overlay and bool(self.options.get("overlay_lines"))
        if gray_u8 is None and (self.options.get("scale") == "line_width" or overlay or flat):
            gray_u8 = self._gray_u8(a)
        h, w = self._working_shape(H, W, gray_u8)
        src = a if a.dtype in (np.uint8, np.uint16, np.float32) else a.astype(np.float32)
        if src.ndim == 3 and src.shape[2] > 4:  # cv2.resize takes at most 4 channels per call
            small_img = np.stack([cv2.resize(src[:, :, i], (w, h), interpolation=cv2.INTER_AREA) for i in range(src.shape[2])], -1)
        else:
            small_img = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA if h < H else cv2.INTER_LINEAR)
        x = self._to_channels(small_img)
        if stretch:
            v = None if valid is None else cv2.resize(valid.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            x = self._apply_limits(x, self._stretch_limits(x, v))
        y = self.forward((x * 2.0 - 1.0)[None])[0]  # (3, h, w) in [0, 1]
        rgb_small = np.clip(np.rint(y.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        out = rgb_small if (h, w) == (H, W) else cv2.resize(rgb_small, (W, H), interpolation=cv2.INTER_CUBIC)
        if flat and gray_u8 is not None:
            from lumachrome.flatfill import flat_fill

            return flat_fill(gray_u8, out)  # the lines are its own (no overlay on top)
        if overlay and gray_u8 is not None:
            self._overlay(out, gray_u8)
        return out

    @staticmethod
    def _overlay(out: np.ndarray, gray: np.ndarray) -> None:
        """``out *= gray / 255`` in row chunks (the drawing's lines over the colour), in place."""
        for r0 in range(0, out.shape[0], _ROWS_PER_CHUNK):
            o = out[r0 : r0 + _ROWS_PER_CHUNK].astype(np.uint16)
            g = gray[r0 : r0 + _ROWS_PER_CHUNK, :, None].astype(np.uint16)
            out[r0 : r0 + _ROWS_PER_CHUNK] = ((o * g + 127) // 255).astype(np.uint8)

    def _run_tiled(
        self, read: Callable[[int, int], np.ndarray], H: int, W: int, write: Callable[[int, np.ndarray], None]
    ) -> None:
        """Overlapping tiles with linear blending, one row of tiles at a time (see the module doc).

        ``read(r0, r1)`` -> float32 ``(Ca, r1-r0, W)`` in ``[0, 1]`` (the rows of one row of tiles);
        ``write(r0, rows)`` receives finished uint8 ``(n, W, 3)`` rows, top to bottom.
        """
        from lumachrome.geo import tile_windows

        tile, overlap = int(self.options["tile"]), int(self.options["overlap"])
        wins = tile_windows(H, W, tile, overlap)
        row_starts = sorted({w.row for w in wins})
        acc = np.zeros((3, 0, W), dtype=np.float32)
        wsum = np.zeros((0, W), dtype=np.float32)
        base = 0  # image row of acc[:, 0]
        for k, r in enumerate(row_starts):
            row_wins = [w for w in wins if w.row == r]
            th = row_wins[0].height
            need = r + th - base
            if acc.shape[1] < need:  # grow the buffer downwards
                grow = need - acc.shape[1]
                acc = np.concatenate([acc, np.zeros((3, grow, W), np.float32)], axis=1)
                wsum = np.concatenate([wsum, np.zeros((grow, W), np.float32)], axis=0)
            band = read(r, r + th)
            batch = np.stack([band[:, :, w.col : w.col + w.width] for w in row_wins])
            del band
            y = np.concatenate([self.forward(batch[i : i + 8] * 2.0 - 1.0) for i in range(0, len(batch), 8)])
            wy = _ramp(th, overlap, r > 0, r + th < H)
            for win, yt in zip(row_wins, y):
                wx = _ramp(win.width, overlap, win.col > 0, win.col + win.width < W)
                wt = wy[:, None] * wx[None, :]
                rs, cs = slice(r - base, r - base + th), slice(win.col, win.col + win.width)
                acc[:, rs, cs] += yt * wt
                wsum[rs, cs] += wt
            done_to = row_starts[k + 1] if k + 1 < len(row_starts) else H
            n = done_to - base
            if n > 0:
                rgb = acc[:, :n] / wsum[None, :n]
                write(base, np.clip(np.rint(rgb.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8))
                acc, wsum, base = acc[:, n:], wsum[n:], done_to

    # ---------------------------------------------------------------- files
    def translate_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        bands: Sequence[int | str] | int | str | None = None,
        overwrite: bool = False,
        quality: int = 95,
        flat: bool | str = False,
    ) -> Path:
        """Translate ``src`` and write ``dst`` atomically (temporary file + rename).

        ``flat``: one flat colour per closed region (``sketch`` models; see :meth:`translate_array`).

        A GeoTIFF ``src`` (``.tif`` with a CRS or map transform) is read with rasterio (``bands``:
        1-based indices or names; default: the only band, or the one named like NIR); written to a
        ``.tif``/``.tiff`` it gives a GeoTIFF with the same CRS and transform (and no-data 0 when the
        input has no-data), read and written in windows in ``tile`` mode. Other inputs go through
        :func:`lumachrome.imageio.read_rgb_uint8` (EXIF orientation applied).

        Raises:
            ImageError: unreadable input, bad band choice, ``dst`` is the input or exists (without
                ``overwrite``), ``dst`` cannot be written (nothing is left behind).
        """
        from lumachrome.geo import GEOTIFF_EXTENSIONS, is_geotiff
        from lumachrome.imageio import check_destination, read_pixels, save_image

        src, dst = Path(src), Path(dst)
        if flat:
            self.check_flat()
        check_destination(src, dst, overwrite)
        if src.suffix.lower() in GEOTIFF_EXTENSIONS and src.is_file() and (is_geotiff(src) or bands is not None):
            return self._translate_raster(src, dst, bands, geo_out=dst.suffix.lower() in GEOTIFF_EXTENSIONS, quality=quality,
                                          flat=flat)
        if bands is not None and bands != []:
            raise ImageError(f"{src}: band selection needs a (Geo)TIFF input")
        # imageio's decoder (checks, EXIF orientation, 16-bit) without its RGB expansion: a gray
        # input stays 1 byte per pixel
        px = read_pixels(src)
        if px.dtype != np.uint8:
            px = np.clip(np.rint(px.astype(np.float32) * (255.0 / 65535.0 if px.dtype == np.uint16 else 255.0)), 0, 255).astype(np.uint8)
        if px.ndim == 3 and self.in_channels == 1:
            # 1-channel models: the luminance (cv2's Rec. 601, as the packs)
            px = cv2.cvtColor(px, cv2.COLOR_RGB2GRAY)
        out = self.translate_array(px, flat=flat, where=str(src))
        del px
        save_image(dst, out, quality=quality)
        return dst

    def _choose_bands(self, path: Path, bands: Sequence[int | str] | int | str | None) -> list[int]:
        from lumachrome.geo import band_names, open_raster, resolve_bands

        with open_raster(path) as ds:
            if bands is not None and bands != []:
                idx = resolve_bands(ds, bands)
            elif ds.count == self.in_channels:
                idx = list(range(1, ds.count + 1))
            elif self.in_channels == 1:
                hits = [i for i in range(1, ds.count + 1) if any(n.lower() in _NIR_NAMES for n in band_names(ds, i))]
                if len(hits) != 1 or self.domain != "nir":
                    from lumachrome.geo import band_label

                    labels = "; ".join(band_label(ds, i) for i in range(1, ds.count + 1))
                    raise ImageError(f"{path}: {ds.count} bands ({labels}); choose the input band with --bands N or --band-name NAME")
                idx = hits
            else:
                raise ImageError(f"{path}: {ds.count} bands; the model takes {self.in_channels}: choose them with --bands")
        if len(idx) != self.in_channels:
            raise ImageError(f"{path}: {len(idx)} band(s) selected ({idx}); the model takes {self.in_channels}")
        return idx

    def _translate_raster(self, src: Path, dst: Path, bands: Any, *, geo_out: bool, quality: int, flat: bool | str = False) -> Path:
        import rasterio

        # GDAL caches blocks read and written (by default up to 5 % of the RAM): cap it, so memory
        # stays O(tile x width) for a scene of any size.
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024):
            return self._translate_raster_inner(src, dst, bands, geo_out=geo_out, quality=quality, flat=flat)

    def _translate_raster_inner(self, src: Path, dst: Path, bands: Any, *, geo_out: bool, quality: int,
                                flat: bool | str = False) -> Path:
        from lumachrome.geo import GeoTiffWriter, Window, band_limits, open_raster, read_raster
        from lumachrome.imageio import save_image

        idx = self._choose_bands(src, bands)
        from lumachrome.geo import empty_bands

        empty = empty_bands(src, idx)
        if empty:
            from lumachrome.geo import describe_bands

            labels = describe_bands(src)
            raise ImageError(f"{src}: band {'; band '.join(labels[i - 1] for i in empty)} holds no valid pixel "
                             "(all no-data or NaN): nothing to translate")
        with open_raster(src) as ds:
            H, W, crs, transform = ds.height, ds.width, ds.crs, ds.transform
            dtype = np.dtype(ds.dtypes[idx[0] - 1])
            has_nodata = any(v is not None for v in (ds.nodatavals[i - 1] for i in idx)) or any(
                ds.dtypes[i - 1].startswith("float") for i in idx
            ) or any(any(f.name in ("per_dataset", "alpha") for f in ds.mask_flag_enums[i - 1]) for i in idx)  # fmt: skip
        st = self.options.get("stretch")
        limits = band_limits(src, idx, float(st[0]), float(st[1])) if st else None

        peak = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0

        def scale_raw(r: Any) -> np.ndarray:
            if limits is not None:
                return self._apply_limits(r.data, limits)
            return np.clip(np.nan_to_num(r.data) / np.float32(peak), 0.0, 1.0).astype(np.float32)

        if not geo_out or self.options["mode"] != "tile" or flat:  # flat fill needs the whole image
            r = read_raster(src, idx)
            x = scale_raw(r)
            valid = r.valid if has_nodata else None
            del r
            out = self.translate_array(x.transpose(1, 2, 0), valid=valid, stretch=False, flat=flat, where=str(src))
            if geo_out:
                from lumachrome.geo import write_geotiff

                write_geotiff(dst, out.transpose(2, 0, 1), crs=crs, transform=transform, nodata=0 if has_nodata else None,
                              descriptions=["red", "green", "blue"])  # fmt: skip
            else:
                save_image(dst, out, quality=quality)
            return dst

        def read(r0: int, r1: int) -> np.ndarray:
            return scale_raw(read_raster(src, idx, window=Window(r0, 0, r1 - r0, W)))

        writer = GeoTiffWriter(dst, count=3, height=H, width=W, dtype="uint8", crs=crs, transform=transform,
                               nodata=0 if has_nodata else None, descriptions=["red", "green", "blue"])  # fmt: skip
        try:

            def write(r0: int, rows: np.ndarray) -> None:
                if has_nodata:
                    v = read_raster(src, idx, window=Window(r0, 0, rows.shape[0], W)).valid
                    np.maximum(rows, 1, out=rows)
                    rows[~v] = 0
                writer.write(np.ascontiguousarray(rows.transpose(2, 0, 1)), Window(r0, 0, rows.shape[0], W))

            self._run_tiled(read, H, W, write)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        return dst
