"""Raster reading and writing: georeference, windows, masks, band names, safe writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from sar_colorizer.errors import InputError, OutputError, OutputExistsError, RasterError
from sar_colorizer.io.raster import (
    RasterWriter,
    atomic_path,
    check_output_path,
    driver_for_path,
    read_dataset,
    read_info,
    read_raster,
    resolve_bands,
    world_file_path,
    write_raster,
)

HEIGHT, WIDTH = 32, 40
UTM31 = CRS.from_epsg(32631)
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 4800000.0)  # from_origin(600000, 4800000, 10, 10)


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def sigma0_db(rng) -> np.ndarray:
    """Float32 dB backscatter, (1, 32, 40)."""
    return rng.normal(-15.0, 4.0, (1, HEIGHT, WIDTH)).astype(np.float32)


@pytest.fixture
def rgb_u8(rng) -> np.ndarray:
    return rng.integers(0, 256, (3, HEIGHT, WIDTH), dtype=np.uint8)


@pytest.fixture
def ring_valid() -> np.ndarray:
    """Valid inside, a nodata border of 3 px as around a Sentinel-1 swath, and one hole."""
    valid = np.zeros((HEIGHT, WIDTH), dtype=bool)
    valid[3:-3, 3:-3] = True
    valid[10, 20] = False
    return valid


@pytest.fixture
def source_profile(make_geotiff, sigma0_db) -> dict:
    """The profile of a tiled, compressed GeoTIFF with nodata, as a SAR input would have."""
    path = make_geotiff(
        "source.tif", sigma0_db, nodata=-99.0, tiled=True, blockxsize=16, blockysize=16,
        compress="deflate", predictor=3,
    )
    return read_info(path).profile


# ----------------------------------------------------------------------------- reading


def test_read_info_reports_georeference_and_bands(make_geotiff, sigma0_db):
    path = make_geotiff("two.tif", np.concatenate([sigma0_db, sigma0_db]), nodata=-99.0,
                        descriptions=("VV", "VH"))
    info = read_info(path)
    assert (info.width, info.height, info.count, info.dtype) == (WIDTH, HEIGHT, 2, "float32")
    assert info.crs == UTM31 and info.transform == TRANSFORM
    assert info.nodata == -99.0
    assert info.descriptions == ("VV", "VH")
    assert info.driver == "GTiff" and info.profile["crs"] == UTM31
    assert info.shape == (HEIGHT, WIDTH)


def test_missing_file_is_a_one_line_raster_error(tmp_path):
    with pytest.raises(RasterError) as caught:
        read_info(tmp_path / "foo.tif")
    assert str(caught.value) == f"{tmp_path / 'foo.tif'}: no such file"


def test_text_file_is_not_a_raster(tmp_path):
    text = tmp_path / "foo.txt"
    text.write_text("not an image\n")
    for call in (read_info, read_raster):
        with pytest.raises(RasterError) as caught:
            call(text)
        message = str(caught.value)
        assert message.startswith(f"{text}: not a raster that GDAL can read")
        assert "\n" not in message


def test_full_read_keeps_values_and_dtype(make_geotiff, sigma0_db):
    values, valid = read_raster(make_geotiff("a.tif", sigma0_db))
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, sigma0_db)
    assert valid.shape == (HEIGHT, WIDTH) and valid.all()


def test_windowed_read_equals_the_slice_of_the_full_read(make_geotiff, sigma0_db):
    data = sigma0_db.copy()
    data[0, 5:9, 12:30] = -99.0
    path = make_geotiff("a.tif", data, nodata=-99.0, tiled=True, blockxsize=16, blockysize=16)
    full, full_valid = read_raster(path)
    for window in (Window(7, 3, 25, 11), ((3, 14), (7, 32))):
        part, part_valid = read_raster(path, window=window)
        np.testing.assert_array_equal(part, full[:, 3:14, 7:32])
        np.testing.assert_array_equal(part_valid, full_valid[3:14, 7:32])
    assert not full_valid[5:9, 12:30].any()
    with rasterio.open(path) as src:  # windows of one open dataset, as streaming reads them
        for top in range(0, HEIGHT, 5):
            window = Window(0, top, WIDTH, min(9, HEIGHT - top))
            part, part_valid = read_dataset(src, path, window=window)
            rows = slice(top, top + window.height)
            np.testing.assert_array_equal(part, full[:, rows])
            np.testing.assert_array_equal(part_valid, full_valid[rows])


def test_window_outside_the_raster_is_refused(make_geotiff, sigma0_db):
    path = make_geotiff("a.tif", sigma0_db)
    with pytest.raises(RasterError, match="outside"):
        read_raster(path, window=Window(30, 0, 20, 10))


def test_decimated_read_has_the_requested_shape_and_original_values(make_geotiff):
    ramp = np.arange(HEIGHT * WIDTH, dtype=np.float32).reshape(1, HEIGHT, WIDTH)
    path = make_geotiff("ramp.tif", ramp)
    small, valid = read_raster(path, out_shape=(8, 10))
    assert small.shape == (1, 8, 10) and valid.shape == (8, 10)
    # nearest neighbour: every value is one of the raster's, none is an average
    assert np.isin(small, ramp).all()
    # a (bands, height, width) out_shape works too
    assert read_raster(path, out_shape=(1, 16, 20))[0].shape == (1, 16, 20)


def test_valid_mask_from_nodata_value_and_nan(make_geotiff, sigma0_db):
    data = sigma0_db.copy()
    data[0, 0, :] = -99.0
    data[0, 5, 5] = np.nan  # NaN is invalid even where it is not the declared nodata
    data[0, 6, 6] = np.inf
    _, valid = read_raster(make_geotiff("a.tif", data, nodata=-99.0))
    expected = np.ones((HEIGHT, WIDTH), dtype=bool)
    expected[0, :] = False
    expected[5, 5] = expected[6, 6] = False
    np.testing.assert_array_equal(valid, expected)


def test_valid_mask_from_nan_nodata(make_geotiff, sigma0_db, ring_valid):
    data = np.where(ring_valid, sigma0_db, np.nan).astype(np.float32)
    _, valid = read_raster(make_geotiff("a.tif", data, nodata=float("nan")))
    np.testing.assert_array_equal(valid, ring_valid)


def test_valid_mask_from_alpha_band_and_alpha_is_not_data(make_geotiff, rgb_u8, ring_valid):
    alpha = np.where(ring_valid, 255, 0).astype(np.uint8)
    path = make_geotiff("rgba.png", np.concatenate([rgb_u8, alpha[None]]))
    info = read_info(path)
    assert info.colorinterp[-1] == "alpha" and resolve_bands(info, None) == [1, 2, 3]
    values, valid = read_raster(path)
    np.testing.assert_array_equal(values, rgb_u8)
    np.testing.assert_array_equal(valid, ring_valid)
    # decimated, the mask is decimated with the data
    small, small_valid = read_raster(path, out_shape=(HEIGHT // 2, WIDTH // 2))
    assert small_valid.shape == (HEIGHT // 2, WIDTH // 2) and not small_valid.all()


def test_zero_is_nodata_only_where_every_band_is_zero(make_geotiff, rgb_u8):
    data = np.maximum(rgb_u8, 1)
    data[:, 0, 0] = 0
    data[0, 1, 1] = 0  # one band at zero: still valid
    path = make_geotiff("rgb.tif", data)
    assert read_raster(path)[1].all()
    _, valid = read_raster(path, zero_is_nodata=True)
    assert not valid[0, 0] and valid[1, 1] and valid.sum() == HEIGHT * WIDTH - 1


# ----------------------------------------------------------------------------- bands


def test_bands_by_description_number_and_order(make_geotiff, sigma0_db):
    two = np.concatenate([sigma0_db, sigma0_db - 7.0])
    path = make_geotiff("two.tif", two, descriptions=("VV", "VH"))
    info = read_info(path)
    assert resolve_bands(info, None) == [1, 2]
    assert resolve_bands(info, "VH") == [2]
    assert resolve_bands(info, "vh, VV") == [2, 1]
    assert resolve_bands(info, "2,1") == [2, 1]
    assert resolve_bands(info, [2, "vv"]) == [2, 1]
    assert resolve_bands(info, 1) == [1]
    values, _ = read_raster(path, bands="VH")
    np.testing.assert_array_equal(values, two[1:])


def test_band_name_matches_a_word_of_the_description(make_geotiff, sigma0_db):
    path = make_geotiff("two.tif", np.concatenate([sigma0_db] * 2),
                        descriptions=("Sigma0_VV_db", "Sigma0_VH_db"))
    assert resolve_bands(read_info(path), "VH") == [2]


@pytest.mark.parametrize(
    "name",
    ["S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_VH.tif", "s1a-iw-grd-vh-20200101t000000-001.tif"],
)
def test_single_band_file_is_named_by_its_file_name(make_geotiff, sigma0_db, name):
    info = read_info(make_geotiff(name, sigma0_db))
    assert resolve_bands(info, "VH") == [1]
    with pytest.raises(RasterError, match="no band named 'VV'"):
        resolve_bands(info, "VV")


def test_ambiguous_file_name_and_unknown_bands_are_refused(make_geotiff, sigma0_db):
    info = read_info(make_geotiff("scene_vv_vh_ratio.tif", sigma0_db))
    with pytest.raises(RasterError, match="no band named 'VH'"):
        resolve_bands(info, "VH")
    with pytest.raises(RasterError, match="bands 1 to 1, not 2"):
        resolve_bands(info, "2")
    with pytest.raises(RasterError, match="bands 1 to 1, not 0"):
        resolve_bands(info, [0])
    with pytest.raises(RasterError, match="empty band selection"):
        resolve_bands(info, " , ")


# ----------------------------------------------------------------------------- writing


def test_geotiff_round_trip_keeps_georeference_dtype_nodata(tmp_path, source_profile, sigma0_db,
                                                            ring_valid):
    out = write_raster(tmp_path / "out.tif", sigma0_db, source_profile, valid=ring_valid)
    with rasterio.open(out) as dst:
        assert dst.driver == "GTiff" and dst.crs == UTM31 and dst.transform == TRANSFORM
        assert dst.dtypes == ("float32",) and dst.nodata == -99.0
        assert dst.profile["tiled"]
    values, valid = read_raster(out)
    np.testing.assert_array_equal(valid, ring_valid)
    np.testing.assert_array_equal(values[0][ring_valid], sigma0_db[0][ring_valid])
    assert (values[0][~ring_valid] == -99.0).all()
    assert files_in(tmp_path) == {"source.tif", "out.tif"}


def test_float_without_nodata_gets_nan_nodata(tmp_path, sigma0_db, ring_valid):
    profile = {"driver": "GTiff", "crs": UTM31, "transform": TRANSFORM}
    out = write_raster(tmp_path / "ab.tif", np.concatenate([sigma0_db] * 2), profile,
                       valid=ring_valid, descriptions=("a", "b"))
    info = read_info(out)
    assert info.nodata is not None and np.isnan(info.nodata)
    assert info.descriptions == ("a", "b")
    np.testing.assert_array_equal(read_raster(out)[1], ring_valid)


def test_float_three_band_output_is_not_treated_as_rgb(tmp_path, sigma0_db, ring_valid):
    lab = np.concatenate([sigma0_db] * 3)  # e.g. a float LAB image: NaN nodata, no alpha
    out = write_raster(tmp_path / "lab.tif", lab, {"crs": UTM31, "transform": TRANSFORM},
                       valid=ring_valid)
    with rasterio.open(out) as dst:
        assert dst.count == 3 and ColorInterp.alpha not in dst.colorinterp
        assert np.isnan(dst.nodata)
    np.testing.assert_array_equal(read_raster(out)[1], ring_valid)


def test_uint16_rgb_png_alpha_is_fully_opaque_on_data(tmp_path, rng, ring_valid):
    rgb = rng.integers(0, 65536, (3, HEIGHT, WIDTH), dtype=np.uint16)
    out = write_raster(tmp_path / "deep.png", rgb, {"crs": UTM31, "transform": TRANSFORM},
                       valid=ring_valid)
    with rasterio.open(out) as dst:
        alpha = dst.read(4)
        assert dst.dtypes[0] == "uint16"
    assert (alpha[ring_valid] == 65535).all() and (alpha[~ring_valid] == 0).all()
    values, valid = read_raster(out)
    np.testing.assert_array_equal(values[:, ring_valid], rgb[:, ring_valid])


def test_cog_round_trip(tmp_path, source_profile, sigma0_db, ring_valid):
    out = write_raster(tmp_path / "out.tif", sigma0_db, source_profile, valid=ring_valid, cog=True)
    with rasterio.open(out) as dst:
        assert dst.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert dst.crs == UTM31 and dst.transform == TRANSFORM
        assert dst.dtypes == ("float32",) and dst.nodata == -99.0
    values, valid = read_raster(out)
    np.testing.assert_array_equal(valid, ring_valid)
    np.testing.assert_array_equal(values[0][ring_valid], sigma0_db[0][ring_valid])
    assert files_in(tmp_path) == {"source.tif", "out.tif"}


@pytest.mark.parametrize("cog", [False, True])
def test_image_outputs_use_the_horizontal_predictor_unless_told_otherwise(
    tmp_path, source_profile, rgb_u8, ring_valid, cog
):
    # A deflate source: the 8-bit image output gets horizontal differencing, which compresses
    # images smaller; the data are unchanged.
    profile = dict(source_profile, count=3, dtype="uint8")
    out = write_raster(tmp_path / "rgb.tif", rgb_u8, profile, valid=ring_valid, cog=cog)
    with rasterio.open(out) as dst:
        structure = dst.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "DEFLATE" and structure["PREDICTOR"] == "2"
    values, valid = read_raster(out)
    np.testing.assert_array_equal(values[:, ring_valid], rgb_u8[:, ring_valid])
    chosen = write_raster(tmp_path / "plain.tif", rgb_u8, profile, valid=ring_valid, cog=cog,
                          creation_options={"PREDICTOR": 1})
    with rasterio.open(chosen) as dst:
        assert dst.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "1") == "1"
    # Float outputs (AB, LAB) are not images: no integer predictor is added.
    floats = write_raster(tmp_path / "float.tif", np.zeros((1, HEIGHT, WIDTH), np.float32),
                          source_profile, cog=cog)
    with rasterio.open(floats) as dst:
        assert dst.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") != "2"


def test_rgb_png_keeps_georeference_in_sidecars_and_validity_in_alpha(
    tmp_path, source_profile, rgb_u8, ring_valid
):
    # The source profile is a tiled, deflate GeoTIFF's: options PNG does not take are dropped.
    profile = dict(source_profile, count=3, dtype="uint8")
    out = write_raster(tmp_path / "colour.png", rgb_u8, profile, valid=ring_valid)
    assert files_in(tmp_path) == {"source.tif", "colour.png", "colour.png.aux.xml", "colour.pgw"}
    with rasterio.open(out) as dst:
        assert dst.driver == "PNG" and dst.count == 4
        assert dst.colorinterp[3] == ColorInterp.alpha
        assert dst.crs == UTM31 and dst.transform == TRANSFORM
    # The world file alone gives back the transform (for tools that ignore .aux.xml).
    (tmp_path / "colour.png.aux.xml").unlink()
    with rasterio.open(out) as dst:
        assert dst.transform == TRANSFORM
    values, valid = read_raster(out)
    assert values.shape == (3, HEIGHT, WIDTH)
    np.testing.assert_array_equal(valid, ring_valid)
    np.testing.assert_array_equal(values[:, ring_valid], rgb_u8[:, ring_valid])
    assert (values[:, ~ring_valid] == 0).all()


def test_single_band_png_marks_nodata(tmp_path, rgb_u8, ring_valid):
    grey = np.maximum(rgb_u8[:1], 1)
    profile = {"crs": UTM31, "transform": TRANSFORM}
    out = write_raster(tmp_path / "grey.png", grey, profile, valid=ring_valid)
    info = read_info(out)
    assert info.count == 1 and info.nodata == 0 and info.crs == UTM31
    np.testing.assert_array_equal(read_raster(out)[1], ring_valid)


def test_jpeg_keeps_georeference_and_a_mask(tmp_path, source_profile, ring_valid):
    smooth = np.broadcast_to(np.linspace(40, 200, WIDTH, dtype=np.float32), (3, HEIGHT, WIDTH))
    rgb = smooth.round().astype(np.uint8)
    profile = dict(source_profile, count=3, dtype="uint8")
    out = write_raster(tmp_path / "colour.jpg", rgb, profile, valid=ring_valid)
    assert {"colour.jpg.aux.xml", "colour.jgw"} <= files_in(tmp_path)
    info = read_info(out)
    assert info.driver == "JPEG" and info.crs == UTM31 and info.transform == TRANSFORM
    values, valid = read_raster(out)
    np.testing.assert_array_equal(valid, ring_valid)
    inner = np.zeros_like(ring_valid)
    inner[8:-8, 8:-8] = True  # away from the edge between data and black nodata
    assert np.abs(values[:, inner].astype(int) - rgb[:, inner]).mean() < 3


def test_png_refuses_float_data(tmp_path, sigma0_db, source_profile):
    with pytest.raises(RasterError, match="PNG holds uint8 or uint16"):
        write_raster(tmp_path / "a.png", sigma0_db, source_profile)
    assert files_in(tmp_path) == {"source.tif"}


def test_profile_of_another_size_is_refused(tmp_path, source_profile, sigma0_db):
    with pytest.raises(RasterError, match="update the profile"):
        write_raster(tmp_path / "a.tif", sigma0_db[:, :10], source_profile)


def test_existing_output_is_kept_unless_overwrite(tmp_path, source_profile, sigma0_db):
    out = tmp_path / "out.tif"
    write_raster(out, sigma0_db, source_profile)
    with pytest.raises(OutputExistsError) as caught:
        write_raster(out, sigma0_db + 1, source_profile)
    assert str(caught.value) == f"{out} exists; pass --overwrite to replace it"
    np.testing.assert_array_equal(read_raster(out)[0], sigma0_db)
    write_raster(out, sigma0_db + 1, source_profile, overwrite=True)
    np.testing.assert_array_equal(read_raster(out)[0], sigma0_db + 1)
    with pytest.raises(OutputExistsError):
        RasterWriter(out, source_profile)


def test_overwriting_a_png_replaces_its_sidecars(tmp_path, rgb_u8):
    out = tmp_path / "c.png"
    write_raster(out, rgb_u8, {"crs": UTM31, "transform": TRANSFORM})
    # rewritten without georeference: the old .aux.xml and world file must not linger
    write_raster(out, rgb_u8, {}, overwrite=True)
    assert files_in(tmp_path) == {"c.png"}
    assert read_info(out).crs is None
    write_raster(out, rgb_u8, {"crs": "EPSG:32632", "transform": TRANSFORM}, overwrite=True)
    assert read_info(out).crs == CRS.from_epsg(32632)


class Boom(Exception):
    pass


@pytest.mark.parametrize("name", ["out.tif", "out.png", "out.jpg"])
def test_error_inside_the_writer_leaves_no_partial_file(tmp_path, source_profile, rgb_u8, name):
    profile = dict(source_profile, count=3, dtype="uint8")
    before = files_in(tmp_path)
    with pytest.raises(Boom), RasterWriter(tmp_path / name, profile) as writer:
        writer.write(rgb_u8[:, :16], Window(0, 0, WIDTH, 16))
        raise Boom
    assert files_in(tmp_path) == before


def test_failed_conversion_at_close_leaves_no_partial_file(tmp_path, monkeypatch, rgb_u8):
    import rasterio.shutil

    def failing_copy(*args, **kwargs):
        raise rasterio.errors.RasterioIOError("disk full")

    monkeypatch.setattr(rasterio.shutil, "copy", failing_copy)
    with pytest.raises(OutputError, match="disk full"):
        write_raster(tmp_path / "c.png", rgb_u8, {"crs": UTM31, "transform": TRANSFORM})
    assert files_in(tmp_path) == set()


def test_failed_overwrite_keeps_the_old_output(tmp_path, source_profile, sigma0_db):
    out = write_raster(tmp_path / "out.tif", sigma0_db, source_profile)
    with pytest.raises(Boom), RasterWriter(out, source_profile, overwrite=True) as writer:
        writer.write(sigma0_db[:, :8] + 5, Window(0, 0, WIDTH, 8))
        raise Boom
    np.testing.assert_array_equal(read_raster(out)[0], sigma0_db)
    assert files_in(tmp_path) == {"source.tif", "out.tif"}


@pytest.mark.parametrize("name", ["out.tif", "out.png"])
def test_streamed_windows_assemble_the_whole_raster(tmp_path, source_profile, rgb_u8, ring_valid,
                                                    name):
    profile = dict(source_profile, count=3, dtype="uint8")
    with RasterWriter(tmp_path / name, profile, creation_options={"ZLEVEL": 1}) as writer:
        for row in range(0, HEIGHT, 16):
            for col in range(0, WIDTH, 24):
                window = Window(col, row, min(24, WIDTH - col), 16)
                rows, cols = window.toslices()
                writer.write(rgb_u8[:, rows, cols], window, valid=ring_valid[rows, cols])
    values, valid = read_raster(writer.path)
    np.testing.assert_array_equal(valid, ring_valid)
    np.testing.assert_array_equal(values[:, ring_valid], rgb_u8[:, ring_valid])
    assert read_info(writer.path).crs == UTM31


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_colour_bands_are_zero_where_alpha_is_zero(tmp_path, rng, ring_valid, dtype):
    # The writer takes colour values at nodata pixels too; the file holds 0 there (the docs'
    # promise, and what lets sparse blocks be skipped), and alpha 0 exactly there.
    top = np.iinfo(dtype).max
    rgb = rng.integers(1, top, (3, HEIGHT, WIDTH), dtype=dtype, endpoint=True)
    profile = {"width": WIDTH, "height": HEIGHT, "count": 3, "dtype": np.dtype(dtype).name}
    with RasterWriter(tmp_path / "rgb.tif", profile) as writer:
        writer.write(rgb[:, :16], Window(0, 0, WIDTH, 16), valid=ring_valid[:16])
        writer.write(rgb[:, 16:], Window(0, 16, WIDTH, HEIGHT - 16))  # no mask: all valid
    with rasterio.open(writer.path) as dst:
        written = dst.read()
    expected_alpha = np.full((HEIGHT, WIDTH), top, dtype)
    expected_alpha[:16][~ring_valid[:16]] = 0
    np.testing.assert_array_equal(written[3], expected_alpha)
    expected = rgb.copy()
    expected[:, :16][:, ~ring_valid[:16]] = 0
    np.testing.assert_array_equal(written[:3], expected)


def test_unwritten_windows_are_transparent(tmp_path, rgb_u8):
    profile = {"width": WIDTH, "height": HEIGHT, "count": 3, "dtype": "uint8",
               "crs": UTM31, "transform": TRANSFORM}
    with RasterWriter(tmp_path / "half.tif", profile) as writer:
        writer.write(rgb_u8[:, :16], Window(0, 0, WIDTH, 16))
    _, valid = read_raster(writer.path)
    assert valid[:16].all() and not valid[16:].any()


def test_writer_checks_shapes_and_dtypes(tmp_path, rgb_u8):
    profile = {"width": WIDTH, "height": HEIGHT, "count": 3, "dtype": "uint8"}
    with RasterWriter(tmp_path / "a.tif", profile, masked=False) as writer:
        with pytest.raises(RasterError, match="does not fit"):
            writer.write(rgb_u8[:, :10], Window(0, 0, WIDTH, 16))
        with pytest.raises(RasterError, match="float64 values to uint8"):
            writer.write(rgb_u8.astype(float))
        with pytest.raises(InputError, match="masked=True"):
            writer.write(rgb_u8, valid=np.ones((HEIGHT, WIDTH), bool))
        writer.write(rgb_u8.astype(np.int64))  # integer to integer is fine
    assert read_info(writer.path).count == 3  # no alpha when not masked


def test_atomic_path_renames_on_success_and_cleans_up_on_error(tmp_path):
    out = tmp_path / "sub" / "note.png"
    with atomic_path(out) as temporary:
        assert temporary.parent == out.parent and temporary.name.startswith(".")
        assert temporary.suffix == ".png"
        temporary.write_bytes(b"done")
    assert out.read_bytes() == b"done"
    with pytest.raises(Boom), atomic_path(out, overwrite=True) as temporary:
        temporary.write_bytes(b"half")
        raise Boom
    assert out.read_bytes() == b"done" and files_in(out.parent) == {"note.png"}


def test_output_path_checks(tmp_path):
    check_output_path(tmp_path / "new.tif", overwrite=False)
    with pytest.raises(RasterError, match="is a folder"):
        check_output_path(tmp_path, overwrite=True)
    assert driver_for_path("a.TIF") == "GTiff" and driver_for_path("a.jpeg") == "JPEG"
    assert driver_for_path("a.tif", cog=True) == "COG"
    with pytest.raises(RasterError, match="cannot tell the output format"):
        driver_for_path("a.xyz")
    with pytest.raises(RasterError, match="Cloud-Optimised"):
        driver_for_path("a.png", cog=True)
    # a named driver must suit a known extension; an unknown one is the caller's choice
    assert driver_for_path("a.tif", "COG") == "COG" and driver_for_path("a.tiff", "gtiff") == "GTiff"
    assert driver_for_path("a.dat", "GTiff") == "GTiff"
    for name, driver, wanted in (("a.png", "COG", ".tif"), ("a.png", "GTiff", ".tif"),
                                 ("a.tif", "PNG", ".png"), ("a.jpg", "PNG", ".png")):
        with pytest.raises(RasterError, match=f"cannot be named .*; name it \\{wanted}"):
            driver_for_path(name, driver)
    assert world_file_path("a.png").name == "a.pgw" and world_file_path("a.tif").name == "a.tfw"


# ----------------------------------------------------------------------------- real data


def test_real_sentinel1_samples(samples_dir):
    spatialist = sorted((samples_dir / "spatialist-s1-vv-db").glob("*.tif"))
    bigearthnet = sorted((samples_dir / "bigearthnet-s1-s2" / "S1").glob("*/*_VH.tif"))
    assert spatialist and bigearthnet
    info = read_info(spatialist[0])
    assert info.crs == UTM31 and info.nodata == -99.0
    values, valid = read_raster(spatialist[0], bands="VV")  # named by the file name
    assert values.shape == (1, info.height, info.width)
    assert not np.any(values[0][valid] == -99.0)
    values, valid = read_raster(bigearthnet[0], bands="VH", out_shape=(60, 60))
    assert values.shape == (1, 60, 60) and valid.all()
    assert os.fspath(bigearthnet[0]).endswith("_VH.tif")


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_nodata_blocks_are_not_written(tmp_path, suffix):
    """GeoTIFF outputs (and the staging file of other formats) leave blocks that are all nodata
    out of the file (SPARSE_OK); they read back as nodata and the output is complete."""
    profile = {
        "driver": "GTiff", "width": 1024, "height": 512, "count": 3, "dtype": "uint8",
        "crs": CRS.from_epsg(32631), "transform": Affine(10, 0, 600000, 0, -10, 4800000),
    }
    rgb = np.random.default_rng(0).integers(1, 255, (3, 512, 1024), dtype=np.uint8)
    valid = np.zeros((512, 1024), bool)
    valid[:, 700:] = True  # the left 700 columns are nodata
    rgb[:, ~valid] = 0
    path = tmp_path / f"out{suffix}"
    with RasterWriter(path, profile) as writer:
        for top in range(0, 512, 128):
            writer.write(rgb[:, top : top + 128], Window(0, top, 1024, 128),
                         valid=valid[top : top + 128])
    with rasterio.open(path) as dataset:
        data = dataset.read()
        sizes = [
            int(dataset.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1) or 0)
            for (row, col), _ in dataset.block_windows(1)
        ] if suffix == ".tif" else []
    np.testing.assert_array_equal(data[:3], rgb)
    assert (data[3] > 0).tolist() == valid.tolist()  # alpha
    if suffix == ".tif":
        # 256-px blocks: the two left columns of blocks (512 px) hold no valid pixel.
        assert sizes.count(0) == 4 and len(sizes) == 8
