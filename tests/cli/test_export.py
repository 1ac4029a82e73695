"""``sarcolor export``: ONNX and SavedModel give the Keras model's output at any tile size."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.bundle import save_bundle
from sar_colorizer.cli import cli
from sar_colorizer.errors import InputError, OutputExistsError
from sar_colorizer.export import ONNX_METADATA_KEY, export_model
from sar_colorizer.nets.unet import ColorizationUNet

#: Float32 graphs that fuse or reorder operations differently; measured differences ~1e-7.
TOLERANCE = 1e-5
SIZES = [(1, 32, 32), (2, 48, 80)]  # two spatial sizes: height and width are dynamic


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = ColorizationUNet(input_channels=2, depth=2, base_filters=4, downsample=2)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
        if weight.path.startswith("ab/kernel"):  # spread the outputs over the tanh range
            weight.assign(weight.numpy() * 20)
    metadata = {"bands": ["VV", "VH"], "tone": {"method": "sar"}}
    return save_bundle(tmp_path_factory.mktemp("export") / "model", model, metadata)


def _inputs(shape, seed):
    linear = np.random.default_rng(seed).exponential(1.0, size=(*shape, 2))
    return np.clip(linear / np.quantile(linear, 0.99), 0, 1).astype("float32")


def _keras_predictions(bundle_dir):
    model = keras.saving.load_model(bundle_dir / "model.keras", safe_mode=True, compile=False)
    return {
        shape: (x, model.predict(x, verbose=0))
        for shape, x in ((s, _inputs(s, i)) for i, s in enumerate(SIZES))
    }


def test_savedmodel_matches_keras_at_two_sizes(tmp_path, bundle_dir):
    import tensorflow as tf

    out = tmp_path / "saved"
    result = CliRunner().invoke(
        cli, ["export", str(bundle_dir), str(out), "--format", "savedmodel"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert json.loads((out / "bundle.json").read_text())["bands"] == ["VV", "VH"]
    loaded = tf.saved_model.load(str(out))
    serve = loaded.signatures["serving_default"]
    for shape, (x, expected) in _keras_predictions(bundle_dir).items():
        got = serve(sar_relative_intensity=tf.constant(x))
        got = next(iter(got.values())).numpy()
        assert got.shape == (*shape, 2)
        assert np.std(expected) > 0.1
        np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_onnx_matches_keras_at_two_sizes(tmp_path, bundle_dir):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    onnx = pytest.importorskip("onnx")

    out = tmp_path / "model.onnx"  # format inferred from the extension
    result = CliRunner().invoke(cli, ["export", str(bundle_dir), str(out)])
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(out))
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert json.loads(metadata[ONNX_METADATA_KEY])["bands"] == ["VV", "VH"]

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (onnx_input,) = session.get_inputs()
    assert onnx_input.name == "sar_relative_intensity"
    assert [o.name for o in session.get_outputs()] == ["ab_normalized"]
    worst = 0.0
    for shape, (x, expected) in _keras_predictions(bundle_dir).items():
        (got,) = session.run(None, {onnx_input.name: x})
        assert got.shape == (*shape, 2)
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= TOLERANCE, f"ONNX differs from Keras by {worst:.2e}"


def test_refuses_to_overwrite_unless_asked(tmp_path, bundle_dir):
    out = tmp_path / "saved"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        cli, ["export", str(bundle_dir), str(out), "--format", "savedmodel"]
    )
    assert result.exit_code != 0
    assert "exists; pass --overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputExistsError):
        export_model(bundle_dir, out, "savedmodel")

    result = CliRunner().invoke(
        cli, ["export", str(bundle_dir), str(out), "--format", "savedmodel", "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists()
    assert (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]  # no temporaries left


def test_clear_errors(tmp_path, bundle_dir):
    result = CliRunner().invoke(
        cli, ["export", str(tmp_path / "nope"), str(tmp_path / "m"), "--format", "savedmodel"]
    )
    assert result.exit_code == 3  # InputError
    assert "no such model bundle" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(InputError, match="onnx, savedmodel"):
        export_model(bundle_dir, tmp_path / "x", "tflite")


def test_missing_onnx_extra_names_the_install_command(monkeypatch, tmp_path, bundle_dir):
    import builtins

    from sar_colorizer.onnx_graph import require_onnx

    real_import = builtins.__import__

    def no_tf2onnx(name, *args, **kwargs):
        if name == "tf2onnx":
            raise ModuleNotFoundError("No module named 'tf2onnx'", name="tf2onnx")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tf2onnx)
    result = CliRunner().invoke(cli, ["export", str(bundle_dir), str(tmp_path / "m.onnx")])
    assert result.exit_code == 6  # MissingExtraError
    assert 'pip install ".[onnx]"' in result.output
    with pytest.raises(ImportError):
        require_onnx()
    assert list(tmp_path.iterdir()) == []


def test_help_describes_the_channels_a_confidence_model_exports(tmp_path, head_bundle):
    """``export --help`` names every output channel of a model with a confidence head (the
    shipped model's kind) and does not promise two channels in [-1, 1]."""
    import tensorflow as tf

    help_text = " ".join(CliRunner().invoke(cli, ["export", "--help"]).output.split())
    out = tmp_path / "saved"
    result = CliRunner().invoke(cli, ["export", str(head_bundle), str(out), "--format", "savedmodel"])
    assert result.exit_code == 0, result.output
    channels = json.loads((out / "bundle.json").read_text())["outputs"]["channels"]
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    got = next(iter(serve(sar_relative_intensity=tf.constant(_inputs((1, 32, 32), 0)[..., :1])).values()))
    assert got.shape[-1] == len(channels) == 4
    for name in channels:
        assert name in help_text, name
    assert "(batch, height, width, 2)" not in help_text
