"""Robust image reading and writing: the only module that touches image files.

Reading (:func:`load_image`)
    Pillow opens the file lazily, so the header (size, mode) is checked *before* any pixel is
    decoded: a 30000 x 30000 "decompression bomb" is rejected without allocating anything.
    Every image is then fully decoded (``load()`` with ``ImageFile.LOAD_TRUNCATED_IMAGES``
    forced off), so truncated files raise instead of returning grey garbage. EXIF orientation
    is applied. Pillow cannot hold 16-bit colour, so 16-bit RGB(A)/LA PNG and TIFF files (and
    16-bit PPM) are decoded with OpenCV (``IMREAD_UNCHANGED``) and keep their 16 bits.

Writing (:func:`save_image`)
    The format comes from the extension. The image is written to a temporary file in the
    target folder and renamed over the target with :func:`os.replace`, so a failed or
    interrupted save never leaves a half-written file (and never damages an existing one).

Listing (:func:`find_images`)
    Expands files, folders (recursive, sorted, hidden files skipped) and glob patterns.

All user-caused problems raise :class:`lumachrome.errors.ImageError` with a one-line message
that starts with the path.

Global Pillow settings: importing this module raises ``PIL.Image.MAX_IMAGE_PIXELS`` to
:data:`DEFAULT_MAX_PIXELS` (our own header check enforces ``max_pixels``), and each read sets
``ImageFile.LOAD_TRUNCATED_IMAGES = False`` for its duration and then restores it (reads in
concurrent threads may briefly see each other's setting; both of ours want it False).

Measured (2-core CPU, shared ``photos/train``): a 512 px WebP loads in ~5.5 ms as float32
(``read_rgb_uint8``: ~4.4 ms), a header probe takes ~0.14 ms, a 24 MP JPEG ~0.57 s (~0.07 s
with ``draft_size=256``).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error  # escapes some Pillow plugins on corrupt data
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from lumachrome.atomic import AtomicTarget
from lumachrome.errors import ImageError, LumachromeWarning

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "GRAY_TOLERANCE",
    "IMAGE_EXTENSIONS",
    "SAVE_EXTENSIONS",
    "SIXTEEN_BIT_EXTENSIONS",
    "LoadedImage",
    "apply_orientation",
    "check_destination",
    "find_images",
    "float_to_unit",
    "is_same_file",
    "iter_image_files",
    "load_image",
    "probe_image",
    "quantize",
    "read_pixels",
    "read_rgb_uint8",
    "save_image",
]

#: Largest accepted image, in pixels (width * height). Accepts 24 MP photos and ~100 MP
#: scans (e.g. 12000 x 8000 = 96 MP); rejects decompression bombs such as 30000 x 30000 (900 MP).
#: A 200 MP image needs 2.4 GB as float32 RGB.
DEFAULT_MAX_PIXELS = 200_000_000
#: Images whose shorter side is below this are rejected as "too small".
DEFAULT_MIN_SIDE = 8
#: ``was_gray`` is True when every pixel has ``max(|R-G|, |G-B|) <= GRAY_TOLERANCE`` (in 8-bit
#: code values; 257x that for 16-bit). 2 rather than 0 because lossy encoders with chroma
#: subsampling (WebP, some JPEGs) turn an exactly grey image into one with +-1 channel noise.
GRAY_TOLERANCE = 2

#: Extensions :func:`find_images` collects from folders and globs (lower case, with the dot).
IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm", ".tif", ".tiff", ".webp"}
)
#: Extensions :func:`save_image` can write, mapped to the Pillow format name.
SAVE_EXTENSIONS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_SIXTEEN_BIT_FORMATS = {"PNG", "TIFF"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}  # JPEG and BMP drop alpha

# Pillow refuses images above 2 * MAX_IMAGE_PIXELS (default ~179 MP) with DecompressionBombError
# and warns above MAX_IMAGE_PIXELS. We do our own, explicit check against ``max_pixels`` from the
# header, so lift Pillow's limit to our default (it stays a backstop at 2x for other callers).
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS

_EXIF_ORIENTATION = 0x0112


@dataclass
class LoadedImage:
    """A decoded image.

    Attributes:
        rgb: float32 ``(H, W, 3)`` gamma-encoded sRGB in ``[0, 1]`` (grey images are replicated
            to three equal channels), after EXIF orientation.
        alpha: float32 ``(H, W)`` in ``[0, 1]``, or None when the file has no transparency.
        bit_depth: 8 or 16 (bits per channel of the source; 16 for 16-bit and float files).
        mode: the original Pillow mode (``"RGB"``, ``"L"``, ``"P"``, ``"I;16"``, ``"CMYK"``...).
        was_gray: True if the source is single-channel or its channels are equal everywhere
            (within :data:`GRAY_TOLERANCE`).
        path: the file it came from.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mode: str
    was_gray: bool
    path: Path

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of :attr:`rgb` (after EXIF orientation)."""
        return (int(self.rgb.shape[1]), int(self.rgb.shape[0]))

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


# --------------------------------------------------------------------------------------------
# reading


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    """Force ``LOAD_TRUNCATED_IMAGES`` off (truncated files must raise) and silence Pillow's
    DecompressionBombWarning (we check sizes ourselves). Restores the previous setting."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file or directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(f"{path}: symbolic link loop (the link never reaches a file)") from None
        raise ImageError(f"{path}: cannot read: {_one_line(exc)}") from None
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image file")
    if st.st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")


