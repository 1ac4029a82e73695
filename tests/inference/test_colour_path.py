"""The colour conversion that predict runs (numpy and OpenCV) against its numpy definition, and the
tone curves seen through it."""


import keras
import numpy as np
import pytest

from sar_colorizer.color.gamut import ENVELOPE_RADIUS, lightness_envelope, limit_chroma_numpy
from sar_colorizer.color.lab import AB_SCALE, lab_to_rgb
from sar_colorizer.color.pixels import lab_to_srgb
from sar_colorizer.errors import InputError
from sar_colorizer.inference.colour import ColourConverter
from sar_colorizer.inference.tone import TONE_LUT_SIZE, tone_lut
from sar_colorizer.sar.radiometry import relative_to_feature


def _definition(relative, ab_norm, valid, lut, chroma_limit, radius=ENVELOPE_RADIUS):
    """numpy: L = the tone table at the dB feature (linear interpolation between its samples),
    a*b* = ab_norm x AB_SCALE, shown with the chroma cap at L and at the tone table of the
    feature's envelope (or clipped RGB channels), 8-bit sRGB; 0 outside ``valid``."""
    feature = relative_to_feature(relative)
    samples = np.linspace(0.0, 1.0, TONE_LUT_SIZE)
    lightness = np.interp(feature, samples, lut)
    lab = np.concatenate([lightness[..., None], ab_norm * AB_SCALE], axis=-1).astype(np.float32)
    bounds = lightness_envelope(feature, valid, radius) if radius else ()
    # The bounds read the nearest table entry (they only choose a cap).
    bound_lightness = [lut[np.floor(b * (TONE_LUT_SIZE - 1) + 0.5).astype(int)] for b in bounds]
    shown = limit_chroma_numpy(lab, *bound_lightness) if chroma_limit else lab
    rgb = np.round(keras.ops.convert_to_numpy(lab_to_rgb(shown)) * 255.0)
    lab[~valid] = 0.0
    rgb[~valid] = 0.0
    return lab, rgb


@pytest.fixture(scope="module")
def pixels():
    """More pixels than one compiled chunk; SAR from 35 dB below the reference to above it,
    saturated colours (many outside the sRGB gamut at their L), some nodata."""
    rng = np.random.default_rng(7)
    shape = (300, 1000)
    relative = (10 ** rng.uniform(-3.5, 0.2, shape)).astype(np.float32)
    ab_norm = rng.uniform(-0.95, 0.95, shape + (2,)).astype(np.float32)
    valid = rng.random(shape) > 0.05
    quantiles = np.quantile(relative_to_feature(relative[valid]), np.linspace(0, 1, 101))
    lut = tone_lut("balanced", quantiles, np.linspace(5.0, 95.0, 101) ** 1.1 / 95**0.1)
    return relative, ab_norm, valid, lut


@pytest.mark.parametrize(
    ("chroma_limit", "radius", "valid_share"),
    [(True, ENVELOPE_RADIUS, None), (True, 0, None), (False, 0, None), (True, ENVELOPE_RADIUS, 0.3)],
)
def test_the_compiled_conversion_follows_its_definition(pixels, chroma_limit, radius, valid_share):
    """Mostly valid pixels (converted block by block), and a few (gathered, then converted)."""
    relative, ab_norm, valid, lut = pixels
    if valid_share is not None:
        valid = np.random.default_rng(8).random(valid.shape) < valid_share
    lab, rgb = ColourConverter.shared(chroma_limit, radius)(relative, ab_norm, valid, lut)
    expected_lab, expected_rgb = _definition(relative, ab_norm, valid, lut, chroma_limit, radius)
    assert lab.dtype == np.float32 and rgb.dtype == np.uint8 and rgb.shape == valid.shape + (3,)
    np.testing.assert_allclose(lab[..., 0], expected_lab[..., 0], atol=2e-3)
    np.testing.assert_allclose(lab[..., 1:], expected_lab[..., 1:], atol=1e-4)
    assert np.abs(rgb.astype(int) - expected_rgb).max() <= 1
    # One level off only where float32 rounding lands next to a half level: rare (0.2 %).
    assert np.mean(rgb[valid] != expected_rgb[valid]) < 0.005
    assert np.all(rgb[~valid] == 0) and np.all(lab[~valid] == 0)


def test_the_chroma_limit_is_what_tells_the_two_conversions_apart(pixels):
    """A test of the limit that cannot pass by clipping: the two definitions differ widely."""
    relative, ab_norm, valid, lut = pixels
    _, limited = _definition(relative, ab_norm, valid, lut, chroma_limit=True)
    _, clipped = _definition(relative, ab_norm, valid, lut, chroma_limit=False)
    differs = np.abs(limited - clipped).max(axis=-1) > 10
    assert differs.mean() > 0.2
    _, rgb = ColourConverter.shared(True)(relative, ab_norm, valid, lut, with_lab=False)
    assert np.abs(rgb.astype(int) - limited)[differs].max() <= 1


