"""Model bundles: save/load round trip, atomic writes, clear errors, input checks."""

import json

import keras
import numpy as np
import pytest

from sar_colorizer import bundle as bundle_module
from sar_colorizer.bundle import (
    DEFAULT_TILE_SIZE,
    FORMAT_VERSION,
    Bundle,
    load_bundle,
    read_metadata,
    save_bundle,
)
from sar_colorizer.errors import (
    InputError,
    ModelMismatchError,
    OutputExistsError,
    SarColorError,
)
from sar_colorizer.nets.unet import ColorizationUNet

METADATA = {
    "bands": ["VH"],
    "normalization": {"method": "percentile", "percentile": 99.0, "db_min": -25.0, "db_max": 5.0},
    "speckle_filter": {"name": "boxcar", "window": 5, "looks": 1.0},
    "tone": {"method": "matched", "l_quantiles": list(np.linspace(0.0, 100.0, 101))},
    "baselines": {"mean_colour": [np.float32(-2.5), 4.0]},
}


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    model = ColorizationUNet(input_channels=1, depth=2, base_filters=4, downsample=2)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # trained-looking batch-norm statistics
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def saved_bundle(tmp_path_factory, tiny_model):
    return save_bundle(tmp_path_factory.mktemp("bundles") / "vh_model", tiny_model, METADATA)


def test_round_trip_gives_identical_predictions(saved_bundle, tiny_model):
    assert sorted(p.name for p in saved_bundle.iterdir()) == ["bundle.json", "model.keras", "model.onnx"]
    bundle = load_bundle(saved_bundle)
    assert isinstance(bundle.model, ColorizationUNet)
    assert bundle.path == saved_bundle
    x = np.random.default_rng(1).random((2, 32, 64, 1), dtype=np.float32)
    expected = tiny_model.predict(x, verbose=0)
    np.testing.assert_array_equal(bundle.model.predict(x, verbose=0), expected)


