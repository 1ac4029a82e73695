"""A model of optional polarisations: trained on VH-only and VV + VH chips with polarisation
dropout, it colours VV, VH or both, and builds its presence channels from what the input has."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sar_colorizer.data.preprocess import preprocess
from sar_colorizer.errors import InputError, ModelMismatchError
from sar_colorizer.sar.polarisation import input_layout
from sar_colorizer.training import TrainConfig, train

TINY = {"depth": 2, "base_filters": 4, "downsample": 2, "crop_size": 64, "batch_size": 4,
        "steps_per_epoch": 2, "epochs": 1, "patience": 10}
POLS = ["VH", "VV"]


def _dual_pol_pairs(root: Path, write_pairs) -> Path:
    """Georeferenced pairs whose SAR has two named bands, VV (brighter) and VH."""
    folder = write_pairs(root, 3, 96, georeferenced=True, seed=5)
    for path in sorted((folder.root / "sar").glob("*.tif")):
        with rasterio.open(path) as src:
            vh, profile = src.read(1), src.profile
        vv = np.clip(vh.astype(np.int32) + 40, 1, 255).astype(np.uint8)
        profile.update(count=2)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.stack([vv, vh]))
            dst.set_band_description(1, "VV")
            dst.set_band_description(2, "VH")
    return folder.root


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory, write_pairs) -> Path:
    """A tiny network trained a few steps on a VH-only folder and a VV + VH folder."""
    root = tmp_path_factory.mktemp("multipol")
    vh_pairs = write_pairs(root / "vh_pairs", 4, 96, seed=1).root
    preprocess(vh_pairs, root / "vh", chip_size=64, val_fraction=0.25, band_names=["VH"],
               progress=False)
    preprocess(_dual_pol_pairs(root / "dual_pairs", write_pairs), root / "dual", chip_size=64,
               val_fraction=0.34, progress=False)
    config = TrainConfig.from_dict({**TINY, "polarisations": POLS, "pol_dropout": 0.5})
    train([root / "vh", root / "dual"], root / "model", config, progress=False)
    return root / "model"


def _raster(path: Path, bands: dict[str, np.ndarray]) -> Path:
    first = next(iter(bands.values()))
    profile = {"driver": "GTiff", "count": len(bands), "height": first.shape[0],
               "width": first.shape[1], "dtype": "float32"}
    with rasterio.open(path, "w", **profile) as dst:
        for index, (name, values) in enumerate(bands.items(), start=1):
            dst.write(values.astype(np.float32), index)
            if name:
                dst.set_band_description(index, name)
    return path


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    """Linear sigma0 of a 96 x 80 scene: VV and a darker, differently textured VH."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:96, 0:80]
    vv = (0.05 + 0.2 * (cols > 40)) * rng.gamma(4.0, 0.25, (96, 80))
    vh = (0.01 + 0.04 * (rows > 48)) * rng.gamma(4.0, 0.25, (96, 80))
    return {"VV": vv.astype(np.float32), "VH": vh.astype(np.float32)}


def test_the_bundle_records_optional_polarisations(mixed_model) -> None:
    from sar_colorizer.bundle import load_bundle

    meta = json.loads((mixed_model / "bundle.json").read_text())
    assert meta["bands"] == POLS and meta["optional_bands"] is True
    assert meta["input_channels"] == 4
    assert meta["training"]["config"]["pol_dropout"] == 0.5
    bundle = load_bundle(mixed_model, runtime="tensorflow")
    assert bundle.optional_bands and bundle.model.inputs[0].shape[-1] == 4


@pytest.mark.parametrize(
    ("given", "present"), [(["VV"], (False, True)), (["VH"], (True, False)),
                           (["VV", "VH"], (True, True))],
)
def test_the_array_path_builds_the_presence_channels(mixed_model, scene, given, present) -> None:
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import colorize_array

    bundle = load_bundle(mixed_model)
    values = np.stack([scene[name] for name in given])
    valid = np.ones(values.shape[1:], bool)
    result = colorize_array(bundle, values, valid, band_names=given, input_scale="linear")
    model_input = result["relative"]
    assert model_input.shape[-1] == 4
    for slot, here in enumerate(present):
        assert np.all(model_input[..., 2 + slot] == float(here))  # the presence flag
        assert (model_input[..., slot] > 0).any() == here  # the SAR channel, 0 when absent
    # the feature (baselines' input) is the first polarisation the input has
    first = given[0] if len(given) == 1 else POLS[0]
    own = colorize_array(bundle, scene[first][None], valid, band_names=[first],
                         input_scale="linear")
    np.testing.assert_array_equal(result["feature"], own["feature"])