def _too_large(path: Path, exc: Exception, max_pixels: int | None) -> ImageError:
    """Pillow's own guard (``2 * Image.MAX_IMAGE_PIXELS``, 400 MP) fired before our header check: report
    the limit the caller asked for (:data:`DEFAULT_MAX_PIXELS` by default), not Pillow's."""
    guard = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
    limit = guard if max_pixels is None or (guard is not None and max_pixels > guard) else max_pixels
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)) / 1e6:.4g} MP" if found else "too many pixels"
    return ImageError(f"{path}: image too large ({size} > limit {(limit or 0) / 1e6:.4g} MP;"
                      " possible decompression bomb)")


def _open(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open lazily (header only) with clear errors."""
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (unrecognised or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise _too_large(path, exc, max_pixels) from None
    except PermissionError:
        raise ImageError(f"{path}: cannot read: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: corrupt or truncated image ({_one_line(exc)})") from None


def _check_size(path: Path, size: tuple[int, int], max_pixels: int | None, min_side: int) -> None:
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(
            f"{path}: image too large ({w}x{h} = {w * h / 1e6:.4g} MP > limit {max_pixels / 1e6:.4g} MP;"
            " possible decompression bomb)"
        )
    if min(w, h) < min_side:
        raise ImageError(f"{path}: image too small ({w}x{h}; each side must be at least {min_side} px)")


def _rawmode(img: Image.Image) -> str:
    """The decoder's raw mode of the first tile (e.g. ``"RGB;16B"`` for a 16-bit RGB PNG)."""
    tile = getattr(img, "tile", None)
    if not tile:
        return ""
    args = tile[0][3] if len(tile[0]) > 3 else None
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else ""


def _is_16bit_colour(img: Image.Image) -> bool:
    """True for files that Pillow would silently reduce to 8 bits (16-bit RGB/RGBA/LA)."""
    return img.mode in ("RGB", "RGBA", "LA") and "16" in _rawmode(img)


def apply_orientation(arr: np.ndarray, orientation: int | None) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an ``(H, W[, C])`` array, like ``ImageOps.exif_transpose``.

    Returns a view (no copy). Unknown values leave the array unchanged.
    """
    if orientation == 2:  # mirrored horizontally
        return arr[:, ::-1]
    if orientation == 3:  # rotated 180
        return arr[::-1, ::-1]
    if orientation == 4:  # mirrored vertically
        return arr[::-1]
    if orientation == 5:  # transpose (mirror about the main diagonal)
        return arr.swapaxes(0, 1)
    if orientation == 6:  # stored rotated 90 counter-clockwise: rotate 90 clockwise to view
        return np.rot90(arr, -1)
    if orientation == 7:  # transverse (mirror about the anti-diagonal)
        return np.rot90(arr, 2).swapaxes(0, 1)
    if orientation == 8:  # rotate 90 counter-clockwise to view
        return np.rot90(arr, 1)
    return arr


def _orientation(img: Image.Image) -> int | None:
    try:
        value = img.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # malformed EXIF: ignore orientation rather than reject the image
        return None
    return int(value) if isinstance(value, int) else None


@contextlib.contextmanager
def _quiet_cv2() -> Iterator[None]:
    """Silence OpenCV's codec warnings on stderr (we raise ImageError ourselves)."""
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # pragma: no cover - very old OpenCV
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _decode_16bit_cv2(path: Path, img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit colour through OpenCV. Returns (rgb or gray uint16, alpha uint16 | None)."""
    import cv2

    try:
        buf = np.fromfile(path, dtype=np.uint8)  # works for non-ASCII paths, unlike cv2.imread
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {_one_line(exc)}") from None
    with _quiet_cv2():
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"{path}: cannot decode 16-bit image (truncated or corrupt file)")
    w, h = img.size
    if arr.shape[:2] != (h, w):
        raise ImageError(f"{path}: decoded size {arr.shape[1]}x{arr.shape[0]} does not match header {w}x{h}")
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[..., 3]
        arr = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        arr, alpha = arr[..., 0], arr[..., 1]
    orientation = _orientation(img)
    arr = apply_orientation(arr, orientation)
    if alpha is not None:
        alpha = apply_orientation(alpha, orientation)
    return arr, alpha


def _pil_to_arrays(path: Path, img: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Loaded Pillow image -> (colour (H,W,3) or grey (H,W), alpha (H,W) | None, bit_depth).

    Arrays are uint8 for 8-bit modes, uint16 for 16-bit and float32 in [0, 1] for ``F``.
    """
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L")), None, 8
    if mode in ("L", "RGB"):
        return np.asarray(img), None, 8
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        return la[..., 0], la[..., 1], 8
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        return rgba[..., :3], rgba[..., 3], 8
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16, copy=False), None, 16
    if mode == "I":  # 32-bit integer: assumed to hold 16-bit values (16-bit PNG/TIFF grey)
        return np.clip(np.asarray(img), 0, 65535).astype(np.uint16), None, 16
    if mode == "F":  # 32-bit float: the range rule of float_to_unit
        return float_to_unit(np.asarray(img, dtype=np.float32), path), None, 16
    try:  # P, CMYK (naive conversion, no ICC), YCbCr, HSV, RGBX, ...
        return np.asarray(img.convert("RGB")), None, 8
    except (ValueError, OSError) as exc:
        raise ImageError(f"{path}: unsupported image mode {mode!r} ({_one_line(exc)})") from None


#: Float images: at most this share of the (finite) values may lie outside [0, 1] for the data to
#: count as "[0, 1] with a few outliers" (clipped); more, and the image is scaled instead.
FLOAT_OUTLIER_SHARE = 0.01
#: Percentiles of the robust scaling of float images whose values are not in [0, 1].
FLOAT_PERCENTILES = (0.1, 99.9)


def float_to_unit(values: np.ndarray, path: str | os.PathLike = "image") -> np.ndarray:
    """Map a float image (e.g. a 32-bit float TIFF) to ``[0, 1]``; the **float range rule**:

    1. Non-finite values are masked: NaN and -inf become 0, +inf becomes 1 (a warning counts them).
       An image without a single finite value is refused (``ImageError``).
    2. Finite values all in ``[0, 1]``: kept as they are.
    3. At most :data:`FLOAT_OUTLIER_SHARE` (1 %) of them outside ``[0, 1]``: data in ``[0, 1]`` with a
       few outliers; clipped to ``[0, 1]`` (a warning counts them). One stray 1.5 or 1e30 no longer
       rescales the whole image to near black.
    4. Otherwise, integer values in ``[0, 255]`` (``[0, 65535]``) apart from at most 1 % are 8-bit
       (16-bit) code values: divided by 255 (65535), the outliers clipped (with a warning).
    5. Any other data is scaled by robust percentiles (:data:`FLOAT_PERCENTILES`: the 0.1th ``lo``
       and 99.9th ``hi``): mapped linearly from ``[min(lo, 0), hi]`` to ``[0, 1]``, values beyond
       clipped (with a warning).

    Warnings are :class:`~lumachrome.errors.LumachromeWarning` (one line each in the CLI).
    Returns float32 in ``[0, 1]``, the shape of ``values``.
    """
    f = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(f)
    n_bad = int(f.size - np.count_nonzero(finite))
    notes: list[str] = []
    if n_bad == f.size:
        raise ImageError(f"{path}: float image without a single finite value (all NaN or infinite)")
    vals = f[finite] if n_bad else f.reshape(-1)
    lo, hi = float(vals.min()), float(vals.max())
    offset, scale = 0.0, 1.0
    if lo < 0.0 or hi > 1.0:
        outside = int(np.count_nonzero((vals < 0.0) | (vals > 1.0)))
        if outside <= FLOAT_OUTLIER_SHARE * vals.size:
            notes.append(f"{outside} value(s) outside [0, 1] clipped (float range rule)")
        else:
            integer = bool(np.all(vals == np.rint(vals)))
            allowed = FLOAT_OUTLIER_SHARE * vals.size
            negative = int(np.count_nonzero(vals < 0.0))
            if integer and negative + int(np.count_nonzero(vals > 255.0)) <= allowed:
                scale = 255.0
            elif integer and negative + int(np.count_nonzero(vals > 65535.0)) <= allowed:
                scale = 65535.0
            else:
                p_lo, p_hi = (float(v) for v in np.percentile(vals, FLOAT_PERCENTILES))
                offset = min(p_lo, 0.0)
                scale = max(p_hi - offset, 1e-12)
                notes.append(f"values in [{lo:.4g}, {hi:.4g}] scaled from [{offset:.4g}, {p_hi:.4g}] "
                             f"(0.1th/99.9th percentiles) to [0, 1] (float range rule)")
            beyond = int(np.count_nonzero((vals < offset) | (vals > offset + scale)))
            if beyond and scale in (255.0, 65535.0):
                notes.append(f"{beyond} value(s) outside [0, {scale:g}] clipped (float range rule)")
    out = f if (offset == 0.0 and scale == 1.0) else (f - np.float32(offset)) * np.float32(1.0 / scale)
    if n_bad:
        notes.insert(0, f"{n_bad} non-finite pixel value(s) masked (NaN and -inf -> 0, +inf -> 1)")
        out = np.where(np.isposinf(f), np.float32(1.0), np.where(finite, out, np.float32(0.0)))
    if notes:
        warnings.warn(f"{path}: " + "; ".join(notes), LumachromeWarning, stacklevel=2)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def _channels_equal(rgb: np.ndarray) -> bool:
    """True if R, G and B agree everywhere within :data:`GRAY_TOLERANCE` (scaled for 16-bit).

    Cheap: a strided sample rejects almost every colour image after touching ~2% of pixels.
    """
    if rgb.dtype == np.uint8:
        tol = GRAY_TOLERANCE
    elif rgb.dtype == np.uint16:
        tol = GRAY_TOLERANCE * 257
    else:
        tol = GRAY_TOLERANCE / 255.0

    def close(a: np.ndarray) -> bool:
        if a.dtype.kind == "u":
            a = a.astype(np.int32)
        r, g, b = a[..., 0], a[..., 1], a[..., 2]
        return bool(np.abs(r - g).max() <= tol and np.abs(g - b).max() <= tol)

    if rgb.size == 0:
        return True
    if not close(rgb[::7, ::7]):
        return False
    if rgb.dtype == np.uint8:  # full check, fast path with OpenCV (no int32 temporaries)
        import cv2

        c = np.ascontiguousarray(rgb)
        return bool(
            cv2.absdiff(c[..., 0], c[..., 1]).max() <= tol and cv2.absdiff(c[..., 1], c[..., 2]).max() <= tol
        )
    return close(rgb)


@dataclass
class _Decoded:
    pixels: np.ndarray  # (H, W, 3) or (H, W); uint8 / uint16 / float32 in [0, 1]
    alpha: np.ndarray | None  # (H, W), same dtype kind as pixels
    bit_depth: int
    mode: str
    was_gray: bool


def _decode(path: str | os.PathLike, max_pixels: int | None, min_side: int, draft_size: int | None) -> _Decoded:
    path = Path(path)
    _check_file(path)
    with _strict_pillow():
        img = _open(path, max_pixels)
        with img:
            _check_size(path, img.size, max_pixels, min_side)
            mode = img.mode
            if _is_16bit_colour(img):
                # Verify the header is sane with Pillow, decode the 16 bits with OpenCV.
                pixels, alpha = _decode_16bit_cv2(path, img)
                bit_depth = 16
            else:
                if draft_size is not None and img.format == "JPEG":
                    # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly: much faster for big photos.
                    # The result keeps both sides >= draft_size.
                    img.draft(None, (int(draft_size), int(draft_size)))
                try:
                    img.load()
                except Image.DecompressionBombError as exc:
                    raise _too_large(path, exc, max_pixels) from None
                except MemoryError:
                    raise ImageError(f"{path}: not enough memory to decode {img.size[0]}x{img.size[1]} image") from None
                except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error) as exc:
                    raise ImageError(f"{path}: truncated or corrupt image ({_one_line(exc)})") from None
                oriented = img
                if _orientation(img) in (2, 3, 4, 5, 6, 7, 8):  # exif_transpose copies even when upright
                    try:
                        oriented = ImageOps.exif_transpose(img) or img
                    except Exception:  # malformed EXIF must not make a good image unreadable
                        oriented = img
                pixels, alpha, bit_depth = _pil_to_arrays(path, oriented)
    was_gray = pixels.ndim == 2 or _channels_equal(pixels)
    return _Decoded(pixels, alpha, bit_depth, mode, was_gray)


