"""The chroma limit over the L envelope, as predict streams it: strip by strip it equals the
whole image, and it takes the colour speckle out of dark speckled water."""

import numpy as np
import pytest
import rasterio

from sar_colorizer.bundle import load_bundle
from sar_colorizer.inference import colorize_array, colorize_raster
from sar_colorizer.visual_quality import colour_speckle_rms


@pytest.fixture(scope="module")
def shipped():
    return load_bundle("default")


def _scene(height: int = 300, width: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """sigma0 in dB: bright fields, a dark speckled pond across several strips, nodata."""
    rng = np.random.default_rng(11)
    db = np.full((height, width), -12.0, np.float32)
    db[:, : width // 3] = -16.0
    db[60:240, 50:140] = -24.0  # the pond
    speckle = 10.0 * np.log10(rng.gamma(4.0, 1.0 / 4.0, (height, width)))
    db = (db + speckle).astype(np.float32)
    db[:, -6:] = np.nan  # nodata border
    return db, np.isfinite(db)


def test_streamed_colour_equals_the_whole_image(shipped, make_geotiff, tmp_path):
    db, valid = _scene()
    source = make_geotiff("scene_VH.tif", db, nodata=np.nan, descriptions=["VH"])
    out = tmp_path / "out.tif"
    colorize_raster(shipped, source, out, progress=False, tile_size=64, overlap=16)
    with rasterio.open(out) as written:
        streamed = written.read()
    whole = colorize_array(shipped, db[None], valid, tile_size=64, overlap=16, pixel_size=10.0)
    np.testing.assert_array_equal(streamed[:3].transpose(1, 2, 0), whole["rgb"])
    assert np.all(streamed[3][~valid] == 0) and np.all(streamed[3][valid] == 255)


@pytest.mark.parametrize("colour", [(-20.0, -12.0), (25.0, 10.0), (-15.0, 30.0)])
def test_the_envelope_takes_the_colour_speckle_out_of_dark_water(colour):
    """A dark speckled pond (L about 8) with one predicted colour, through predict's converter:
    capped at each pixel's own L the chroma shown follows the speckle; over the envelope the
    speckle goes, the hue stays and the colour, though muted, stays visible."""
    from skimage.color import rgb2lab

    from sar_colorizer.inference.colour import ColourConverter
    from sar_colorizer.inference.tone import tone_lut

    rng = np.random.default_rng(12)
    shape = (96, 96)
    # What is left of speckle after the display filter; "sar" tone: L = 4 x (dB + 25), about 12.
    db = -22.0 + 10.0 * np.log10(rng.gamma(30.0, 1.0 / 30.0, shape))
    relative = (10.0 ** (db / 10.0)).astype(np.float32)
    valid = np.ones(shape, bool)
    ab_norm = np.broadcast_to(np.float32(colour) / np.float32(110.0), shape + (2,))
    inner = np.zeros(shape, bool)
    inner[8:-8, 8:-8] = True
    shown, chroma = {}, {}
    for radius in (0, 3):
        converter = ColourConverter.shared(True, radius)
        _, rgb = converter(relative, ab_norm, valid, tone_lut("sar"), with_lab=False)
        shown[radius] = rgb2lab(rgb)[..., 1:]
        chroma[radius] = np.hypot(shown[radius][..., 0], shown[radius][..., 1])[inner]
    assert colour_speckle_rms(shown[3], inner) < 0.6 * colour_speckle_rms(shown[0], inner)
    # Muted where L is dark (the cap at the darker neighbours), yet a visible colour.
    assert chroma[3].mean() > max(3.0, 0.25 * chroma[0].mean())
    for radius in (0, 3):  # no hue flips: only 8-bit rounding of dark colours turns the hue
        hue = np.arctan2(shown[radius][..., 1], shown[radius][..., 0])[inner]
        turn = np.angle(np.exp(1j * (hue - np.arctan2(colour[1], colour[0]))), deg=True)
        assert np.quantile(np.abs(turn[chroma[radius] > 2.0]), 0.95) < 12.0


def test_a_swath_in_nodata_streams_as_the_whole_image(shipped, make_geotiff, tmp_path):
    """Strips are preprocessed only where they hold data (plus what the filters and the L
    envelope read around it); tiles without data are not run: the colour is the whole
    image's, to the bit."""
    db, _ = _scene()
    rows, cols = np.mgrid[: db.shape[0], : db.shape[1]]
    swath = np.abs(cols / db.shape[1] - rows / db.shape[0]) < 0.15
    swath[:40] = False  # whole strips without data
    db = np.where(swath, db, np.nan).astype(np.float32)
    valid = np.isfinite(db)
    source = make_geotiff("swath_VH.tif", db, nodata=np.nan, descriptions=["VH"])
    out = tmp_path / "out.tif"
    colorize_raster(shipped, source, out, progress=False, tile_size=64, overlap=16)
    with rasterio.open(out) as written:
        streamed = written.read()
    whole = colorize_array(shipped, db[None], valid, tile_size=64, overlap=16, pixel_size=10.0)
    np.testing.assert_array_equal(streamed[:3].transpose(1, 2, 0), whole["rgb"])
    np.testing.assert_array_equal(streamed[3] > 0, valid)