def test_each_polarisation_changes_the_colours(mixed_model, scene) -> None:
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import colorize_array

    bundle = load_bundle(mixed_model)
    valid = np.ones((96, 80), bool)
    ab = {}
    for given in (["VV"], ["VH"], ["VV", "VH"]):
        values = np.stack([scene[name] for name in given])
        ab[",".join(given)] = colorize_array(
            bundle, values, valid, band_names=given, input_scale="linear", shrink=False
        )["ab"]
    assert not np.array_equal(ab["VV"], ab["VH"])
    assert not np.array_equal(ab["VV,VH"], ab["VH"])
    # the order of the input's bands does not matter: they are matched by name
    swapped = colorize_array(bundle, np.stack([scene["VH"], scene["VV"]]), valid,
                             band_names=["VH", "VV"], input_scale="linear", shrink=False)["ab"]
    np.testing.assert_array_equal(swapped, ab["VV,VH"])


@pytest.mark.parametrize("given", [["VV"], ["VH"], ["VV", "VH"]])
def test_predict_uses_every_polarisation_the_raster_has(mixed_model, scene, tmp_path,
                                                        given) -> None:
    """A raster path without --bands gives what the array path gives for the same bands, on
    TensorFlow and ONNX Runtime alike."""
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import colorize_array, colorize_raster

    raster = _raster(tmp_path / "scene.tif", {name: scene[name] for name in given})
    expected = colorize_array(load_bundle(mixed_model, runtime="tensorflow"),
                              np.stack([scene[n] for n in given]), np.ones((96, 80), bool),
                              band_names=given, input_scale="linear")["rgb"]
    for runtime in ("tensorflow", "onnx"):
        bundle = load_bundle(mixed_model, runtime=runtime)
        assert (bundle.network is not None) == (runtime == "onnx")
        out = tmp_path / f"{runtime}.tif"
        colorize_raster(bundle, raster, out, progress=False, input_scale="linear")
        with rasterio.open(out) as src:
            rgb = np.moveaxis(src.read((1, 2, 3)), 0, -1)
        difference = np.abs(rgb.astype(int) - expected.astype(int))
        assert difference.max() <= (0 if runtime == "tensorflow" else 1), runtime


def test_extra_bands_are_left_out_and_none_is_refused(mixed_model, scene, tmp_path) -> None:
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import colorize_array, colorize_raster

    bundle = load_bundle(mixed_model)
    raster = _raster(tmp_path / "hh_vv.tif", {"HH": scene["VH"], "VV": scene["VV"]})
    colorize_raster(bundle, raster, tmp_path / "out.tif", progress=False, input_scale="linear")
    expected = colorize_array(bundle, scene["VV"][None], np.ones((96, 80), bool),
                              band_names=["VV"], input_scale="linear")["rgb"]
    with rasterio.open(tmp_path / "out.tif") as src:
        assert np.array_equal(np.moveaxis(src.read((1, 2, 3)), 0, -1), expected)
    hh = _raster(tmp_path / "hh.tif", {"HH": scene["VH"]})
    with pytest.raises(ModelMismatchError, match=r"none of the model's polarisations VH, VV"):
        colorize_raster(bundle, hh, tmp_path / "hh_out.tif", progress=False)
    assert not (tmp_path / "hh_out.tif").exists()


def test_one_unnamed_band_is_the_first_polarisation_with_a_warning(mixed_model, scene,
                                                                   caplog) -> None:
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import colorize_array

    bundle = load_bundle(mixed_model)
    valid = np.ones((96, 80), bool)
    with caplog.at_level(logging.WARNING, logger="sar_colorizer.bundle"):
        unnamed = colorize_array(bundle, scene["VH"][None], valid, input_scale="linear")
    assert "names no polarisation: taken as VH" in caplog.text and "--bands" in caplog.text
    named = colorize_array(bundle, scene["VH"][None], valid, band_names=["VH"],
                           input_scale="linear")
    np.testing.assert_array_equal(unnamed["rgb"], named["rgb"])


