"""Multi-band GeoTIFFs (satellite imagery) with rasterio: bands, no-data, stretch, tiles, writing.

Satellite products store each band as its own plane, often as 16-bit or float reflectances with a
no-data value, in a map projection (CRS + affine transform). The ``nir`` domain reads them here:

* **bands** are picked by 1-based index (GDAL's convention, ``--bands 4``) or by name
  (``--band-name nir``): a band's *description* (``gdalinfo``'s "Description"), its ``name`` /
  ``BAND_NAME`` tag, or its colour interpretation (``red``, ``green``, ``blue``, ``gray``), matched
  without case. Many files describe nothing; then only indices work, and the error says so;
* **no-data**: :attr:`GeoRaster.valid` is False where any selected band is masked (GDAL's mask:
  the no-data value, an internal mask or alpha) or not finite (NaN/inf);
* **stretch**: :func:`percentile_stretch` maps each band's ``low``/``high`` percentiles (over
  valid pixels only, default 2 and 98) linearly to ``[0, 1]`` (float) or ``[0, 255]`` (uint8),
  clipping outside; invalid pixels become 0. :func:`band_limits` computes the limits of a whole
  file from a decimated read (at most ``max_pixels`` per band), so huge files need little memory;
* **windows**: :func:`read_raster` reads a window only; :func:`tile_windows` cuts a raster into
  overlapping tiles;
* **writing**: :func:`write_geotiff` and :class:`GeoTiffWriter` write a GeoTIFF with the given
  CRS, transform and no-data value (deflate-compressed, tiled when large) to a temporary file in
  the target folder and rename it into place: never a half-written file.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from lumachrome.atomic import AtomicTarget
from lumachrome.errors import DataError, ImageError

__all__ = [
    "GEOTIFF_EXTENSIONS",
    "GeoRaster",
    "GeoTiffWriter",
    "Window",
    "band_label",
    "band_limits",
    "band_names",
    "describe_bands",
    "empty_bands",
    "is_geotiff",
    "open_raster",
    "percentile_limits",
    "percentile_stretch",
    "read_raster",
    "resolve_bands",
    "tile_windows",
    "write_geotiff",
]

GEOTIFF_EXTENSIONS = (".tif", ".tiff")
#: Pixels per band read to estimate percentiles of a whole file (decimated read).
DEFAULT_STATS_PIXELS = 1_000_000


@dataclass(frozen=True)
class Window:
    """A pixel window: rows ``row .. row + height``, columns ``col .. col + width``."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


@dataclass
class GeoRaster:
    """Bands read from a raster file.

    Attributes:
        data: ``(C, H, W)`` float32 (``as_float``) or the file's dtype.
        valid: ``(H, W)`` bool, False where any band is no-data / masked / not finite.
        crs: ``rasterio.crs.CRS`` or None; transform: the ``Affine`` of *this window*.
        nodata: the file's no-data value (of the first selected band) or None.
        bands: the 1-based band indices read; descriptions: their descriptions (or None).
    """

    data: np.ndarray
    valid: np.ndarray
    crs: Any
    transform: Any
    nodata: float | None
    bands: list[int]
    descriptions: list[str | None] = field(default_factory=list)
    path: Path | None = None

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])