def test_metadata_is_completed_from_the_model(saved_bundle, tiny_model):
    metadata = json.loads((saved_bundle / "bundle.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["input_channels"] == 1
    assert metadata["tile_multiple"] == 8
    assert metadata["model_config"] == tiny_model.get_config()
    assert metadata["baselines"]["mean_colour"] == [-2.5, 4.0]  # numpy scalar -> JSON number
    assert read_metadata(saved_bundle) == metadata


def test_typed_accessors(saved_bundle):
    bundle = load_bundle(saved_bundle)
    assert bundle.bands == ["VH"]
    assert bundle.input_channels == 1
    assert bundle.tile_multiple == 8
    assert bundle.tone["method"] == "matched" and len(bundle.tone["l_quantiles"]) == 101
    from sar_colorizer.sar import radiometry, speckle

    assert bundle.normalization == radiometry.Normalization(
        method="percentile", percentile=99.0, db_min=-25.0, db_max=5.0
    )
    assert bundle.speckle_filter == speckle.SpeckleFilter("boxcar", 5, 1.0)


def test_save_refuses_an_existing_path_unless_overwrite(saved_bundle, tiny_model):
    before = (saved_bundle / "model.keras").stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_bundle(saved_bundle, tiny_model, METADATA)
    assert (saved_bundle / "model.keras").stat().st_mtime_ns == before
    save_bundle(
        saved_bundle, tiny_model, {**METADATA, "training": {"epochs_run": 2}}, overwrite=True
    )
    assert read_metadata(saved_bundle)["training"] == {"epochs_run": 2}
    leftovers = [p.name for p in saved_bundle.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failed_save_leaves_nothing_behind(tmp_path, tiny_model):
    target = tmp_path / "broken"
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        save_bundle(target, tiny_model, {**METADATA, "training": {"when": object()}})
    assert list(tmp_path.iterdir()) == []

    class ExplodingModel:
        inputs = tiny_model.inputs
        tile_multiple = 8

        def get_config(self):
            return {}

        def save(self, path):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_bundle(target, ExplodingModel(), METADATA)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_bands_that_disagree_with_the_model(tmp_path, tiny_model):
    with pytest.raises(InputError, match="2 bands"):
        save_bundle(tmp_path / "b", tiny_model, {**METADATA, "bands": ["VV", "VH"]})


def test_load_errors_are_clear(tmp_path, saved_bundle):
    with pytest.raises(InputError, match="no such model bundle"):
        load_bundle(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a model bundle"):
        load_bundle(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="model.keras and bundle.json missing"):
        load_bundle(empty)

    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "model.keras").write_bytes((saved_bundle / "model.keras").read_bytes())
    metadata = read_metadata(saved_bundle)
    (newer / "bundle.json").write_text(json.dumps({**metadata, "format_version": 99}))
    with pytest.raises(InputError, match="newer.*upgrade sarcolor"):
        load_bundle(newer)
    (newer / "bundle.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        load_bundle(newer)
    (newer / "bundle.json").write_text(json.dumps(metadata))
    (newer / "model.keras").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="not a complete Keras model file.*truncated or damaged"):
        load_bundle(newer)
    # A truncated archive is named as such, not "File not found" for a file that exists.
    whole = (saved_bundle / "model.keras").read_bytes()
    (newer / "model.keras").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="truncated or damaged") as caught:
        load_bundle(newer)
    assert "not found" not in str(caught.value)


def test_default_bundle(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setattr(bundle_module, "_package_weights", lambda: tmp_path)
    with pytest.raises(SarColorError, match="no default model"):
        load_bundle("default")
    save_bundle(tmp_path / "default", tiny_model, METADATA)
    assert load_bundle("default").path == tmp_path / "default"
    assert load_bundle().bands == ["VH"]


def _bundle(bands):
    return Bundle(model=None, metadata={"bands": bands, "input_channels": len(bands)})


def test_check_input_accepts_matching_input():
    _bundle(["VH"]).check_input(1, ["VH"])
    _bundle(["VH"]).check_input(1, None)  # names unknown: the count decides
    _bundle(["VH"]).check_input(1, ["Sigma0_VH_db"])
    _bundle(["VV", "VH"]).check_input(2, ["1", None])


def test_check_input_names_what_the_model_expects():
    with pytest.raises(ModelMismatchError) as error:
        _bundle(["VH"]).check_input(2, ["VV", "VH"])
    assert str(error.value) == (
        "model expects 1 band (VH); input has 2 bands (VV, VH): choose one with --bands VH"
    )
    with pytest.raises(ModelMismatchError, match=r"expects 2 bands \(VV, VH\); input has 1 band"):
        _bundle(["VV", "VH"]).check_input(1, ["VH"])
    with pytest.raises(ModelMismatchError, match="--bands"):
        _bundle(["VH"]).check_input(3, None)
    with pytest.raises(ModelMismatchError, match="reorder with --bands VV,VH"):
        _bundle(["VV", "VH"]).check_input(2, ["VH", "VV"])


def test_single_band_of_another_polarisation_warns_but_runs(caplog):
    with caplog.at_level("WARNING", logger="sar_colorizer.bundle"):
        _bundle(["VH"]).check_input(1, ["VV"])
    assert "trained on VH; input is VV" in caplog.text
    with pytest.raises(ModelMismatchError, match="give VV, VH data"):
        _bundle(["VV", "VH"]).check_input(2, ["HH", "HV"])


def test_bundle_leaves_optimizer_state_out(tmp_path):
    import io
    import zipfile

    import h5py

    model = ColorizationUNet(input_channels=1, depth=2, base_filters=4, downsample=2)
    model.compile(optimizer="adam", loss="mse")
    x = np.zeros((1, 32, 32, 1), dtype="float32")
    model.fit(x, np.zeros((1, 32, 32, 2), dtype="float32"), epochs=1, verbose=0)
    path = save_bundle(tmp_path / "trained", model, METADATA)
    with zipfile.ZipFile(path / "model.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        assert "optimizer" not in weights  # Adam's moments would triple the file
    reloaded = load_bundle(path)
    np.testing.assert_allclose(reloaded.model.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"tile_size": 256}, 256),
        ({"tile_size": 250}, 256),  # rounded up to the multiple (64)
        ({"training": {"config": {"crop_size": 384}, "chip_size": 512}}, 384),
        ({"training": {"config": {"crop_size": None}, "chip_size": 128}}, 128),
        ({}, DEFAULT_TILE_SIZE),
    ],
)
def test_tile_size_is_the_training_tile_size(metadata, expected):
    bundle = Bundle(model=None, metadata={"tile_multiple": 64, **metadata})
    assert bundle.tile_size == expected


def test_shipped_bundle_records_no_paths_of_the_training_machine(machine_paths):
    from importlib import resources

    text = (resources.files("sar_colorizer") / "weights" / "default" / "bundle.json").read_text()
    assert machine_paths(json.loads(text)) == []


def test_portable_path_is_relative_to_its_folder_or_a_name(tmp_path):
    from sar_colorizer.bundle import portable_path

    data = tmp_path / "pairs"
    assert portable_path(data / "sar" / "a.tif", data) == "sar/a.tif"
    assert portable_path(tmp_path / "elsewhere" / "b.tif", data) == "b.tif"
    assert portable_path(tmp_path / "chips_la") == "chips_la"
    assert portable_path(".") == __import__("pathlib").Path.cwd().name
