"""Tests for lumachrome.geo: GeoTIFF bands, no-data, percentile stretch, windows, atomic writing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lumachrome.geo import (
    GeoRaster,
    GeoTiffWriter,
    Window,
    band_limits,
    describe_bands,
    is_geotiff,
    percentile_stretch,
    read_raster,
    tile_windows,
    write_geotiff,
)
from lumachrome.errors import DataError, ImageError

CRS_UTM = CRS.from_epsg(32633)
TRANSFORM = from_origin(404400.0, 5342400.0, 10.0, 10.0)


def make_geotiff(path: Path, data: np.ndarray, *, nodata=None, descriptions=None, crs=CRS_UTM, transform=TRANSFORM) -> Path:
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", count=c, height=h, width=w, dtype=data.dtype, crs=crs,
                       transform=transform, nodata=nodata) as ds:  # fmt: skip
        ds.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(i, d)
    return path


@pytest.fixture()
def scene(tmp_path) -> Path:
    """4-band uint16 (blue, green, red, nir) 40x50 with no-data 0 in the top-left 5x5 corner."""
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, (4, 40, 50)).astype(np.uint16)
    data[3] = np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) + 1  # nir: a ramp
    data[:, :5, :5] = 0
    return make_geotiff(tmp_path / "scene.tif", data, nodata=0, descriptions=["blue", "green", "red", "NIR"])


def test_read_bands_by_index_and_name(scene):
    r = read_raster(scene, [4, 3])
    assert isinstance(r, GeoRaster) and r.data.shape == (2, 40, 50) and r.data.dtype == np.float32
    assert r.bands == [4, 3] and r.descriptions == ["NIR", "red"]
    assert r.crs == CRS_UTM and r.transform == TRANSFORM and r.nodata == 0.0
    by_name = read_raster(scene, ["nir", "Red"], as_float=False)  # case-insensitive
    assert by_name.bands == [4, 3] and by_name.data.dtype == np.uint16
    np.testing.assert_array_equal(by_name.data, r.data.astype(np.uint16))
    assert read_raster(scene, "4").bands == [4]  # a digit string is an index
    assert read_raster(scene).bands == [1, 2, 3, 4]
    labels = describe_bands(scene)
    assert labels[3] == "4: NIR (uint16)"


def test_band_errors_name_the_file_and_the_bands(scene):
    with pytest.raises(ImageError, match=r"band 5 out of range \(the file has 4"):
        read_raster(scene, [5])
    with pytest.raises(ImageError, match="no band named 'swir'.*4: NIR"):
        read_raster(scene, ["swir"])
    with pytest.raises(ImageError, match="no such file"):
        read_raster(scene.with_name("missing.tif"))
    bad = scene.with_name("bad.tif")
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageError, match="cannot read as a raster"):
        read_raster(bad)


def test_nodata_and_nan_masks(scene, tmp_path):
    r = read_raster(scene)
    assert not r.valid[:5, :5].any() and r.valid[5:, :].all() and r.valid[:, 5:].all()
    f = np.ones((1, 10, 12), np.float32)
    f[0, 2, 3] = np.nan
    f[0, 7, 7] = -99999
    path = make_geotiff(tmp_path / "f.tif", f, nodata=-99999)
    v = read_raster(path).valid
    assert v.sum() == 10 * 12 - 2 and not v[2, 3] and not v[7, 7]


def test_windowed_and_decimated_reads(scene):
    full = read_raster(scene, [4])
    win = read_raster(scene, [4], window=Window(10, 20, 8, 6))
    np.testing.assert_array_equal(win.data, full.data[:, 10:18, 20:26])
    assert win.transform == from_origin(404400.0 + 20 * 10, 5342400.0 - 10 * 10, 10.0, 10.0)
    clipped = read_raster(scene, [4], window=Window(35, 45, 20, 20))  # clipped to the raster
    assert clipped.data.shape == (1, 5, 5)
    with pytest.raises(ImageError, match="outside"):
        read_raster(scene, [4], window=Window(100, 0, 5, 5))
    small = read_raster(scene, [4], out_shape=(20, 25))
    assert small.data.shape == (1, 20, 25) and small.transform.a == pytest.approx(20.0)


def test_percentile_stretch():
    ramp = np.arange(101, dtype=np.float32)[None, None, :].repeat(2, axis=1)  # (1, 2, 101): 0..100
    out, lims = percentile_stretch(ramp, low=2, high=98)
    assert lims == [(2.0, 98.0)]
    assert out.dtype == np.uint8 and out[0, 0, 2] == 0 and out[0, 0, 98] == 255 and out[0, 0, 50] == 128
    assert out[0, 0, 0] == 0 and out[0, 0, 100] == 255  # clipped
    f, _ = percentile_stretch(ramp, low=0, high=100, out="float")
    np.testing.assert_allclose(f[0, 0], np.arange(101) / 100, atol=1e-6)
    # statistics over valid pixels only; invalid pixels become 0
    data = np.array([[[1000, 10, 20, 30]]], np.float32)
    valid = np.array([[False, True, True, True]])
    out, lims = percentile_stretch(data, valid, low=0, high=100)
    assert lims == [(10.0, 30.0)] and out[0, 0].tolist() == [0, 0, 128, 255]
    # per band vs joint
    two = np.stack([np.linspace(0, 10, 50), np.linspace(0, 100, 50)]).reshape(2, 5, 10).astype(np.float32)
    per, _ = percentile_stretch(two, low=0, high=100)
    joint, jl = percentile_stretch(two, low=0, high=100, joint=True)
    assert per[0].max() == 255 and joint[0].max() in (25, 26) and jl == [(0.0, 100.0)] * 2
    # given limits; (H, W) input; errors
    out2, _ = percentile_stretch(np.array([[0.0, 5.0, 10.0]]), limits=[(0.0, 10.0)])
    assert out2.shape == (1, 3) and out2.tolist() == [[0, 128, 255]]
    with pytest.raises(DataError):
        percentile_stretch(ramp, low=50, high=10)
    with pytest.raises(DataError):
        percentile_stretch(ramp, limits=[(0, 1), (0, 1)])


def test_band_limits_decimated_close_to_full(scene):
    full = band_limits(scene, [4], 2, 98, max_pixels=10**9)
    dec = band_limits(scene, [4], 2, 98, max_pixels=500)
    # the ramp's 2nd/98th percentiles over valid pixels, within the decimation error
    assert abs(dec[0][0] - full[0][0]) < 80 and abs(dec[0][1] - full[0][1]) < 80
    r = read_raster(scene, [4])
    assert band_limits(r, low=2, high=98) == full


@pytest.mark.parametrize("h,w,tile,overlap", [(40, 50, 16, 4), (16, 16, 16, 4), (10, 7, 16, 4), (100, 33, 32, 0)])
def test_tile_windows_cover_everything(h, w, tile, overlap):
    wins = tile_windows(h, w, tile, overlap)
    count = np.zeros((h, w), int)
    for win in wins:
        assert win.height <= tile and win.width <= tile
        assert win.row + win.height <= h and win.col + win.width <= w
        count[win.slices] += 1
    assert (count >= 1).all()
    if h > tile and w > tile:
        assert all(wn.height == tile and wn.width == tile for wn in wins)
    rows = sorted({wn.row for wn in wins})
    for a, b in zip(rows, rows[1:]):
        assert b - a <= tile - overlap  # neighbours overlap by at least `overlap`
    with pytest.raises(DataError):
        tile_windows(h, w, 8, 8)


def test_write_geotiff_keeps_georeferencing(tmp_path, scene):
    r = read_raster(scene, [3, 2, 1])
    rgb, _ = percentile_stretch(r.data, r.valid)
    out = write_geotiff(tmp_path / "sub" / "rgb.tif", rgb, crs=r.crs, transform=r.transform, nodata=0,
                        descriptions=["red", "green", "blue"])  # fmt: skip
    with rasterio.open(out) as ds:
        assert ds.crs == CRS_UTM and ds.transform == TRANSFORM and ds.nodata == 0 and ds.count == 3
        assert list(ds.descriptions) == ["red", "green", "blue"]
        np.testing.assert_array_equal(ds.read(), rgb)
    assert is_geotiff(out) and is_geotiff(scene)
    assert [p.name for p in out.parent.iterdir()] == ["rgb.tif"]  # no temporary files left
    plain = tmp_path / "plain.tif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain)
    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    assert not is_geotiff(plain) and not is_geotiff(png) and not is_geotiff(tmp_path / "none.tif")


def test_writer_is_atomic(tmp_path):
    dst = tmp_path / "out.tif"
    write_geotiff(dst, np.full((1, 8, 8), 7, np.uint8), crs=CRS_UTM, transform=TRANSFORM)
    with pytest.raises(RuntimeError):
        with GeoTiffWriter(dst, count=1, height=8, width=8, crs=CRS_UTM, transform=TRANSFORM) as w:
            w.write(np.zeros((1, 4, 8), np.uint8), Window(0, 0, 4, 8))
            raise RuntimeError("interrupted")
    with rasterio.open(dst) as ds:  # the old file is untouched
        assert (ds.read() == 7).all()
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]
    # window by window
    with GeoTiffWriter(dst, count=1, height=8, width=8, crs=CRS_UTM, transform=TRANSFORM) as w:
        w.write(np.ones((1, 4, 8), np.uint8), Window(0, 0, 4, 8))
        w.write(np.full((1, 4, 8), 2, np.uint8), Window(4, 0, 4, 8))
    with rasterio.open(dst) as ds:
        a = ds.read(1)
    assert (a[:4] == 1).all() and (a[4:] == 2).all()
    with pytest.raises(ImageError):
        write_geotiff(tmp_path / "bad.tif", np.zeros((2, 2, 2, 2), np.uint8))


@pytest.mark.shared
def test_real_geotiffs(shared_data):
    landsat = shared_data / "nir" / "landsat"
    r = read_raster(landsat / "L7_ETMs.tif", [4, 3, 2, 1])
    assert r.data.shape == (4, 352, 349) and r.crs.to_epsg() == 31985 and r.valid.all()
    f = read_raster(landsat / "lsat7_2000_40.tif")
    assert r.nodata is None and f.nodata == -99999.0 and 0 < (~f.valid).sum() < f.valid.size // 2
    assert f.data[0][f.valid].min() > -1000  # no-data values are masked, not data
    patch = next(p for p in sorted((shared_data / "nir" / "bigearthnet").iterdir()) if p.is_dir())
    b08 = read_raster(patch / f"{patch.name}_B08.tif")
    assert b08.data.shape == (1, 120, 120) and b08.transform.a == 10.0
    stretched, lims = percentile_stretch(b08.data, b08.valid)
    assert stretched.dtype == np.uint8 and lims[0][0] < lims[0][1]