def _to_float(a: np.ndarray) -> np.ndarray:
    if a.dtype in (np.uint8, np.uint16):
        # into a preallocated output: ~20x faster than np.multiply(a, s, dtype=float32),
        # which goes through numpy's slow buffered casting loop.
        out = np.empty(a.shape, dtype=np.float32)
        np.multiply(a, np.float32(1.0 / (255.0 if a.dtype == np.uint8 else 65535.0)), out=out)
        return out
    return np.ascontiguousarray(a, dtype=np.float32)


def load_image(
    path: str | os.PathLike,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    *,
    draft_size: int | None = None,
) -> LoadedImage:
    """Read an image file into float32 RGB in ``[0, 1]``.

    Args:
        path: the image file (JPEG, PNG, WebP, TIFF, BMP, GIF, PNM...). Never modified.
        max_pixels: reject images with more pixels than this (checked from the header, before
            decoding); None disables the check.
        min_side: reject images whose shorter side is below this.
        draft_size: if given, JPEGs may be decoded at 1/2, 1/4 or 1/8 scale as long as both
            sides stay ``>= draft_size`` (fast previews and training; other formats ignore it).

    Returns:
        :class:`LoadedImage` with ``rgb`` float32 ``(H, W, 3)`` in ``[0, 1]``, ``alpha`` float32
        ``(H, W)`` or None, ``bit_depth`` 8 or 16, ``mode``, ``was_gray`` and ``path``.

    Raises:
        ImageError: missing path, a directory, empty, truncated or corrupt file, not an image,
            unsupported mode, too small or too large. The message is one line naming the path.
    """
    d = _decode(path, max_pixels, min_side, draft_size)
    if d.pixels.ndim == 2:
        grey = _to_float(d.pixels)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        rgb = _to_float(d.pixels)
    alpha = None if d.alpha is None else _to_float(d.alpha)
    return LoadedImage(rgb=rgb, alpha=alpha, bit_depth=d.bit_depth, mode=d.mode, was_gray=d.was_gray, path=Path(path))