# --------------------------------------------------------------------------------------------
# opening


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@contextlib.contextmanager
def open_raster(path: str | os.PathLike) -> Iterator[Any]:
    """``rasterio.open`` for reading with one-line :class:`ImageError` messages."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected a raster file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            ds = rasterio.open(path)
        except RasterioError as e:
            raise ImageError(f"{path}: cannot read as a raster ({_one_line(e)})") from None
    try:
        yield ds
    finally:
        ds.close()


def is_geotiff(path: str | os.PathLike) -> bool:
    """True for a ``.tif``/``.tiff`` file that rasterio reads and that has a CRS or a map transform
    (a plain TIFF photo has neither). Never raises."""
    path = Path(path)
    if path.suffix.lower() not in GEOTIFF_EXTENSIONS or not path.is_file():
        return False
    try:
        with open_raster(path) as ds:
            return ds.crs is not None or not ds.transform.is_identity
    except (ImageError, OSError):
        return False


def describe_bands(path: str | os.PathLike) -> list[str]:
    """One label per band, ``"1: nir (uint16)"``, for messages and ``--help`` output."""
    with open_raster(path) as ds:
        return [band_label(ds, i) for i in range(1, ds.count + 1)]


def band_label(ds: Any, index: int) -> str:
    """``"4: nir (uint16)"``: band ``index`` of an open dataset, for messages."""
    names = [n for n in band_names(ds, index) if n]
    return f"{index}: {names[0] if names else '(no description)'} ({ds.dtypes[index - 1]})"


def band_names(ds: Any, index: int) -> list[str]:
    """Names a band answers to: description, name/BAND_NAME tags, colour interpretation."""
    names = [ds.descriptions[index - 1] or ""]
    try:
        tags = ds.tags(index)
    except Exception:  # pragma: no cover - drivers without band tags
        tags = {}
    names += [str(v) for k, v in tags.items() if k.lower() in ("name", "band_name", "bandname")]
    try:
        interp = ds.colorinterp[index - 1].name
    except Exception:  # pragma: no cover
        interp = ""
    if interp in ("red", "green", "blue", "gray", "alpha"):
        names.append(interp)
    return [n.strip() for n in names]


def resolve_bands(ds: Any, bands: Sequence[int | str] | None) -> list[int]:
    """1-based band indices for ``bands``: ints / digit strings are indices, other strings names.

    ``None`` means every band. A name matches a band's description, ``name``/``BAND_NAME`` tag
    or colour interpretation, case-insensitively; it must match exactly one band.

    Raises:
        ImageError: an index out of range, or a name that matches no band or several.
    """
    path = getattr(ds, "name", "raster")
    if bands is None:
        return list(range(1, ds.count + 1))
    if isinstance(bands, (int, str)):
        bands = [bands]
    out: list[int] = []
    for b in bands:
        if isinstance(b, str) and b.strip().isdigit():
            b = int(b.strip())
        if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
            if not 1 <= int(b) <= ds.count:
                raise ImageError(f"{path}: band {b} out of range (the file has {ds.count} band(s), numbered from 1)")
            out.append(int(b))
            continue
        if not isinstance(b, str) or not b.strip():
            raise ImageError(f"{path}: band {b!r} is neither a 1-based index nor a name")
        want = b.strip().lower()
        hits = [i for i in range(1, ds.count + 1) if want in (n.lower() for n in band_names(ds, i) if n)]
        if len(hits) != 1:
            labels = "; ".join(band_label(ds, i) for i in range(1, ds.count + 1))
            why = "no band" if not hits else f"{len(hits)} bands ({', '.join(map(str, hits))})"
            raise ImageError(
                f"{path}: {why} named {b!r} (bands: {labels}); choose the band by its 1-based index instead"
            )
        out.append(hits[0])
    return out


# --------------------------------------------------------------------------------------------
# reading


def read_raster(
    path: str | os.PathLike,
    bands: Sequence[int | str] | int | str | None = None,
    *,
    window: Window | None = None,
    out_shape: tuple[int, int] | None = None,
    as_float: bool = True,
) -> GeoRaster:
    """Read ``bands`` (default: all) of a raster, optionally a ``window`` and/or decimated.

    Args:
        path: a GeoTIFF (or any GDAL raster).
        bands: 1-based indices and/or names (see :func:`resolve_bands`).
        window: read only these pixels (clipped to the raster).
        out_shape: ``(h, w)``: read resampled to this size (nearest; for statistics/previews).
        as_float: return float32 data (NaN stays NaN); else the file's dtype.

    Raises:
        ImageError: unreadable file, bad band selection, empty window.
    """
    from rasterio.errors import NodataShadowWarning, RasterioError
    from rasterio.windows import Window as RioWindow

    with open_raster(path) as ds:
        idx = resolve_bands(ds, bands)
        rio_win = None
        transform = ds.transform
        if window is not None:
            r0, c0 = max(0, window.row), max(0, window.col)
            r1, c1 = min(ds.height, window.row + window.height), min(ds.width, window.col + window.width)
            if r1 <= r0 or c1 <= c0:
                raise ImageError(f"{path}: window {window} lies outside the {ds.width}x{ds.height} raster")
            rio_win = RioWindow(c0, r0, c1 - c0, r1 - r0)
            transform = ds.transform @ type(ds.transform).translation(c0, r0)
        shape = None if out_shape is None else (len(idx), int(out_shape[0]), int(out_shape[1]))
        try:
            data = ds.read(idx, window=rio_win, out_shape=shape)
            with warnings.catch_warnings():  # "nodata shadows the alpha band": nodata is what we want
                warnings.simplefilter("ignore", NodataShadowWarning)
                masks = ds.read_masks(idx, window=rio_win, out_shape=shape)
        except (RasterioError, ValueError, MemoryError) as e:
            raise ImageError(f"{path}: cannot read bands {idx} ({_one_line(e)})") from None
        if shape is not None:
            sy = ds.height / shape[1] if rio_win is None else rio_win.height / shape[1]
            sx = ds.width / shape[2] if rio_win is None else rio_win.width / shape[2]
            transform = transform @ type(transform).scale(sx, sy)
        valid = np.all(masks > 0, axis=0)
        if data.dtype.kind == "f":
            valid &= np.all(np.isfinite(data), axis=0)
        if as_float:
            data = data.astype(np.float32, copy=False)
        nodata = ds.nodatavals[idx[0] - 1]
        return GeoRaster(
            data=data,
            valid=valid,
            crs=ds.crs,
            transform=transform,
            nodata=None if nodata is None else float(nodata),
            bands=idx,
            descriptions=[ds.descriptions[i - 1] for i in idx],
            path=Path(path),
        )


def band_limits(
    source: str | os.PathLike | GeoRaster,
    bands: Sequence[int | str] | int | str | None = None,
    low: float = 2.0,
    high: float = 98.0,
    *,
    max_pixels: int = DEFAULT_STATS_PIXELS,
) -> list[tuple[float, float]]:
    """Per-band ``(value at low percentile, value at high percentile)`` over valid pixels.

    For a path, the file is read decimated to at most ``max_pixels`` per band (nearest
    neighbour), so any size costs about ``max_pixels * bands * 4`` bytes.
    """
    if isinstance(source, GeoRaster):
        raster = source
    else:
        with open_raster(source) as ds:
            h, w = ds.height, ds.width
        scale = min(1.0, math.sqrt(max_pixels / max(1, h * w)))
        shape = None if scale >= 1.0 else (max(1, round(h * scale)), max(1, round(w * scale)))
        raster = read_raster(source, bands, out_shape=shape)
    return percentile_limits(raster.data, raster.valid, low, high)


def empty_bands(
    path: str | os.PathLike, bands: Sequence[int | str] | None = None, *, max_pixels: int = DEFAULT_STATS_PIXELS
) -> list[int]:
    """The 1-based indices among ``bands`` that hold no valid pixel (every pixel no-data, masked or
    NaN/inf): such a band makes every output pixel no-data.

    A decimated read (at most ``max_pixels`` per band) finds valid pixels in any usual band; a band
    that shows none there is confirmed by a full read, window by window (bounded memory).
    """
    with open_raster(path) as ds:
        idx = resolve_bands(ds, bands)
        h, w = ds.height, ds.width
    scale = min(1.0, math.sqrt(max_pixels / max(1, h * w)))
    shape = None if scale >= 1.0 else (max(1, round(h * scale)), max(1, round(w * scale)))
    suspects = [b for b in idx if not read_raster(path, [b], out_shape=shape).valid.any()]
    if shape is None:
        return suspects
    rows = max(1, max_pixels // max(1, w))
    empty = []
    for b in suspects:
        if not any(read_raster(path, [b], window=Window(r, 0, min(rows, h - r), w)).valid.any()
                   for r in range(0, h, rows)):
            empty.append(b)
    return empty


def percentile_limits(data: np.ndarray, valid: np.ndarray | None, low: float,
                      high: float) -> list[tuple[float, float]]:
    """Per-band ``(low, high)`` percentile values of ``data`` ``(C, H, W)`` over the ``valid`` pixels
    (finite ones for float data)."""
    if not 0.0 <= low < high <= 100.0:
        raise DataError(f"percentile stretch: need 0 <= low < high <= 100, got low={low}, high={high}")
    out = []
    for band in data:
        vals = band[valid] if valid is not None else band.ravel()
        vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
        if vals.size == 0:
            out.append((0.0, 1.0))
            continue
        lo, hi = np.percentile(vals.astype(np.float64, copy=False), [low, high])
        out.append((float(lo), float(hi)))
    return out


def percentile_stretch(
    data: np.ndarray,
    valid: np.ndarray | None = None,
    low: float = 2.0,
    high: float = 98.0,
    *,
    limits: Sequence[tuple[float, float]] | None = None,
    joint: bool = False,
    out: str = "uint8",
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Linear per-band stretch of ``data`` ``(C, H, W)`` (or ``(H, W)``) from percentiles.

    Each band's ``low``/``high`` percentiles over the valid pixels (or the given ``limits``, e.g.
    from :func:`band_limits` on a whole file when stretching one tile) map to 0 and 1 (or 255),
    values outside are clipped, invalid pixels become 0. ``joint``: one ``(min of lows, max of
    highs)`` range for all bands, which keeps the colour balance of an RGB composite.

    Returns:
        ``(stretched, limits)``: uint8 or float32 in ``[0, 1]`` of the same shape, and the
        ``(lo, hi)`` used per band.
    """
    if out not in ("uint8", "float"):
        raise DataError(f"percentile stretch: out must be 'uint8' or 'float', got {out!r}")
    arr = np.asarray(data)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(f"percentile stretch: expected (C, H, W) or (H, W) data, got shape {arr.shape}")
    if valid is not None and valid.shape != arr.shape[1:]:
        raise DataError(f"percentile stretch: mask shape {valid.shape} does not match data {arr.shape[1:]}")
    lims = list(limits) if limits is not None else percentile_limits(arr, valid, low, high)
    if len(lims) != arr.shape[0]:
        raise DataError(f"percentile stretch: {len(lims)} limits for {arr.shape[0]} band(s)")
    if joint:
        j = (min(lo for lo, _ in lims), max(hi for _, hi in lims))
        lims = [j] * len(lims)
    res = np.empty(arr.shape, dtype=np.float32)
    for c, (lo, hi) in enumerate(lims):
        span = hi - lo if hi - lo > 1e-12 else 1.0
        np.subtract(arr[c], np.float32(lo), out=res[c], dtype=np.float32)
        res[c] *= np.float32(1.0 / span)
    np.clip(res, 0.0, 1.0, out=res)
    res = np.nan_to_num(res, nan=0.0, copy=False)
    if valid is not None:
        res[:, ~valid] = 0.0
    if out == "uint8":
        res = np.rint(res * 255.0).astype(np.uint8)
    return (res[0] if squeeze else res), [(float(a), float(b)) for a, b in lims]