def test_input_layout() -> None:
    assert input_layout(POLS, ["VV", "VH"]) == ((1, 0), (True, True))
    assert input_layout(POLS, ["Sigma0_VV_db", "HH"]) == ((0,), (False, True))
    assert input_layout(POLS, ["band1"]) == ((0,), (True, False))
    with pytest.raises(ModelMismatchError, match="none of the model's polarisations"):
        input_layout(POLS, ["HH", "HV"])
    with pytest.raises(ModelMismatchError, match="name no polarisation"):
        input_layout(POLS, ["VV", None])
    with pytest.raises(ModelMismatchError, match="VV more than once"):
        input_layout(POLS, ["VV", "Sigma0_VV"])


def test_dropout_hides_one_polarisation_never_all() -> None:
    import tensorflow as tf

    from sar_colorizer.data.pipeline import _dropout_keep

    both = tf.constant([1.0, 1.0])
    kept = np.array([_dropout_keep(both, 0.9, tf.constant([7, i], tf.int64)).numpy()
                     for i in range(300)])
    assert (kept.sum(axis=1) >= 1).all()  # never both
    hidden = kept.sum(axis=1) == 1
    assert 0.8 < hidden.mean() < 0.97  # about the rate
    assert 0.3 < kept[hidden, 0].mean() < 0.7  # either one
    one = tf.constant([0.0, 1.0])
    for i in range(50):  # a chip of one polarisation keeps it
        assert _dropout_keep(one, 0.9, tf.constant([7, i], tf.int64)).numpy().tolist() == [0, 1]


def test_the_training_batches_hold_presence_flags(mixed_model) -> None:
    from sar_colorizer.data.pipeline import make_dataset

    root = mixed_model.parent
    for folder, flags in (("vh", [1.0, 0.0]), ("dual", None)):
        dataset = make_dataset(root / folder, batch_size=4, crop_size=64, polarisations=POLS,
                               pol_dropout=0.6, seed=1, repeat=True, gain_jitter_db=2.0)
        for x, _ in dataset.take(8):
            x = x.numpy()
            assert x.shape[-1] == 4
            chip_flags = x[:, 0, 0, 2:]
            assert (x[..., 2:] == chip_flags[:, None, None, :]).all()  # constant per chip
            assert (chip_flags.sum(axis=1) >= 1).all()
            if flags is not None:
                assert (chip_flags == flags).all()
            for slot in range(2):  # a hidden or missing polarisation is 0
                assert not x[chip_flags[:, slot] == 0][..., slot].any()


def test_polarisation_settings_are_checked(tmp_path) -> None:
    with pytest.raises(InputError, match="distinct names"):
        TrainConfig.from_dict({"polarisations": ["VV", "XX"]})
    with pytest.raises(InputError, match="needs at least two polarisations"):
        TrainConfig.from_dict({"pol_dropout": 0.3})
    with pytest.raises(InputError, match=r"pol_dropout must be in \[0, 1\)"):
        TrainConfig.from_dict({"polarisations": POLS, "pol_dropout": 1.0})


def test_a_folder_of_another_polarisation_is_refused(mixed_model) -> None:
    from sar_colorizer.training import read_chip_folders

    with pytest.raises(InputError, match="none of the polarisations VV"):
        read_chip_folders([mixed_model.parent / "vh"], None, ["VV"])