def read_pixels(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE
) -> np.ndarray:
    """The decoded pixels as stored: uint8 or uint16, ``(H, W)`` for gray, ``(H, W, 3)`` for colour (alpha
    dropped). Same checks and EXIF orientation as :func:`load_image`, without its float RGB expansion, so
    a gray input stays 1 byte (or 2) per pixel."""
    return _decode(path, max_pixels, min_side, None).pixels


def read_rgb_uint8(
    path: str | os.PathLike,
    *,
    draft_size: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> tuple[np.ndarray, bool]:
    """Fast loader for training data: ``(uint8 (H, W, 3) RGB, was_gray)``.

    Same checks and orientation handling as :func:`load_image`, but no float conversion
    (4x less memory) and alpha is ignored. 16-bit sources are rounded to 8 bits.
    """
    import cv2

    d = _decode(path, max_pixels, min_side, draft_size)
    px = d.pixels
    if px.dtype == np.uint16:
        px = ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif px.dtype != np.uint8:
        px = np.clip(np.rint(px * 255.0), 0, 255).astype(np.uint8)
    px = np.ascontiguousarray(px)
    if px.ndim == 2:
        px = cv2.cvtColor(px, cv2.COLOR_GRAY2RGB)
    return px, d.was_gray


@dataclass
class ImageProbe:
    """Header-only facts about an image (see :func:`probe_image`)."""

    path: Path
    size: tuple[int, int]  # (width, height) as stored (before EXIF orientation)
    mode: str
    format: str | None
    single_channel: bool


def probe_image(
    path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE
) -> ImageProbe:
    """Check an image from its header only (no pixel decoding): ~0.1 ms per file.

    Detects missing/empty/non-image files, bad sizes and single-channel modes; it cannot detect
    truncation or RGB files whose channels are all equal (that needs :func:`load_image`).
    """
    path = Path(path)
    _check_file(path)
    with _strict_pillow():
        img = _open(path, max_pixels)
        with img:
            _check_size(path, img.size, max_pixels, min_side)
            mode = img.mode
            single = mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16")
            if mode == "P" and not single:
                pal = img.getpalette() or []
                rgb_pal = np.asarray(pal[: len(pal) // 3 * 3], dtype=np.int32).reshape(-1, 3)
                single = bool(rgb_pal.size) and bool(
                    (np.abs(rgb_pal[:, 0] - rgb_pal[:, 1]).max() <= GRAY_TOLERANCE)
                    and (np.abs(rgb_pal[:, 1] - rgb_pal[:, 2]).max() <= GRAY_TOLERANCE)
                )
            return ImageProbe(path=path, size=img.size, mode=mode, format=img.format, single_channel=single)


# --------------------------------------------------------------------------------------------
# writing


#: Output extensions that can hold 16 bits per channel.
SIXTEEN_BIT_EXTENSIONS = frozenset({".png", ".tif", ".tiff"})
#: Pixels per row chunk of :func:`quantize` (about 1 MP).
_QUANTIZE_CHUNK_PIXELS = 1 << 20


def quantize(x: np.ndarray, bit_depth: int) -> np.ndarray:
    """float ``[0, 1]`` -> uint8 (``bit_depth=8``) or uint16 (16), rounded half up, in row chunks (no
    full-size float temporaries: how the colorizers' outputs are quantised before :func:`save_image`)."""
    peak, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    q = np.empty(x.shape, dtype=dtype)
    rows = max(1, _QUANTIZE_CHUNK_PIXELS // max(1, x.shape[1]))
    for r0 in range(0, x.shape[0], rows):
        chunk = np.clip(x[r0 : r0 + rows], 0.0, 1.0) * np.float32(peak) + np.float32(0.5)
        q[r0 : r0 + rows] = chunk.astype(dtype)
    return q


def _quantize(x: np.ndarray, bit_depth: int) -> np.ndarray:
    peak = 65535.0 if bit_depth == 16 else 255.0
    if x.dtype == np.uint8 and bit_depth == 8:
        return x
    if x.dtype == np.uint16 and bit_depth == 16:
        return x
    if x.dtype.kind in "ui":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    q = np.rint(np.clip(x, 0.0, 1.0) * peak)
    return q.astype(np.uint16 if bit_depth == 16 else np.uint8)


def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    quality: int = 95,
) -> Path:
    """Write an image atomically; the format comes from the extension.

    Args:
        path: target file; ``.png``, ``.jpg``/``.jpeg``, ``.webp``, ``.tif``/``.tiff`` or ``.bmp``.
            Missing parent folders are created.
        rgb: ``(H, W, 3)`` float sRGB in ``[0, 1]`` (clipped; NaN -> 0), or ``(H, W)`` grey.
            uint8/uint16 arrays are accepted and scaled by their type's maximum.
        alpha: optional ``(H, W)`` float in ``[0, 1]``; kept for PNG, WebP and TIFF, dropped for
            JPEG and BMP (not composited: the colour under transparent pixels is written as is).
        bit_depth: 8, or 16 for PNG/TIFF (other formats hold 8 bits and fall back to 8).
        quality: JPEG/WebP quality (1-100).

    Returns:
        The path written.

    Raises:
        ImageError: unknown extension, bad array shape, unwritable target, encoder failure.
            On failure no temporary file is left and an existing target is untouched.
    """
    path = Path(path)
    ext = path.suffix.lower()
    fmt = SAVE_EXTENSIONS.get(ext)
    if fmt is None:
        known = ", ".join(sorted(SAVE_EXTENSIONS))
        raise ImageError(f"{path}: cannot save with extension {ext or '(none)'!r} (use one of {known})")
    if bit_depth not in (8, 16):
        raise ImageError(f"{path}: bit_depth must be 8 or 16, got {bit_depth}")
    if not 1 <= int(quality) <= 100:
        raise ImageError(f"{path}: quality must be in 1..100, got {quality}")
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{path}: expected an (H, W, 3) or (H, W) image array, got shape {arr.shape}")
    if fmt not in _SIXTEEN_BIT_FORMATS:
        bit_depth = 8
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != arr.shape[:2]:
            raise ImageError(f"{path}: alpha shape {alpha.shape} does not match image {arr.shape[:2]}")
        if fmt not in _ALPHA_FORMATS:
            alpha = None
    if path.is_dir():
        raise ImageError(f"{path}: is a directory")

    px = _quantize(arr, bit_depth)
    a = None if alpha is None else _quantize(alpha, bit_depth)

    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"{path}: cannot create output folder {parent}: {_one_line(exc)}") from None
    try:
        target = AtomicTarget(path, suffix=ext)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write to folder {parent}: {_one_line(exc)}") from None
    try:
        with open(target.tmp, "wb") as fh:
            if bit_depth == 16:
                fh.write(_encode_16bit(path, px, a, ext))
            else:
                _pil_image(px, a).save(fh, format=fmt, **_save_options(fmt, quality))
        target.commit()
    except BaseException as exc:
        target.abort()
        if isinstance(exc, ImageError):
            raise
        if isinstance(exc, (OSError, ValueError, TypeError, KeyError, SyntaxError)):
            raise ImageError(f"{path}: cannot save {fmt} image: {_one_line(exc)}") from None
        raise
    return path


def _pil_image(px: np.ndarray, a: np.ndarray | None) -> Image.Image:
    if px.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(px) if a is None else np.dstack([px, a]), "L" if a is None else "LA")
    if a is None:
        return Image.fromarray(np.ascontiguousarray(px), "RGB")
    return Image.fromarray(np.dstack([px, a]), "RGBA")


def _save_options(fmt: str, quality: int) -> dict:
    if fmt == "JPEG":
        return {"quality": int(quality), "optimize": True}
    if fmt == "WEBP":
        return {"quality": int(quality), "method": 4}
    if fmt == "PNG":
        return {"compress_level": 6}
    if fmt == "TIFF":
        return {"compression": "tiff_deflate"}
    return {}


def _encode_16bit(path: Path, px: np.ndarray, a: np.ndarray | None, ext: str) -> bytes:
    import cv2

    if px.ndim == 2:
        out = px if a is None else np.dstack([px, px, px, a])
        if a is not None:
            out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGBA2BGRA)
    elif a is None:
        out = cv2.cvtColor(np.ascontiguousarray(px), cv2.COLOR_RGB2BGR)
    else:
        out = cv2.cvtColor(np.ascontiguousarray(np.dstack([px, a])), cv2.COLOR_RGBA2BGRA)
    cv_ext = ".tiff" if ext in (".tif", ".tiff") else ".png"
    with _quiet_cv2():
        ok, buf = cv2.imencode(cv_ext, np.ascontiguousarray(out))
    if not ok:
        raise ImageError(f"{path}: OpenCV could not encode a 16-bit {cv_ext[1:].upper()} image")
    return buf.tobytes()