def tile_windows(height: int, width: int, tile: int, overlap: int = 0) -> list[Window]:
    """Windows of at most ``tile x tile`` covering ``height x width``, neighbours overlapping by
    ``overlap`` px; the last row/column is shifted back to end at the border (full-size tiles
    whenever the raster is larger than a tile). Row-major order."""
    if tile < 1 or not 0 <= overlap < tile:
        raise DataError(f"tile_windows: need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        step = tile - overlap
        s = list(range(0, n - tile, step)) + [n - tile]
        return sorted(set(s))

    return [
        Window(r, c, min(tile, height - r), min(tile, width - c)) for r in starts(height) for c in starts(width)
    ]


# --------------------------------------------------------------------------------------------
# writing


def _profile(
    count: int, height: int, width: int, dtype: Any, crs: Any, transform: Any, nodata: float | None,
    compress: str | None,
) -> dict[str, Any]:  # fmt: skip
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "count": int(count),
        "height": int(height),
        "width": int(width),
        "dtype": np.dtype(dtype).name,
        "crs": crs,
        "transform": transform,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    if compress:
        profile["compress"] = compress
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if count == 3 and np.dtype(dtype) == np.uint8:
        profile["photometric"] = "RGB"
    return profile


class GeoTiffWriter:
    """Write a GeoTIFF window by window; the file appears at ``path`` only on :meth:`commit`.

    ::

        with GeoTiffWriter(dst, count=3, height=h, width=w, dtype="uint8", crs=crs, transform=t) as out:
            out.write(block, Window(r, 0, bh, w))   # block: (3, bh, w)
        # leaving the block without an exception commits (renames into place); on error the
        # temporary file is removed and nothing is left behind.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        count: int,
        height: int,
        width: int,
        dtype: Any = "uint8",
        crs: Any = None,
        transform: Any = None,
        nodata: float | None = None,
        descriptions: Sequence[str | None] | None = None,
        compress: str | None = "deflate",
    ) -> None:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioError
        from rasterio.transform import Affine

        self.path = Path(path)
        try:
            self._target = AtomicTarget(self.path, suffix=".tif")
        except OSError as e:
            raise ImageError(f"{self.path}: cannot write ({e.strerror or e})") from None
        self._tmp = self._target.tmp
        profile = _profile(count, height, width, dtype, crs, transform or Affine.identity(), nodata, compress)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self._tmp, "w", **profile)
            for i, d in enumerate(descriptions or [], start=1):
                if d:
                    self._ds.set_band_description(i, d)
        except (RasterioError, ValueError, TypeError) as e:
            self._cleanup()
            raise ImageError(f"{self.path}: cannot write GeoTIFF ({_one_line(e)})") from None
        self.done = False

    def write(self, block: np.ndarray, window: Window) -> None:
        """Write ``block`` ``(count, window.height, window.width)`` at ``window``."""
        from rasterio.windows import Window as RioWindow

        self._ds.write(block, window=RioWindow(window.col, window.row, window.width, window.height))

    def commit(self) -> Path:
        """Close the file and rename it to ``path`` (replacing an existing file)."""
        from rasterio.errors import RasterioError

        try:
            self._ds.close()
            self._target.commit()
        except (OSError, RasterioError) as e:
            self._cleanup()
            raise ImageError(f"{self.path}: cannot write ({_one_line(e)})") from None
        self.done = True
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (nothing appears at ``path``)."""
        self._cleanup()

    def _cleanup(self) -> None:
        ds = getattr(self, "_ds", None)
        if ds is not None and not ds.closed:
            with contextlib.suppress(Exception):
                ds.close()
        self._target.abort()

    def __enter__(self) -> "GeoTiffWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_geotiff(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    crs: Any = None,
    transform: Any = None,
    nodata: float | None = None,
    descriptions: Sequence[str | None] | None = None,
    compress: str | None = "deflate",
) -> Path:
    """Write ``data`` ``(C, H, W)`` (or ``(H, W)``) as a GeoTIFF with ``crs``/``transform``/``nodata``,
    atomically (temporary file + rename). Returns ``path``."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ImageError(f"{path}: expected (C, H, W) data for a GeoTIFF, got shape {arr.shape}")
    c, h, w = arr.shape
    with GeoTiffWriter(
        path, count=c, height=h, width=w, dtype=arr.dtype, crs=crs, transform=transform, nodata=nodata,
        descriptions=descriptions, compress=compress,
    ) as out:  # fmt: skip
        out.write(arr, Window(0, 0, h, w))
    return Path(path)