def _lightness(relative, valid, tone, scene_quantiles=None, l_quantiles=None):
    """L as predict makes it: the scene's tone table through the compiled conversion."""
    if scene_quantiles is None and l_quantiles is not None:
        feature = relative_to_feature(relative[valid])
        scene_quantiles = np.quantile(feature, np.linspace(0.0, 1.0, 101))
    lut = tone_lut(tone, scene_quantiles, l_quantiles)
    ab_norm = np.zeros(relative.shape + (2,), np.float32)
    lab, _ = ColourConverter.shared()(relative, ab_norm, valid, lut)
    return lab[..., 0]


def test_sar_tone_is_the_plain_feature():
    relative = np.array([[1.0, 10**-1.25, 1e-4]], np.float32)
    valid = np.array([[True, True, False]])
    np.testing.assert_allclose(_lightness(relative, valid, "sar"), [[100.0, 50.0, 0.0]], atol=1e-3)


def test_matched_tone_maps_the_scene_onto_the_target_distribution():
    rng = np.random.default_rng(0)
    relative = (10 ** -rng.uniform(0.0, 2.4, (64, 64))).astype(np.float32)  # above the floor
    valid = np.ones(relative.shape, bool)
    target = np.linspace(20.0, 80.0, 101)
    lightness = _lightness(relative, valid, "matched", l_quantiles=target)
    # The scene's L quantiles become the target's, and brighter SAR stays brighter.
    np.testing.assert_allclose(
        np.percentile(lightness, [0, 25, 50, 75, 100]), [20, 35, 50, 65, 80], atol=0.5
    )
    order = np.argsort(relative.ravel())
    assert np.all(np.diff(lightness.ravel()[order]) >= -1e-4)


def test_matched_tone_handles_tied_quantiles():
    relative = np.zeros((10, 10), np.float32)  # half the scene at the feature floor
    relative[5:] = np.linspace(0.1, 1.0, 50).reshape(5, 10)
    valid = np.ones(relative.shape, bool)
    lightness = _lightness(relative, valid, "matched", l_quantiles=np.linspace(0, 100, 101))
    # The floor pixels occupy quantiles 0..50 of the scene: they get the mean L of that range.
    np.testing.assert_allclose(lightness[:5], 25.0, atol=0.6)
    assert np.all(np.isfinite(lightness)) and lightness[5:].min() > 45


def test_tone_table_follows_the_exact_quantile_curve():
    rng = np.random.default_rng(5)
    scene = np.sort(rng.uniform(0.2, 0.9, 101))
    target = np.sort(rng.uniform(5, 95, 101))
    feature = rng.uniform(0, 1, (100, 100)).astype(np.float32)
    relative = (10 ** ((feature * 25 - 25) / 10)).astype(np.float32)
    lightness = _lightness(relative, np.ones(feature.shape, bool), "matched", scene, target)
    np.testing.assert_allclose(lightness, np.interp(feature, scene, target), atol=0.15)


def test_unknown_tone_lists_the_valid_ones():
    with pytest.raises(InputError, match="matched, sar"):
        tone_lut("pastel")


@pytest.mark.parametrize("chroma_limit", [True, False])
def test_a_pixels_colour_does_not_depend_on_the_pixels_converted_with_it(pixels, chroma_limit):
    """Predict converts the valid pixels of a window, a column span of it, or gathers them:
    each pixel gets the same 8-bit colour whichever (the vector code runs on every pixel)."""
    relative, ab_norm, valid, lut = pixels
    convert = ColourConverter.shared(chroma_limit, ENVELOPE_RADIUS if chroma_limit else 0)
    bounds = convert.bounds(relative, valid)
    _, whole = convert(relative, ab_norm, valid, lut, with_lab=False, bounds=bounds)
    sparse = valid & (np.random.default_rng(9).random(valid.shape) < 0.3)  # gathered
    _, gathered = convert(relative, ab_norm, sparse, lut, with_lab=False, bounds=bounds)
    np.testing.assert_array_equal(gathered[sparse], whole[sparse])
    for rows, cols in [(slice(3, 40), slice(101, 997)), (slice(0, 1), slice(5, 12))]:
        part = (rows, cols)
        _, window = convert(
            relative[part], ab_norm[part], valid[part], lut, with_lab=False,
            bounds=tuple(b[part] for b in bounds),
        )
        np.testing.assert_array_equal(window, whole[part])


def test_opencvs_conversion_gives_a_pixel_the_same_bits_in_any_company():
    """Pieces of any length (OpenCV's vector code and its scalar remainder differ by ~1e-6,
    enough to move a value across a half level now and then)."""
    rng = np.random.default_rng(10)
    lab = np.column_stack(
        [rng.uniform(0, 100, 1000), rng.uniform(-80, 80, (1000, 2))]
    ).astype(np.float32)
    whole = lab_to_srgb(lab)
    definition = keras.ops.convert_to_numpy(lab_to_rgb(lab))
    in_gamut = ((definition > 0.01) & (definition < 0.99)).all(axis=1)
    assert in_gamut.mean() > 0.2
    np.testing.assert_allclose(whole[in_gamut], definition[in_gamut], atol=1e-3)
    start = 0
    for length in [1, 7, 13, 100, 3, 64, 812]:
        piece = slice(start, start + length)
        np.testing.assert_array_equal(lab_to_srgb(lab[piece]), whole[piece])
        start += length
