"""The README's quick start: ``sarcolor predict`` with the shipped default model
(``sar_colorizer/weights/default``) on the committed Sentinel-1 samples.

The tiny random bundles of the other tests check the machinery; only the shipped weights show
what a user gets: the input's georeference, transparent nodata, and colour that is neither
grey nor noise, with the SAR's structure in its brightness.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from scipy.stats import spearmanr
from skimage.color import rgb2lab

from sar_colorizer.cli import cli

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
QUICK_START = "spatialist-s1-vv-db/S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db.tif"

#: Mean chroma sqrt(a*^2 + b*^2) of the valid pixels, CIELAB units: above this the output is
#: not grey (the quick-start scene gives about 15; a colourless output 0) ...
MIN_MEAN_CHROMA = 4.0
#: ... and below these it is not saturated noise (99th percentile about 29 on that scene; sRGB
#: reaches 100 and more for pure hues).
MAX_MEAN_CHROMA = 35.0
MAX_P99_CHROMA = 60.0
#: Rank correlation of the output's L with the SAR's dB over valid pixels (about 0.9): the
#: brightness is the radar's own.
MIN_L_CORRELATION = 0.6


def _predict(source: Path, output: Path, *options: str) -> None:
    result = CliRunner().invoke(cli, ["-q", "predict", str(source), str(output), *options])
    assert result.exit_code == 0, result.output


def _check_colour(rgba: np.ndarray, sar_db: np.ndarray, valid: np.ndarray) -> None:
    lab = rgb2lab(np.moveaxis(rgba[:3], 0, -1))
    chroma = np.hypot(lab[..., 1], lab[..., 2])[valid]
    assert MIN_MEAN_CHROMA < chroma.mean() < MAX_MEAN_CHROMA, chroma.mean()
    assert np.percentile(chroma, 99) < MAX_P99_CHROMA
    correlation = spearmanr(lab[..., 0][valid], sar_db[valid]).statistic
    assert correlation > MIN_L_CORRELATION, correlation


def _check_georeference_and_alpha(source: Path, output: Path) -> tuple[np.ndarray, np.ndarray]:
    """Output grid == input grid, RGBA uint8, alpha 0 exactly on nodata and 255 elsewhere."""
    with rasterio.open(source) as src:
        sar_db = src.read(1)
        valid = src.read_masks(1) > 0
        crs, transform, shape = src.crs, src.transform, src.shape
    with rasterio.open(output) as dst:
        assert dst.crs == crs and dst.transform == transform and dst.shape == shape
        assert dst.count == 4 and dst.dtypes == ("uint8",) * 4
        rgba = dst.read()
    np.testing.assert_array_equal(rgba[3], np.where(valid, 255, 0))
    return rgba, sar_db


def test_quick_start_on_the_camargue_sample(samples_dir: Path, tmp_path: Path) -> None:
    """``sarcolor predict data/samples/spatialist-s1-vv-db/..._db.tif camargue.png``."""
    source = samples_dir / QUICK_START
    output = tmp_path / "camargue.png"
    _predict(source, output)
    rgba, sar_db = _check_georeference_and_alpha(source, output)
    valid = rgba[3] == 255
    assert valid.all()  # the sample has no nodata
    _check_colour(rgba, sar_db, valid)


def test_nodata_edge_is_transparent_and_the_rest_coloured(
    samples_dir: Path, tmp_path: Path
) -> None:
    """The same sample with a nodata wedge and strip (-99, as its own nodata value), as at the
    edges of a terrain-corrected scene; written to GeoTIFF."""
    with rasterio.open(samples_dir / QUICK_START) as src:
        profile = src.profile
        sar_db = src.read(1)
    rows, cols = np.indices(sar_db.shape)
    nodata = (rows + cols < 90) | (cols >= sar_db.shape[1] - 7)
    sar_db[nodata] = profile["nodata"]
    source = tmp_path / "edge_VV.tif"
    with rasterio.open(source, "w", **profile) as dst:
        dst.write(sar_db[np.newaxis])
    output = tmp_path / "edge_colour.tif"
    _predict(source, output)
    rgba, _ = _check_georeference_and_alpha(source, output)
    assert (rgba[3] == 0).sum() == nodata.sum()
    _check_colour(rgba, sar_db, ~nodata)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sample",
    sorted(
        str(path.relative_to(SAMPLES))
        for pattern in ("spatialist-s1-vv-db/*.tif", "bigearthnet-s1-s2/S1/*/*_VH.tif")
        for path in SAMPLES.glob(pattern)
    ),
    ids=lambda sample: Path(sample).stem,
)
def test_every_committed_sentinel1_sample(samples_dir: Path, tmp_path: Path, sample: str) -> None:
    source = samples_dir / sample
    output = tmp_path / "colour.tif"
    _predict(source, output)
    rgba, sar_db = _check_georeference_and_alpha(source, output)
    _check_colour(rgba, sar_db, rgba[3] == 255)
