"""The one colour recipe: windows of a scene's colourer tile it and give predict's bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from sar_colorizer.bundle import cached_bundle
from sar_colorizer.inference import colorize_array, colorize_raster
from sar_colorizer.inference.core import SceneColourer
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.io.raster import read_raster

OPTIONS = ColourOptions(tile_size=64, overlap=16)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 230 x 190 georeferenced dB scene with a nodata corner, and predict's output."""
    folder = tmp_path_factory.mktemp("core")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:230, 0:190]
    db = (-18 + 6 * np.sin(yy / 25.0) * np.cos(xx / 31.0) + rng.normal(0, 2, yy.shape))
    db = db.astype(np.float32)
    db[:20, :35] = -9999.0
    path = folder / "scene_VH.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=190, height=230, count=1, dtype="float32",
        nodata=-9999.0, crs="EPSG:32631", transform=Affine(10, 0, 600000, 0, -10, 4800000),
    ) as dst:
        dst.write(db[None])
    colorize_raster(cached_bundle(), path, folder / "predicted.tif", OPTIONS, progress=False)
    with rasterio.open(folder / "predicted.tif") as src:
        return path, src.read()


def _colourer(path: Path):
    recipe = OPTIONS.resolve(cached_bundle())
    values, valid = read_raster(path)
    colourer = SceneColourer.for_scene(recipe, recipe.statistics(values, valid), *valid.shape, 10.0)
    return colourer, values, valid


def test_windows_cut_through_tiles_tile_the_scene_with_predicts_bytes(scene):
    """Irregular windows, each coloured from its block plus the chunk margin, put together are
    predict's output byte for byte (tiles that straddle a window border run for each)."""
    from sar_colorizer.xarray_api import chunk_margin

    path, predicted = scene
    colourer, values, valid = _colourer(path)
    assert colourer.grid.n_rows > 3 and colourer.grid.n_cols > 2
    runner = ModelRunner.for_bundle(cached_bundle())
    depth = chunk_margin(colourer)
    rgb = np.zeros((230, 190, 3), np.uint8)
    seen = np.zeros((230, 190), bool)
    for r0, r1 in [(0, 70), (70, 161), (161, 230)]:
        for c0, c1 in [(0, 101), (101, 190)]:
            y0, x0 = max(0, r0 - depth), max(0, c0 - depth)
            block = (slice(None), slice(y0, r1 + depth), slice(x0, c1 + depth))
            window_rgb, window_valid = colourer.colour_window(
                runner, values[block], valid[block[1:]], (y0, x0), (r0, r1, c0, c1)
            )
            rgb[r0:r1, c0:c1] = window_rgb
            seen[r0:r1, c0:c1] = window_valid
    np.testing.assert_array_equal(rgb.transpose(2, 0, 1), predicted[:3])
    np.testing.assert_array_equal(seen, predicted[3] > 0)
    # The in-memory scheduler gives the same bytes: one window, the whole scene.
    whole = colorize_array(cached_bundle(), values, valid, OPTIONS)
    np.testing.assert_array_equal(whole["rgb"], rgb)


def test_a_window_without_enough_context_fails_loudly(scene):
    path, _ = scene
    colourer, values, valid = _colourer(path)
    runner = ModelRunner.for_bundle(cached_bundle())
    core = (100, 140, 80, 120)
    depth = colourer.grid.tile_size // 2  # tiles touching the core reach further
    block = (slice(None), slice(100 - depth, 140 + depth), slice(80 - depth, 120 + depth))
    with pytest.raises(ValueError, match="scene (rows|columns)"):
        colourer.colour_window(runner, values[block], valid[block[1:]], (100 - depth, 80 - depth),
                               core)


def test_options_are_resolved_once_and_refuse_unknown_names():
    bundle = cached_bundle()
    with pytest.raises(TypeError, match="unknown colour option.*tone_curve"):
        ColourOptions.of(tone_curve="matched")
    assert ColourOptions.of(batch_size=3).tiles_per_call == 3
    recipe = ColourOptions(display_filter="network", colour_upsampling="bilinear").resolve(bundle)
    assert recipe.display_filter == "network" and not recipe.guided
    assert recipe.tile_size == bundle.tile_size  # None: the size the network was trained on


