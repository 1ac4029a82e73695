"""Fine-tuning the shipped model through the command line: ``preprocess`` then ``train --init``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from sar_colorizer.cli import cli


def test_train_init_default_writes_a_fine_tuned_bundle(tmp_path: Path, write_pairs) -> None:
    from sar_colorizer.bundle import load_bundle

    pairs, chips, model_out = tmp_path / "pairs", tmp_path / "chips", tmp_path / "finetuned"
    write_pairs(pairs, 2, 128, texture="noise")
    runner = CliRunner()
    # No validation split: fine-tuning on a handful of images must work without one.
    result = runner.invoke(
        cli, ["-q", "preprocess", str(pairs), str(chips), "--chip-size", "64",
              "--val-fraction", "0", "--band-names", "VH"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, ["-q", "train", str(chips), str(model_out), "--init", "default", "--epochs", "1",
              "--steps-per-epoch", "2", "--batch-size", "2", "--crop-size", "64"],
    )
    assert result.exit_code == 0, result.output

    metadata = json.loads((model_out / "bundle.json").read_text())
    assert metadata["training"]["init"] == "default"
    assert metadata["training"]["epochs_run"] == 1
    tuned = load_bundle(model_out)
    default = load_bundle("default")
    # Fine-tuning keeps the shipped network (a model built from the training flags would differ:
    # the default TrainConfig has base_filters 16, downsample 2), its confidence head included,
    # and changes its weights.
    shipped, recorded = default.metadata["model_config"], metadata["model_config"]
    assert {key: recorded[key] for key in shipped} == shipped
    # Settings the network gained after the shipped bundle was written (antialias) are
    # recorded with the values the shipped network has when loaded.
    assert {key: recorded[key] for key in recorded.keys() - shipped.keys()} == {
        key: default.model.get_config()[key] for key in recorded.keys() - shipped.keys()}
    assert tuned.model.get_config() == default.model.get_config()
    assert tuned.has_confidence and default.has_confidence
    assert tuned.tile_multiple == default.tile_multiple
    shared = [layer.name for layer in default.model.layers if layer.weights]
    tuned_weights = [w for name in shared for w in tuned.model.get_layer(name).get_weights()]
    default_weights = default.model.get_weights()
    assert [w.shape for w in tuned_weights] == [w.shape for w in default_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(tuned_weights, default_weights, strict=True))
    assert not (tmp_path / "finetuned.work").exists()
