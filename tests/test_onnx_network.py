"""Bundles run on ONNX Runtime: the graph saved beside model.keras computes what the Keras model
computes, predict runs it without importing TensorFlow, and a graph that does not belong to its
model.keras is never used."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sar_colorizer.bundle import load_bundle
from sar_colorizer.errors import InputError
from sar_colorizer.inference import colorize_raster
from sar_colorizer.inference.runner import ModelRunner
from sar_colorizer.onnx_network import DIGEST_KEY, ONNX_FILE, file_digest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("confidence_head", [False, True])
def test_the_graph_computes_what_the_keras_model_computes(make_bundle, confidence_head):
    path = make_bundle(confidence_head=confidence_head, batch_norm_statistics=True)
    assert (path / ONNX_FILE).is_file()
    onnx_bundle = load_bundle(path)
    keras_bundle = load_bundle(path, runtime="tensorflow")
    assert onnx_bundle.network is not None and keras_bundle.network is None
    onnx_runner = ModelRunner.for_bundle(onnx_bundle)
    keras_runner = ModelRunner.for_bundle(keras_bundle)
    assert onnx_runner.upsample and keras_runner.upsample  # both stop before the resize
    batch = (10 ** np.random.default_rng(3).uniform(-3, 0, (3, 32, 48, 1))).astype(np.float32)
    batch[0, :4, :4] = 0.0  # nodata
    expected = keras_runner(batch)
    got = onnx_runner(batch)
    assert got.shape == expected.shape == (3, 32, 48, 4 if confidence_head else 2)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_graph_of_another_model_is_not_used(make_bundle, tmp_path, caplog):
    bundle = shutil.copytree(make_bundle(), tmp_path / "bundle")
    other = make_bundle(confidence_head=True)
    # model.keras swapped by hand: its graph no longer belongs to it.
    shutil.copy(other / "model.keras", bundle / "model.keras")
    metadata = json.loads((other / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps(metadata))
    with caplog.at_level(logging.WARNING, logger="sar_colorizer.onnx_network"):
        loaded = load_bundle(bundle)
    assert loaded.network is None
    assert "made from another model.keras" in caplog.text
    with pytest.raises(InputError, match="made from another model.keras"):
        load_bundle(bundle, runtime="onnx")


def test_bundles_without_a_graph_run_on_tensorflow(make_bundle, tmp_path, monkeypatch):
    bundle = shutil.copytree(make_bundle(), tmp_path / "bundle")
    (bundle / ONNX_FILE).unlink()
    assert load_bundle(bundle).network is None
    with pytest.raises(InputError, match="has no model.onnx"):
        load_bundle(bundle, runtime="onnx")
    monkeypatch.setenv("SARCOLOR_RUNTIME", "tensorflow")
    assert load_bundle(make_bundle()).network is None
    monkeypatch.setenv("SARCOLOR_RUNTIME", "torch")
    with pytest.raises(InputError, match="unknown runtime 'torch'.*auto, onnx, tensorflow"):
        load_bundle(make_bundle())


def test_a_damaged_graph_is_named(make_bundle, tmp_path):
    bundle = shutil.copytree(make_bundle(), tmp_path / "bundle")
    (bundle / ONNX_FILE).write_bytes(b"not a graph")
    with pytest.raises(InputError, match="model.onnx: the ONNX graph does not load"):
        load_bundle(bundle)


def test_the_shipped_graph_belongs_to_the_shipped_model():
    folder = REPO / "sar_colorizer" / "weights" / "default"
    bundle = load_bundle("default")
    assert bundle.network is not None
    metadata = bundle.network.session.get_modelmeta().custom_metadata_map
    assert metadata[DIGEST_KEY] == file_digest(folder / "model.keras")
    # Small enough to ship: the graph is no larger than the Keras file.
    assert (folder / ONNX_FILE).stat().st_size <= 1.05 * (folder / "model.keras").stat().st_size


def test_the_quick_start_on_onnx_runtime_equals_tensorflow_within_one_level(
    samples_dir, tmp_path
):
    source = next((samples_dir / "spatialist-s1-vv-db").glob("*.tif"))
    outputs = {}
    for runtime in ("onnx", "tensorflow"):
        outputs[runtime] = tmp_path / f"{runtime}.tif"
        colorize_raster(load_bundle("default", runtime=runtime), source, outputs[runtime],
                        progress=False)
    with rasterio.open(outputs["onnx"]) as a, rasterio.open(outputs["tensorflow"]) as b:
        difference = np.abs(a.read().astype(int) - b.read().astype(int))
    assert difference.max() <= 1


def test_predict_runs_without_tensorflow(samples_dir, tmp_path):
    source = next((samples_dir / "spatialist-s1-vv-db").glob("*.tif"))
    script = (
        "import sys\n"
        "from sar_colorizer.cli import main\n"
        f"sys.argv = ['sarcolor', 'predict', {str(source)!r}, {str(tmp_path / 'out.png')!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "assert 'tensorflow' not in sys.modules, 'predict imported TensorFlow'\n"
        "assert 'keras' not in sys.modules, 'predict imported Keras'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.png").stat().st_size > 0