def test_columns_and_rows_without_data_are_left_unwritten_with_the_same_pixels(
    tmp_path: Path, make_geotiff,
):
    """A diagonal swath with nodata borders and rows of nodata: the colour raster alone is
    converted and written over each slice's columns with data only (unwritten blocks read back
    transparent), and equals, pixel for pixel, the full-width rows written when an AB raster
    is asked for too; so does the quicklook made from it, and a PNG."""
    from sar_colorizer.inference.stream import WRITE_ROWS, valid_columns

    rng = np.random.default_rng(6)
    height, width = 2 * WRITE_ROWS + 40, 300
    yy, xx = np.mgrid[0:height, 0:width]
    db = (-16 + 5 * np.sin(yy / 19.0) + rng.normal(0, 2, yy.shape)).astype(np.float32)
    swath = np.abs(xx / width - (yy - WRITE_ROWS) / (height - WRITE_ROWS)) < 0.2
    db[~swath | (yy < WRITE_ROWS + 5)] = np.nan  # the first slice of rows has no data
    path = make_geotiff("swath_VH.tif", db, nodata=float("nan"))
    valid = np.isfinite(db)
    spans = [valid_columns(valid[top : top + WRITE_ROWS]) for top in range(0, height, WRITE_ROWS)]
    assert spans[0] == (0, 0) and all(0 < c1 - c0 < width for c0, c1 in spans[1:])

    bundle = cached_bundle()
    colorize_raster(bundle, path, tmp_path / "full.tif", OPTIONS, progress=False,
                    ab_path=tmp_path / "ab.tif", quicklook_path=tmp_path / "full.png")
    colorize_raster(bundle, path, tmp_path / "spans.tif", OPTIONS, progress=False,
                    quicklook_path=tmp_path / "spans.png")
    colorize_raster(bundle, path, tmp_path / "spans_image.png", OPTIONS, progress=False)
    with rasterio.open(tmp_path / "full.tif") as full:
        expected = full.read()
    assert (expected[3] > 0).tolist() == valid.tolist()
    for name in ("spans.tif", "spans_image.png"):
        with rasterio.open(tmp_path / name) as written:
            np.testing.assert_array_equal(written.read(), expected)
    with rasterio.open(tmp_path / "full.png") as a, rasterio.open(tmp_path / "spans.png") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_strips_prepare_each_run_of_columns_with_data_apart_with_predicts_bytes(
    tmp_path: Path, make_geotiff,
):
    """Two fields of data side by side, a wide nodata gap between them and nodata around:
    the streamed strips prepare each field (with the filters' reach) apart, and predict's
    colours equal those of the whole image prepared at once (the in-memory scheduler)."""
    from sar_colorizer.inference.stream import data_runs

    rng = np.random.default_rng(12)
    height, width = 150, 260
    yy, xx = np.mgrid[0:height, 0:width]
    db = (-17 + 4 * np.cos(xx / 13.0) + rng.normal(0, 2, yy.shape)).astype(np.float32)
    valid = ((xx > 20) & (xx < 90) | (xx > 170) & (xx < 240 - yy // 10)) & (yy > 12)
    db[~valid] = np.nan
    path = make_geotiff("fields_VH.tif", db, nodata=float("nan"))
    recipe = OPTIONS.resolve(cached_bundle())
    reach = recipe.halo + int(recipe.converter.margin)
    runs = data_runs(valid, reach)
    assert len(runs) == 2 and runs[0][0] > 0 and runs[1][1] < width
    assert runs[0] == (21 - reach, 90 + reach)

    colorize_raster(cached_bundle(), path, tmp_path / "out.tif", OPTIONS, progress=False)
    with rasterio.open(tmp_path / "out.tif") as src:
        predicted = src.read()
    whole = colorize_array(cached_bundle(), db, valid, OPTIONS)
    np.testing.assert_array_equal(predicted[:3].transpose(1, 2, 0), whole["rgb"])
    np.testing.assert_array_equal(predicted[3] > 0, valid)