# --------------------------------------------------------------------------------------------
# listing


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def iter_image_files(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by extension), sorted, skipping hidden files and folders.

    Symbolic links to folders are not followed (no cycles). Returns an empty list for a folder
    without images; the folder must exist.
    """
    folder = Path(folder)
    found: list[Path] = []
    if not recursive:
        with os.scandir(folder) as it:
            for entry in it:
                if not _is_hidden(entry.name) and entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    found.append(folder / entry.name)
        return sorted(found)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        base = Path(dirpath)
        for name in filenames:
            if not _is_hidden(name) and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(base / name)
    return sorted(found)


def path_key(path: str | os.PathLike) -> Path:
    """``path`` resolved (symbolic links followed) to compare files; a link that cannot be resolved
    (a loop, ``RuntimeError`` or ``OSError``) keeps its absolute path, so it is reported when read
    instead of aborting a whole listing."""
    p = Path(path)
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(p))


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def find_images(inputs: Sequence[str | os.PathLike] | str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Expand files, folders and glob patterns into a list of image files.

    * a file is taken as is, whatever its extension (the user named it explicitly);
    * a folder contributes its image files (by :data:`IMAGE_EXTENSIONS`), recursively unless
      ``recursive=False``, sorted, skipping hidden files and hidden folders; a symbolic link loop
      named like an image is listed (reading it raises ``ImageError``), so the caller reports that
      one entry and goes on;
    * a glob (``*.jpg``, ``photos/**/*.png``; ``**`` is recursive) contributes the matching
      image files, sorted.

    Results keep the order of ``inputs``; duplicates are removed.

    Raises:
        ImageError: an input that does not exist, or a folder/glob with no images.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = path_key(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in inputs:
        text = os.fspath(item)
        p = Path(text).expanduser()
        if p.is_file():
            add(p)
        elif p.is_dir():
            files = iter_image_files(p, recursive=recursive)
            if not files:
                raise ImageError(f"{p}: no images found in folder (extensions: {' '.join(sorted(IMAGE_EXTENSIONS))})")
            for f in files:
                add(f)
        elif _has_glob(text):
            matches = sorted(
                Path(m)
                for m in glob.glob(os.path.expanduser(text), recursive=True)
                if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_EXTENSIONS and not _is_hidden(Path(m).name)
            )
            if not matches:
                raise ImageError(f"{text}: no images match this pattern")
            for f in matches:
                add(f)
        elif p.exists():
            raise ImageError(f"{p}: not a regular file or folder")
        else:
            raise ImageError(f"{p}: no such file or directory")
    return out


# --------------------------------------------------------------------------------------------
# destinations


def check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse (``ImageError``, one line) an output that is the input, a folder, or exists without
    ``overwrite``: an input is never lost and an existing result is replaced only on request."""
    if is_same_file(src, dst):
        raise ImageError(f"{dst}: refusing to overwrite the input image")
    if dst.is_dir():
        raise ImageError(f"{dst}: output is a folder, expected an image file name")
    if dst.exists() and not overwrite:
        raise ImageError(f"{dst}: output exists (use --overwrite to replace it)")


def is_same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file (same resolved path, or hard/symbolic links)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    try:
        return pa.resolve() == pb.resolve()
    except (OSError, RuntimeError):
        return os.path.abspath(pa) == os.path.abspath(pb)