def test_a_product_gives_every_polarisation_the_model_takes(mixed_model, tmp_path) -> None:
    from click.testing import CliRunner
    from s1_products import make_product

    from sar_colorizer.cli import cli

    def sigma0(shape, pol):
        rng = np.random.default_rng(1)
        return 0.03 * rng.gamma(4.0, 0.25, size=shape) * (4.0 if pol == "VV" else 1.0)

    product = make_product(tmp_path / "product", sigma0, factor=32)
    out = tmp_path / "colour.tif"
    result = CliRunner().invoke(cli, ["-q", "predict", "--model", str(mixed_model),
                                      str(product.safe), str(out), "--tile-size", "64",
                                      "--overlap", "16", "--pixel-size", "10"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.tags()["SARCOLOR_INPUT_POLARISATIONS"] == "VH,VV"


def test_the_shipped_model_takes_its_bands_as_before() -> None:
    from sar_colorizer.bundle import load_bundle

    bundle = load_bundle("default")
    assert not bundle.optional_bands and bundle.bands == ["VH"]
    assert bundle.input_layout(1, ["VH"]) == ((0,), None)
    with pytest.raises(ModelMismatchError, match="model expects 1 band"):
        bundle.input_layout(2, ["VV", "VH"])


def test_the_xarray_path_takes_the_polarisations_the_model_takes(mixed_model, scene,
                                                                 tmp_path) -> None:
    xr = pytest.importorskip("xarray", reason="needs the xarray extra: pip install '.[xarray]'")
    rioxarray = pytest.importorskip("rioxarray", reason="needs the xarray extra")
    from affine import Affine

    import sar_colorizer as sc
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import colorize_raster

    path = tmp_path / "hh_vh.tif"
    profile = {"driver": "GTiff", "count": 2, "height": 96, "width": 80, "dtype": "float32",
               "crs": "EPSG:32631", "transform": Affine(10, 0, 600000, 0, -10, 4800000)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack([scene["VV"] * 2, scene["VH"]]))
        dst.set_band_description(1, "HH")
        dst.set_band_description(2, "VH")
    out = tmp_path / "predicted.tif"
    colorize_raster(load_bundle(mixed_model), path, out, progress=False, input_scale="linear")
    array = rioxarray.open_rasterio(path)
    assert isinstance(array, xr.DataArray)
    got = sc.colorize_dataarray(array, model=str(mixed_model), input_scale="linear")
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(got.values, src.read())


def test_eval_scores_each_polarisation_combination(mixed_model, tmp_path) -> None:
    """``eval`` on VV + VH pairs uses both; ``--bands`` scores one of them; the model's own
    input feeds the baselines (the first polarisation it has)."""
    from click.testing import CliRunner

    from sar_colorizer.cli import cli

    pairs = mixed_model.parent / "dual_pairs"
    reports = {}
    for bands in (None, "VH", "VV"):
        report = tmp_path / f"report_{bands}"
        args = ["-q", "eval", str(mixed_model), str(pairs), "--report", str(report),
                "--grid", "0", *(["--bands", bands] if bands else [])]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        reports[bands] = json.loads((report / "report.json").read_text())
    rmse = {bands: r["model"]["ab_rmse"] for bands, r in reports.items()}
    assert len(set(rmse.values())) == 3, rmse  # three inputs, three scores
    # the baselines see VH when the input has it, VV alone otherwise
    regression = {b: r["baselines"]["linear_regression"]["ab_rmse"] for b, r in reports.items()}
    assert regression[None] == regression["VH"] != regression["VV"]


def test_eval_band_names_names_unnamed_bands(mixed_model, tmp_path) -> None:
    """Pairs whose SAR band names no polarisation (the s1s2-la-texas PNGs): ``eval`` takes it as
    the model's first polarisation with a warning; ``--band-names`` says what it is, without
    one, and names it VV or VH as told."""
    from click.testing import CliRunner

    from sar_colorizer.cli import cli

    pairs = mixed_model.parent / "vh_pairs"  # one unnamed band per SAR image
    rmse, warned = {}, {}
    for names in (None, "VH", "VV"):
        report = tmp_path / f"report_{names}"
        result = CliRunner().invoke(cli, [
            "eval", str(mixed_model), str(pairs), "--report", str(report),
            "--grid", "0", *(["--band-names", names] if names else []),
        ])
        assert result.exit_code == 0, result.output
        rmse[names] = json.loads((report / "report.json").read_text())["model"]["ab_rmse"]
        warned[names] = "names no polarisation: taken as VH" in result.output
    assert warned == {None: True, "VH": False, "VV": False}
    assert rmse[None] == rmse["VH"] != rmse["VV"]
    result = CliRunner().invoke(cli, ["eval", str(mixed_model), str(pairs), "--report",
                                      str(tmp_path / "bad"), "--band-names", "VV,"])
    assert result.exit_code == 2 and "comma-separated list of names" in result.output


def test_band_names_name_unnamed_bands_on_every_path(mixed_model, scene, tmp_path) -> None:
    """``--band-names`` (the ``band_names`` option) names bands that say nothing of their
    polarisation: predict, the numpy and xarray paths colour them as bands described so, and
    the output records the names; a count that does not match the bands is refused."""
    from click.testing import CliRunner

    import sar_colorizer as sc
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.cli import cli
    from sar_colorizer.inference import colorize_array
    from sar_colorizer.inference.options import ColourOptions

    two = np.stack([scene["VV"], scene["VH"]])
    named = _raster(tmp_path / "in_named.tif", {"VV": two[0], "VH": two[1]})
    unnamed = _raster(tmp_path / "in_unnamed.tif", {"": two[0], None: two[1]})
    with rasterio.open(unnamed) as src:
        assert src.descriptions == (None, None)

    def predict(source: Path, name: str, *extra: str) -> tuple[np.ndarray, dict]:
        out = tmp_path / name
        result = CliRunner().invoke(cli, ["predict", "--model", str(mixed_model), str(source),
                                          str(out), "--input-scale", "linear", *extra])
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as src:
            return src.read(), src.tags()

    expected, tags = predict(named, "named.tif")
    got, got_tags = predict(unnamed, "unnamed.tif", "--band-names", "VV,VH")
    np.testing.assert_array_equal(got, expected)
    assert got_tags["SARCOLOR_INPUT_BANDS"] == tags["SARCOLOR_INPUT_BANDS"] == "VH,VV"
    swapped, swapped_tags = predict(unnamed, "swapped.tif", "--band-names", "VH,VV")
    # the tag lists the bands in the model's order; the swapped names fed VV's values as VH
    assert not np.array_equal(swapped, expected) and swapped_tags["SARCOLOR_INPUT_BANDS"] == "VH,VV"
    # numpy: the option, or the keyword
    bundle, valid = load_bundle(mixed_model), np.ones((96, 80), bool)
    by_option = colorize_array(bundle, two, valid, ColourOptions(band_names="VV,VH"),
                               input_scale="linear")["rgb"]
    by_keyword = colorize_array(bundle, two, valid, band_names=["VV", "VH"],
                                input_scale="linear")["rgb"]
    np.testing.assert_array_equal(by_option, by_keyword)
    np.testing.assert_array_equal(by_option, np.moveaxis(expected[:3], 0, -1))
    # one name for two bands: one line, exit 3, nothing written
    result = CliRunner().invoke(cli, ["predict", "--model", str(mixed_model), str(unnamed),
                                      str(tmp_path / "bad.tif"), "--band-names", "VV"])
    assert result.exit_code == 3, result.output
    assert "1 band name(s) (VV) for 2 selected band(s)" in result.output
    assert not (tmp_path / "bad.tif").exists()
    rioxarray = pytest.importorskip("rioxarray", reason="needs the xarray extra")
    array = rioxarray.open_rasterio(unnamed)
    got_xr = sc.colorize_dataarray(array, model=str(mixed_model), input_scale="linear",
                                   band_names=("VV", "VH"))
    np.testing.assert_array_equal(got_xr.values, expected)


def test_a_reference_raster_is_read_with_the_band_names_given(mixed_model, scene,
                                                              tmp_path) -> None:
    """``--reference-from`` an unnamed raster with ``--band-names``: its per-band references
    follow the names (in the model's order), and one process keeps one per naming."""
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference.options import ColourOptions
    from sar_colorizer.inference.plan import resolve_reference
    from sar_colorizer.inference.reference import SceneReference

    path = _raster(tmp_path / "ref_unnamed.tif", {"": scene["VV"], None: scene["VH"]})
    bundle = load_bundle(mixed_model)
    values = {}
    for names in ("VV,VH", "VH,VV"):
        options = ColourOptions(band_names=names, input_scale="linear")
        found = resolve_reference(SceneReference.from_raster(path), bundle, options)
        assert found is not None
        values[names] = found.values
    assert values["VV,VH"] == tuple(reversed(values["VH,VV"]))  # the model's order: VH, VV
    assert values["VV,VH"][0] < values["VV,VH"][1]  # VH is the darker band
