"""A scene reference fixed across images (``--reference``, ``--reference-from``): a crop
coloured with its whole scene's reference keeps the whole scene's colours, every path
(predict, a batch on worker processes, xarray, numpy) gives the same colours for one fixed
reference, each output records it, and bad values or display images are refused in one line."""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from scipy import ndimage

import sar_colorizer as sc
from sar_colorizer.batch import PredictOptions, colour_batch, plan_batch
from sar_colorizer.bundle import Bundle
from sar_colorizer.cli import cli
from sar_colorizer.color.gamut import envelope_reach
from sar_colorizer.errors import InputError
from sar_colorizer.inference import colorize_array
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.inference.reference import OWN_REFERENCE, SceneReference

REPO = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("given", "linear"),
    [("0.32", (0.32,)), ("-5dB", (10 ** -0.5,)), (" -5 dB ", (10 ** -0.5,)), ("3DB", (10 ** 0.3,)),
     (0.1, (0.1,)), (2, (2.0,)), ("-5dB,0.02", (10 ** -0.5, 0.02)), ([0.1, "-10dB"], (0.1, 0.1))],
)
def test_a_reference_is_a_linear_power_or_a_db_value(given, linear):
    reference = ColourOptions(reference=given).reference
    assert isinstance(reference, SceneReference)
    assert reference.source == "fixed"
    assert reference.values == pytest.approx(linear, rel=1e-12)
    assert ColourOptions.of(reference=reference).reference is reference


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "inf", "nan", "nandB", "", "1,,2", "5 d B",
                                 True, -0.3, float("nan")])
def test_bad_reference_values_are_refused_in_one_line(bad):
    with pytest.raises(InputError) as error:
        ColourOptions(reference=bad)
    message = str(error.value)
    assert "\n" not in message and "reference" in message and "dB" in message


def test_one_reference_for_every_band_or_one_per_band():
    assert SceneReference.parse("-3dB").for_bands(2) == pytest.approx((10 ** -0.3,) * 2)
    assert SceneReference.parse("0.1,0.2").for_bands(2) == (0.1, 0.2)
    with pytest.raises(InputError, match="2 reference values given for 3 bands"):
        SceneReference.parse("0.1,0.2").for_bands(3)


def test_a_reference_and_a_raster_to_take_it_from_exclude_each_other(tmp_path):
    with pytest.raises(InputError, match="not both"):
        ColourOptions.of(reference=0.3, reference_from=tmp_path / "scene.tif")


# ----------------------------------------------------------------------------- scenes


