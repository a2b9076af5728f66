"""The inference object: a trained network plus everything needed to colorize real images.

:class:`Colorizer` is what the CLI, the evaluation, the web app and notebooks use::

    from lumachrome.colorizer import Colorizer

    col = Colorizer.load("photo")                  # a shipped model, or a model folder
    rgb = col(gray)                                # (H, W) or (H, W, 3) float in [0, 1]
    col.colorize_file("old.jpg", "old_color.jpg")  # decode -> colorize -> atomic encode

How an image is colorized (any size, a 24 MP photo included)
-----------------------------------------------------------
1. The network runs at a *working resolution*: the image is resized (RGB, ``cv2.INTER_AREA`` when
   shrinking, ``INTER_LINEAR`` when enlarging) so that its **long side is** ``size`` (the model's
   ``preprocessing.size``, 256 by default), each side rounded to a multiple of 16 (at least 16).
   Small images are *enlarged* to the working size as well: the network then always sees a scene
   at the scale it was trained on, and the cost per image is bounded by ``size**2`` whatever the
   input. The RGB is resized before conversion to Lab, as in training (crops are resampled in RGB).
2. ``L`` of the working-size image goes through the network, which predicts raw ``ab``
   (Zhang et al. 2016 / Iizuka et al. 2016: colour is predicted from lightness only).
3. ``ab`` is upsampled bilinearly to full resolution and joined with the **full-resolution** ``L``
   of the input (colour inputs keep their own ``L``), then converted to sRGB with clipping to
   ``[0, 1]``. Only this last step is full resolution; it runs in row chunks of about one
   megapixel (the vertical half of the bilinear upsampling is done per chunk), so besides the input
   and output arrays the peak extra memory is a few tens of MB, independent of the image size.
   Out-of-gamut colours are clipped in RGB, which can move ``L`` slightly for very saturated
   predictions; for in-gamut colours the output's ``L`` equals the input's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from lumachrome.color.lab import as_float_image, image_to_lab_np, lab_to_rgb_np
from lumachrome.errors import ConfigError
from lumachrome.models.io import ModelFolder, available_models, load_model_dir, open_model
from lumachrome.precision import inference_autocast, resolve_device

if TYPE_CHECKING:  # pragma: no cover
    from lumachrome.hints import Hint

__all__ = [
    "BACKENDS",
    "DEFAULT_SIZE",
    "SIZE_MULTIPLE",
    "Colorizer",
    "available_models",
    "resolve_device",
    "working_shape",
]

#: Working resolution (long side) when a model's config does not give one.
DEFAULT_SIZE = 256
#: Both working-resolution sides are multiples of this (the U-Net downsamples up to 16x).
SIZE_MULTIPLE = 16
#: Pixels per row chunk of the full-resolution join (about 1 MP: 12 MB per float32 RGB chunk).
_CHUNK_PIXELS = 1 << 20
#: How the network runs: eager PyTorch, or ONNX Runtime (``lumachrome.onnx_export``).
BACKENDS = ("torch", "onnx")


# --------------------------------------------------------------------------------------------
# working resolution
# --------------------------------------------------------------------------------------------
def working_shape(height: int, width: int, size: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """The network's input ``(h, w)`` for an image of ``height x width``.

    The long side becomes ``size`` rounded to a multiple of ``multiple``; the short side keeps the
    aspect ratio, rounded to a multiple of ``multiple`` and at least ``multiple``. Small images are
    enlarged (see the module docstring).
    """
    if height < 1 or width < 1:
        raise ValueError(f"working_shape: empty image {height}x{width}")
    if size < 1:
        raise ValueError(f"working_shape: size must be positive, got {size}")
    long_side = max(multiple, int(round(size / multiple)) * multiple)
    scale = long_side / max(height, width)

    def side(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    return side(height), side(width)


# --------------------------------------------------------------------------------------------
# full-resolution helpers
# --------------------------------------------------------------------------------------------
def _linear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows and weights for bilinear resampling ``n_in -> n_out`` (OpenCV's convention).

    Pixel centres are aligned (``src = (dst + 0.5) * n_in / n_out - 0.5``) and the edges are
    clamped, exactly as ``cv2.resize(..., INTER_LINEAR)``.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


# --------------------------------------------------------------------------------------------
# the inference object
# --------------------------------------------------------------------------------------------
class Colorizer:
    """A colorization network ready for inference on tensors, arrays and files.

    Args:
        model: an ``nn.Module`` with ``predict_ab(L_raw (B,1,H,W), temperature=None) -> ab_raw
            (B,2,H,W)`` (every lumachrome model has it); a module without it is called directly
            and must return raw ``ab``.
        config: the model folder's ``config.json`` as a dict (``preprocessing.size``,
            ``decoding.temperature`` and ``name`` are used when present).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
            ``torch.device``; the model is moved there.
        size: working resolution (long side, px); default ``config["preprocessing"]["size"]``
            or 256.
        temperature: annealed-mean temperature for classification models (default
            ``config["decoding"]["temperature"]``; ignored by regression models).
        saturation: chroma gain, ``ab`` is multiplied by it (1 leaves the network's colour, 0 gives
            gray, 1.3 is 30% more colourful); default ``config["decoding"]["saturation"]`` or 1.
        flip: test-time flip averaging: the mean of the predictions for the image and its mirror
            image (twice the network cost); default ``config["decoding"]["flip"]`` or False.
        adaptive: use the model's adaptive chroma gain (``config["decoding"]["adaptive_gain"]``,
            :mod:`lumachrome.adaptive`) when it has one (default True); ``saturation`` then
            scales its result. Not applied to predictions made with colour hints.
    """

    #: ``"torch"`` or ``"onnx"`` (set by :meth:`load`).
    backend: str = "torch"
    #: The ONNX Runtime network (:class:`lumachrome.onnx_runtime.OnnxNetwork`) for ``backend="onnx"``.
    onnx: Any = None

    def __init__(
        self,
        model: nn.Module,
        config: Mapping[str, Any] | None = None,
        device: str | torch.device = "auto",
        *,
        size: int | None = None,
        temperature: float | None = None,
        saturation: float | None = None,
        flip: bool | None = None,
        adaptive: bool = True,
    ) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.device = resolve_device(device)
        # channels_last: ~25% faster convolutions on CPU (measured, unet_small at 256x176) and
        # the preferred layout for bf16 on CUDA. Moves the module in place.
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        # Working sides are multiples of 16, or of the network's own padding multiple if larger.
        self.multiple = max(SIZE_MULTIPLE, int(getattr(model, "multiple", 1) or 1))
        pre = self.config.get("preprocessing") or {}
        default_size = size if size is not None else pre.get("size", DEFAULT_SIZE)
        self.size = self._check_size(default_size)
        if temperature is None:
            temperature = (self.config.get("decoding") or {}).get("temperature")
        if temperature is not None and not float(temperature) > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.temperature = None if temperature is None else float(temperature)
        decoding = self.config.get("decoding") or {}
        if saturation is None:
            saturation = decoding.get("saturation", 1.0)
        try:
            saturation = float(saturation)
        except (TypeError, ValueError):
            raise ConfigError(f"saturation must be a number, got {saturation!r}") from None
        if not 0 <= saturation <= 4:
            raise ConfigError(f"saturation must be in [0, 4] (1 = the network's colour), got {saturation}")
        #: Chroma gain applied to every prediction (see the class docstring).
        self.saturation = saturation
        #: Test-time flip averaging (see the class docstring).
        self.flip = bool(decoding.get("flip", False) if flip is None else flip)
        #: Per-image adaptive chroma gain (:class:`lumachrome.adaptive.AdaptiveGain`) or None.
        self.adaptive = None
        if adaptive and decoding.get("adaptive_gain") is not None:
            from lumachrome.adaptive import AdaptiveGain

            self.adaptive = AdaptiveGain.from_config(decoding["adaptive_gain"])
        self.name: str = str(self.config.get("name") or "model")
        #: Hint input channels of the network (3 for hint models, see :mod:`lumachrome.hints`; 0: none).
        self.hint_channels = int(getattr(model, "hint_channels", 0) or 0)

    @property
    def accepts_hints(self) -> bool:
        """True when the network takes user colour hints (``colorize_array(..., hints=...)``)."""
        return self.hint_channels > 0

    # ---------------------------------------------------------------- construction
    @classmethod
    def load(
        cls,
        name_or_dir: str | os.PathLike[str] = "photo",
        device: str | torch.device = "auto",
        size: int | None = None,
        temperature: float | None = None,
        backend: str = "torch",
        threads: int | None = None,
        saturation: float | None = None,
        flip: bool | None = None,
        adaptive: bool = True,
    ) -> "Colorizer":
        """Load a shipped model (``lumachrome/weights/<name>/``) or a model folder.

        ``backend="onnx"`` runs the network with ONNX Runtime (the folder's ``model.onnx``, checked
        against the weights, or an in-memory export; see :mod:`lumachrome.onnx_export`) with
        ``threads`` intra-op threads (default: torch's thread count); pre- and post-processing are
        the same as with ``"torch"``.

        Raises:
            ModelError: unknown name / not a model folder / weights that do not match the config /
                a stale ``model.onnx``.
            ConfigError: a bad ``device``, ``size``, ``temperature``, ``saturation`` or ``backend``.
        """
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r}: use one of {', '.join(BACKENDS)}")
        model = open_model(name_or_dir)
        device = resolve_device(device)
        model.require("colorize")
        return cls.from_folder(model, device, size=size, temperature=temperature, backend=backend, threads=threads,
                               saturation=saturation, flip=flip, adaptive=adaptive)

    @classmethod
    def from_folder(
        cls,
        model: ModelFolder,
        device: str | torch.device = "auto",
        *,
        size: int | None = None,
        temperature: float | None = None,
        backend: str = "torch",
        threads: int | None = None,
        saturation: float | None = None,
        flip: bool | None = None,
        adaptive: bool = True,
    ) -> "Colorizer":
        """The colorizer of an opened model folder (:func:`lumachrome.models.io.open_model`; its config is
        not read again): the shared load path of :meth:`load` and :func:`lumachrome.pipeline.load_pipeline`.
        Arguments and errors as :meth:`load`."""
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r}: use one of {', '.join(BACKENDS)}")
        dev = resolve_device(device)
        network, config = load_model_dir(model.path, device=str(dev), config=dict(model.config))
        config.setdefault("name", model.path.name)
        col = cls(network, config, dev, size=size, temperature=temperature, saturation=saturation, flip=flip,
                  adaptive=adaptive)
        if backend == "onnx":
            from lumachrome.onnx_export import onnx_network

            col.onnx = onnx_network(model.path, config=config, model=network, threads=threads, device=dev)
            col.backend = "onnx"
        return col

    @staticmethod
    def available_models() -> list[str]:
        """Names of the shipped models (see :func:`available_models`)."""
        return available_models()

    @staticmethod
    def _check_size(size: Any) -> int:
        try:
            value = int(size)
        except (TypeError, ValueError):
            raise ConfigError(f"size must be an integer, got {size!r}") from None
        if value != size or value < SIZE_MULTIPLE or value > 4096:
            raise ConfigError(f"size must be an integer in [{SIZE_MULTIPLE}, 4096], got {size!r}")
        return value

    def __repr__(self) -> str:
        return f"Colorizer(name={self.name!r}, device={str(self.device)!r}, size={self.size})"

    # ---------------------------------------------------------------- tensors
    def predict_ab_batch(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Raw ``ab`` for a batch of raw lightness.

        Args:
            L: ``(B, 1, H, W)`` float tensor, raw ``L`` in ``[0, 100]``, any device; ``H`` and ``W``
                should be multiples of 16.
            hints: hint models only: ``(B, 3, H, W)`` hint maps (:func:`lumachrome.hints.encode_hints`);
                None = no hints.

        Returns:
            ``(B, 2, H, W)`` float32 raw ``ab`` on ``L``'s device: :meth:`network_ab` decoded by
            :meth:`decode_ab`. Runs without gradients, on ``self.device``, under bf16 autocast on CUDA.
        """
        return self.decode_ab(L, self.network_ab(L, hints), hints)

    def network_ab(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """The network's raw ``ab`` for ``L`` (and ``hints``), flip-averaged when :attr:`flip` is set,
        before any chroma gain (arguments and result as :meth:`predict_ab_batch`)."""
        if not isinstance(L, torch.Tensor) or L.dim() != 4 or L.shape[1] != 1:
            shape = tuple(L.shape) if isinstance(L, torch.Tensor) else type(L).__name__
            raise ValueError(f"predict_ab_batch: expected L of shape (B, 1, H, W), got {shape}")
        if hints is not None:
            self._check_hint_support()
            if tuple(hints.shape) != (L.shape[0], self.hint_channels) + tuple(L.shape[-2:]):
                raise ValueError(f"predict_ab_batch: expected hints of shape "
                                 f"{(L.shape[0], self.hint_channels) + tuple(L.shape[-2:])}, got {tuple(hints.shape)}")
            hints = hints.to(self.device, dtype=torch.float32).contiguous(memory_format=torch.channels_last)
        ab = self._network(L, hints)
        if self.flip:  # test-time augmentation: average with the prediction for the mirror image
            ab = 0.5 * (ab + self._network(L.flip(-1), None if hints is None else hints.flip(-1)).flip(-1))
        return ab

    def decode_ab(self, L: torch.Tensor, ab: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """The chroma decoding of :meth:`network_ab`'s output: the model's adaptive chroma gain (not
        with ``hints``), then times :attr:`saturation`."""
        if self.adaptive is not None and hints is None:
            ab = self.adaptive.apply(L.to(ab.device), ab)
        if self.saturation != 1.0:
            ab = ab * self.saturation
        return ab.contiguous()

    def _network(self, L: torch.Tensor, hints: torch.Tensor | None) -> torch.Tensor:
        """One pass of the network (torch or ONNX Runtime): float32 raw ab on ``L``'s device."""
        if self.onnx is not None:  # ONNX Runtime: numpy in, numpy out (CPU arrays)
            L_np = L.detach().to("cpu", dtype=torch.float32).contiguous().numpy()
            return torch.from_numpy(self.onnx(L_np, temperature=self.temperature)).to(L.device)
        x = L.to(self.device, dtype=torch.float32, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), inference_autocast(self.device):
            ab = self._forward(x, hints)
        return ab.float().to(L.device)

    def _check_hint_support(self) -> None:
        if not self.accepts_hints:
            raise ConfigError(f"model {self.name!r} takes no colour hints (use a hint model, e.g. photo-hints)")
        if self.onnx is not None:
            raise ConfigError("colour hints need the torch backend (the ONNX graph takes L only)")

    def predict_ab_working(self, L: torch.Tensor, size: int | None = None,
                           hints: torch.Tensor | None = None) -> torch.Tensor:
        """Raw ``ab`` at ``L``'s own size, predicted the way :meth:`colorize_array` does it.

        ``L`` ``(B, 1, H, W)`` is area-resized to the working shape (long side ``size``, default
        ``self.size``), the network predicts ab there, and ab is upsampled bilinearly back to
        ``(H, W)``. ``lumachrome evaluate`` scores models through this, so its numbers are those of
        ``colorize``. ``hints`` (hint models): ``(B, 3, hs, ws)`` maps at the *working* shape.
        """
        h, w = L.shape[-2:]
        hs, ws = working_shape(h, w, size or self.size, self.multiple)
        x = L if (hs, ws) == (h, w) else torch.nn.functional.interpolate(L, size=(hs, ws), mode="area")
        ab = self.predict_ab_batch(x, hints)
        if (hs, ws) != (h, w):
            ab = torch.nn.functional.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        return ab

    def _forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        kw: dict[str, Any] = {} if hints is None else {"hints": hints}
        predict = getattr(self.model, "predict_ab", None)
        if predict is None:
            return self.model(L, **kw)
        if self.temperature is None:
            return predict(L, **kw)
        return predict(L, temperature=self.temperature, **kw)

    # ---------------------------------------------------------------- arrays
    def __call__(self, image: np.ndarray, size: int | None = None) -> np.ndarray:
        """Same as :meth:`colorize_array`."""
        return self.colorize_array(image, size=size)

    def colorize_array(
        self,
        image: np.ndarray,
        size: int | None = None,
        *,
        out: np.ndarray | None = None,
        ab_transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        hints: Sequence[Hint] | None = None,
    ) -> np.ndarray:
        """Colorize one image held in memory.

        Args:
            image: ``(H, W)`` gray or ``(H, W, 3)`` sRGB, float in ``[0, 1]`` (uint8/uint16 are
                scaled by their maximum). A colour image is colorized from its own ``L``.
            size: working resolution (long side) for this call; default ``self.size``.
            out: optional float32 ``(H, W, 3)`` array to write the result into; it may be the
                input array itself (each row chunk is read before it is written), which saves a
                full-resolution buffer for large images.
            ab_transform: optional ``(L (hs, ws), ab (hs, ws, 2)) -> ab (hs, ws, 2)`` applied to the
                working-resolution prediction before it is upsampled (e.g. a
                :class:`lumachrome.transfer.ColorCorrection` toward reference photos).
            hints: user colour hints (:class:`lumachrome.hints.Hint`, pixel coordinates of
                ``image``) for hint models: encoded at the working resolution (see
                :mod:`lumachrome.hints`), given to the network, then pinned there
                (:func:`lumachrome.hints.pin_hints`) after ``ab_transform``, before upsampling;
                ``ConfigError`` for a model without hint input or a hint outside the image.

        Returns:
            float32 ``(H, W, 3)`` sRGB in ``[0, 1]`` (``out`` when given) whose ``L`` is the
            input's (up to gamut clipping) and whose ``ab`` is the network's.
        """
        x = as_float_image(image, clip=False)
        height, width = x.shape[:2]
        work = self._check_size(size) if size is not None else self.size
        if out is None:
            out = np.empty((height, width, 3), dtype=np.float32)
        elif out.shape != (height, width, 3) or out.dtype != np.float32:
            raise ValueError(f"colorize_array: out must be float32 {(height, width, 3)}, got {out.dtype} {out.shape}")

        # 1. network input at the working resolution (resize in RGB, then L, as in training).
        L_small = self.network_input(x, work)

        # 2. raw ab at the working resolution (hint models: with the hint map of the user's hints).
        L_t = torch.from_numpy(L_small)[None, None]
        hint_map = None
        if hints:
            from lumachrome.hints import check_hints, encode_hints

            self._check_hint_support()
            check_hints(hints, height, width)
            hint_map = torch.from_numpy(encode_hints(hints, height, width, *L_small.shape))[None]
        ab_small = self.predict_ab_batch(L_t, hint_map)[0].permute(1, 2, 0).contiguous().numpy()  # (hs, ws, 2)
        if ab_transform is not None:  # optional correction (reference / palette / temporal)
            ab_small = np.ascontiguousarray(ab_transform(L_small, ab_small), dtype=np.float32)
            if ab_small.shape != L_small.shape + (2,):
                raise ValueError(f"ab_transform returned shape {ab_small.shape}, expected {L_small.shape + (2,)}")
        if hints:  # the user's colours win over the network and over any correction
            from lumachrome.hints import pin_hints

            ab_small = pin_hints(ab_small, hints, height, width, L_small)

        # 3. ab upsampled to full resolution and joined with the full-resolution L.
        return self.join_ab(x, ab_small, out=out)

    def network_input(self, x: np.ndarray, size: int | None = None) -> np.ndarray:
        """Step 1 of :meth:`colorize_array`: the network's raw ``L`` at the working resolution.

        Args:
            x: float32 ``(H, W)`` or ``(H, W, 3)`` sRGB in ``[0, 1]`` (see :func:`~lumachrome.color.lab.as_float_image`).
            size: working resolution (long side); default ``self.size``.

        Returns:
            C-contiguous float32 ``(hs, ws)`` raw ``L`` in ``[0, 100]``, ``(hs, ws) =
            working_shape(H, W, size, self.multiple)``. Images with the same working shape can be
            stacked into one batch for :meth:`predict_ab_batch` (the archive engine does).
        """
        height, width = x.shape[:2]
        hs, ws = working_shape(height, width, size or self.size, self.multiple)
        shrink = hs <= height and ws <= width
        small = cv2.resize(x, (ws, hs), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return np.ascontiguousarray(image_to_lab_np(np.clip(small, 0.0, 1.0))[:, :, 0])

    def join_ab(self, x: np.ndarray, ab_small: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """Step 3 of :meth:`colorize_array`: full-resolution sRGB from the input and the predicted ab.

        Args:
            x: the float32 ``(H, W)`` / ``(H, W, 3)`` input in ``[0, 1]`` (its own ``L`` is kept).
            ab_small: float32 ``(hs, ws, 2)`` raw ab at the working resolution.
            out: optional float32 ``(H, W, 3)`` target, which may be ``x`` itself.

        Returns:
            float32 ``(H, W, 3)`` sRGB in ``[0, 1]``.
        """
        height, width = x.shape[:2]
        hs = ab_small.shape[0]
        if out is None:
            out = np.empty((height, width, 3), dtype=np.float32)
        # Bilinear upsampling of ab to (height, width) - horizontally at once (small: hs rows),
        # vertically per row chunk - joined with the full-resolution L, Lab -> sRGB per chunk.
        ab_wide = cv2.resize(ab_small, (width, hs), interpolation=cv2.INTER_LINEAR)
        if ab_wide.ndim == 2:  # cv2 drops a singleton channel axis; ab always has 2 channels
            ab_wide = ab_wide[:, :, None]
        i0, i1, w1 = _linear_taps(height, hs)
        rows = max(1, _CHUNK_PIXELS // width)
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            lab = image_to_lab_np(x[r0:r1])  # (n, W, 3): the input's own L (a, b replaced below)
            wgt = w1[r0:r1, None, None]
            top = ab_wide[i0[r0:r1]]
            bottom = ab_wide[i1[r0:r1]]
            lab[:, :, 1:] = top + (bottom - top) * wgt
            out[r0:r1] = lab_to_rgb_np(lab)
        return out

    # ---------------------------------------------------------------- files
    def colorize_file(
        self,
        in_path: str | os.PathLike[str],
        out_path: str | os.PathLike[str],
        *,
        size: int | None = None,
        overwrite: bool = False,
        quality: int = 95,
        preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
        ab_transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        hints: Sequence[Hint] | None = None,
    ) -> Path:
        """Decode ``in_path``, colorize it and write ``out_path`` atomically.

        The alpha channel of RGBA/LA inputs is kept (when the output format has one), 16-bit inputs
        give 16-bit outputs when the output format allows it (PNG, TIFF), EXIF orientation is
        applied on reading. The output folder is created if needed.

        Args:
            in_path: an image readable by :func:`lumachrome.imageio.load_image`.
            out_path: output image; its extension picks the format.
            size: working resolution for this image (default ``self.size``).
            overwrite: replace an existing ``out_path`` (never the input itself).
            quality: JPEG/WebP quality.
            preprocess: optional ``rgb (H, W, 3) -> (H, W) or (H, W, 3)`` float image in ``[0, 1]``
                run on the decoded input first (e.g. restoration of an old print); its ``L`` is
                the one kept.
            ab_transform, hints: see :meth:`colorize_array` (hint coordinates are pixels of the
                decoded, EXIF-rotated input).

        Returns:
            ``out_path`` as a ``Path``.

        Raises:
            ImageError: unreadable input; ``out_path`` is the input file; ``out_path`` exists and
                not ``overwrite``; the output cannot be written (nothing is left behind).
        """
        from lumachrome.imageio import SIXTEEN_BIT_EXTENSIONS, check_destination, load_image, quantize, save_image

        src, dst = Path(in_path), Path(out_path)
        check_destination(src, dst, overwrite)
        image = load_image(src)
        x = image.rgb if preprocess is None else preprocess(image.rgb)
        # in place: saves 12 B/px
        rgb = self.colorize_array(x, size=size, out=image.rgb, ab_transform=ab_transform, hints=hints)
        del x
        bit_depth = image.bit_depth if dst.suffix.lower() in SIXTEEN_BIT_EXTENSIONS else 8
        # Quantise here, in row chunks (save_image would make several float32 temporaries).
        pixels = quantize(rgb, bit_depth)
        alpha = None if image.alpha is None else quantize(image.alpha, bit_depth)
        del image, rgb
        save_image(dst, pixels, alpha=alpha, bit_depth=bit_depth, quality=quality)
        return dst