def _scene_db(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth dB field with speckle, and a bright block that a central crop leaves out (so
    the crop's own 99th percentile is well below the scene's)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((height, width)), 8.0)
    field = (field - field.min()) / (field.max() - field.min())
    db = -22.0 + 14.0 * field + rng.normal(0.0, 1.0, (height, width))
    db[: height // 8, : width // 8] += 12.0
    return db.astype(np.float32)


class _PointwiseNetwork:
    """An identity-like network in the place of a bundle's ONNX graph: a*, b* of each pixel a
    function of its own input value only, so that nothing but the preprocessing (reference,
    filters) can make a crop's colours differ from its scene's."""

    runner = None
    upsample = False
    input_channels = 1
    output_channels = 2

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = batch[..., :1].astype(np.float32)
        return np.concatenate([0.5 * np.tanh(4.0 * x - 1.5), 0.8 * x * x - 0.3], axis=-1)


@pytest.fixture
def pointwise_bundle(tiny_bundle) -> Bundle:
    from sar_colorizer.bundle import read_metadata

    return Bundle(metadata=read_metadata(tiny_bundle), network=_PointwiseNetwork())


def test_a_crop_coloured_with_its_scenes_reference_keeps_the_scenes_colours(
    make_geotiff, pointwise_bundle
):
    """With a pointwise network, a crop coloured with ``reference_from`` its whole scene gets
    the scene's colours exactly (within one 8-bit level: the blending sums different tiles'
    weights, which can move a value across a rounding edge) on every pixel beyond the reach of
    the filters and the chroma limit's L envelope from the crop's edges; with its own
    reference it does not."""
    height, width = 260, 300
    db = _scene_db(height, width)
    full_path = make_geotiff("scene_VH_db.tif", db)
    r0, c0, h, w = 52, 61, 156, 180  # the central 60 %, off the tile grid's phase
    crop = db[None, r0:r0 + h, c0:c0 + w]
    crop_valid = np.ones((h, w), bool)

    whole = colorize_array(pointwise_bundle, db[None], np.ones((height, width), bool))
    fixed = colorize_array(pointwise_bundle, crop, crop_valid, reference_from=full_path)
    own = colorize_array(pointwise_bundle, crop, crop_valid)

    recipe = ColourOptions().resolve(pointwise_bundle)
    m = recipe.halo + envelope_reach()  # beyond this, a crop pixel sees what the scene's sees
    shared = whole["rgb"][r0 + m:r0 + h - m, c0 + m:c0 + w - m].astype(int)
    with_reference = fixed["rgb"][m:h - m, m:w - m].astype(int)
    with_own = own["rgb"][m:h - m, m:w - m].astype(int)
    assert shared.size > 0
    assert np.abs(with_reference - shared).max() <= 1
    assert np.abs(fixed["ab"][m:h - m, m:w - m]
                  - whole["ab"][r0 + m:r0 + h - m, c0 + m:c0 + w - m]).max() < 1e-3
    # The property is not trivial: the crop's own reference moves every pixel's colour.
    assert np.abs(with_own - shared).mean() > 3.0


def _rgb(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _tags(path: Path) -> dict[str, str]:
    with rasterio.open(path) as src:
        return src.tags()


@pytest.fixture
def _workers_import_this_checkout(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.usefixtures("_workers_import_this_checkout")
def test_every_path_gives_the_same_colours_for_one_fixed_reference(
    make_geotiff, tiny_bundle, tmp_path
):
    """predict, a batch on a process pool, xarray (dask) and the numpy API: one fixed
    reference, the same colours; and the reference is used (other colours than the scene's
    own), and recorded in every raster output and the DataArray's attributes."""
    rioxarray = pytest.importorskip("rioxarray", reason="needs the xarray extra")
    pytest.importorskip("dask.array", reason="needs the dask extra")
    db = _scene_db(150, 170, seed=1)
    scene = make_geotiff("scenes/scene_VH.tif", db)
    make_geotiff("scenes/other_VH.tif", _scene_db(140, 150, seed=2))
    reference = "-9dB"

    runner = CliRunner()
    single = tmp_path / "single.tif"
    result = runner.invoke(cli, ["predict", str(scene), str(single), "--model", str(tiny_bundle),
                                 "--reference", reference, "--ab-output",
                                 str(tmp_path / "single_ab.tif")])
    assert result.exit_code == 0, result.output
    own = tmp_path / "own.tif"
    assert runner.invoke(cli, ["predict", str(scene), str(own), "--model",
                               str(tiny_bundle)]).exit_code == 0

    plan = plan_batch([str(tmp_path / "scenes" / "*.tif")], tmp_path / "batch", suffix=".tif")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        summary = colour_batch(plan, str(tiny_bundle), PredictOptions(reference=reference),
                               progress=False, executor=pool)
    assert summary.failed == 0 and len(plan.jobs) == 2

    data = rioxarray.open_rasterio(scene, chunks=64)
    lazy = sc.colorize_dataarray(data, tiny_bundle, reference=reference)
    rgba_numpy = sc.colorize(db, tiny_bundle, reference=reference)

    expected = _rgb(single)
    assert not np.array_equal(expected, _rgb(own))
    np.testing.assert_array_equal(_rgb(tmp_path / "batch" / "scene_VH.tif"), expected)
    np.testing.assert_array_equal(np.asarray(lazy.values), expected)
    np.testing.assert_array_equal(rgba_numpy.transpose(2, 0, 1), expected)

    linear = 10 ** -0.9
    for path in (single, tmp_path / "single_ab.tif", tmp_path / "batch" / "scene_VH.tif",
                 tmp_path / "batch" / "other_VH.tif"):
        tags = _tags(path)
        assert float(tags["SARCOLOR_INPUT_REFERENCE"]) == pytest.approx(linear, rel=1e-5)
        assert float(tags["SARCOLOR_INPUT_REFERENCE_DB"]) == pytest.approx(-9.0, abs=1e-4)
        assert tags["SARCOLOR_INPUT_REFERENCE_SOURCE"] == f"fixed ({reference})"
    assert lazy.attrs["SARCOLOR_INPUT_REFERENCE_SOURCE"] == f"fixed ({reference})"
    own_tags = _tags(own)
    assert own_tags["SARCOLOR_INPUT_REFERENCE_SOURCE"] == OWN_REFERENCE
    assert float(own_tags["SARCOLOR_INPUT_REFERENCE_DB"]) == pytest.approx(
        10 * math.log10(float(own_tags["SARCOLOR_INPUT_REFERENCE"])), abs=1e-3)


def test_a_batch_takes_one_reference_from_a_raster_for_every_scene(make_geotiff, tiny_bundle,
                                                                    tmp_path):
    """``--reference-from`` in a batch: every output records that raster's reference; the
    raster's own output equals its run without the option (its reference and tone are its
    own), another scene's differs from its own run."""
    first = make_geotiff("dates/a_VH.tif", _scene_db(120, 130, seed=3))
    make_geotiff("dates/b_VH.tif", _scene_db(120, 130, seed=4) - 4.0)
    runner = CliRunner()
    base = ["predict", str(tmp_path / "dates" / "*.tif"), "--model", str(tiny_bundle),
            "--format", "gtiff"]
    result = runner.invoke(cli, [*base, "--output-dir", str(tmp_path / "fixed"),
                                 "--reference-from", str(first)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(cli, [*base, "--output-dir", str(tmp_path / "own")]).exit_code == 0

    tags = [_tags(tmp_path / "fixed" / f"{name}_VH.tif") for name in "ab"]
    assert tags[0]["SARCOLOR_INPUT_REFERENCE"] == tags[1]["SARCOLOR_INPUT_REFERENCE"]
    assert tags[0]["SARCOLOR_INPUT_REFERENCE"] == \
        _tags(tmp_path / "own" / "a_VH.tif")["SARCOLOR_INPUT_REFERENCE"]
    assert all(t["SARCOLOR_INPUT_REFERENCE_SOURCE"].startswith(f"raster {first}") for t in tags)
    np.testing.assert_array_equal(_rgb(tmp_path / "fixed" / "a_VH.tif"),
                                  _rgb(tmp_path / "own" / "a_VH.tif"))
    assert not np.array_equal(_rgb(tmp_path / "fixed" / "b_VH.tif"),
                              _rgb(tmp_path / "own" / "b_VH.tif"))


# ----------------------------------------------------------------------------- refusals


def test_display_images_keep_their_own_reference(make_geotiff, tiny_bundle, tmp_path):
    """An 8-bit image has no radiometry: a fixed reference is refused in one line, before any
    output exists, on the command line and in the API; so is a reference taken from one."""
    rng = np.random.default_rng(5)
    image = rng.integers(10, 250, (80, 90)).astype(np.uint8)
    png = make_geotiff("display_VH.png", image, crs=None)
    calibrated = make_geotiff("scene_VH.tif", _scene_db(80, 90))
    runner = CliRunner()
    for extra, source in ((["--reference", "0.3"], png), (["--reference-from", str(png)],
                                                          calibrated)):
        out = tmp_path / "out.png"
        result = runner.invoke(cli, ["predict", str(source), str(out), "--model",
                                     str(tiny_bundle), *extra])
        assert result.exit_code != 0
        lines = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(lines) == 1 and "display image" in lines[0], result.output
        assert not out.exists()
    with pytest.raises(InputError, match="display image"):
        sc.colorize(image, tiny_bundle, reference="-3dB")
    assert sc.colorize(image, tiny_bundle).shape == (80, 90, 4)  # its own reference: fine


def test_bad_reference_flags_are_one_line_errors(make_geotiff, tiny_bundle, tmp_path):
    scene = make_geotiff("scene_VH.tif", _scene_db(64, 64))
    runner = CliRunner()
    for extra, words in ((["--reference", "bright"], "not a number"),
                         (["--reference", "-4"], "suffix dB"),
                         (["--reference-from", str(tmp_path / "missing.tif")], "missing.tif"),
                         (["--reference", "1", "--reference-from", str(scene)], "exclude")):
        out = tmp_path / "out.tif"
        result = runner.invoke(cli, ["predict", str(scene), str(out), "--model",
                                     str(tiny_bundle), *extra])
        assert result.exit_code != 0
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and words in errors[0], result.output
        assert not out.exists()


def test_a_value_fixes_the_network_input_and_leaves_l_to_each_image(make_geotiff,
                                                                   pointwise_bundle):
    """``reference=VALUE`` carries no tone quantiles: a crop given its scene's reference value
    gets the scene's network a*, b* (the network sees the same input), while L follows the
    crop's own brightness quantiles; ``reference_from`` fixes both."""
    db = _scene_db(200, 220, seed=6)
    path = make_geotiff("scene_VH_db.tif", db)
    r0, c0, h, w = 40, 44, 120, 132
    valid = np.ones((200, 220), bool)
    whole = colorize_array(pointwise_bundle, db[None], valid)
    value = ColourOptions().resolve(pointwise_bundle).statistics(db[None], valid).references[0]
    crop = db[None, r0:r0 + h, c0:c0 + w]
    by_value = colorize_array(pointwise_bundle, crop, valid[:h, :w], reference=value)
    by_raster = colorize_array(pointwise_bundle, crop, valid[:h, :w], reference_from=path)
    m = ColourOptions().resolve(pointwise_bundle).halo + envelope_reach()
    inner, scene = (slice(m, h - m), slice(m, w - m)), (slice(r0 + m, r0 + h - m),
                                                         slice(c0 + m, c0 + w - m))
    assert np.abs(by_value["ab"][inner] - whole["ab"][scene]).max() < 1e-3
    assert np.abs(by_value["lab"][inner][..., 0] - whole["lab"][scene][..., 0]).mean() > 0.5
    assert np.abs(by_raster["lab"][inner][..., 0] - whole["lab"][scene][..., 0]).max() < 1e-3
