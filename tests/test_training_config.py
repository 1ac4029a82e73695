"""Training settings: TOML files, flag overrides and validation (no TensorFlow needed)."""

import dataclasses
import json
from pathlib import Path

import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.training import TrainConfig


def test_toml_train_table_with_overrides(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[train]\nepochs = 3\nbase_filters = 8\nspeckle_filter = 'lee'\n")
    config = TrainConfig.from_toml(path, epochs=5)
    assert config.epochs == 5  # the flag wins over the file
    assert config.base_filters == 8
    assert config.speckle_filter == "lee"
    assert config.depth == TrainConfig().depth


def test_unknown_setting_is_refused_with_the_known_ones(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("epoch = 3\n")
    with pytest.raises(InputError, match="unknown training setting.*epoch.*known:.*epochs"):
        TrainConfig.from_toml(path)


def test_invalid_toml_and_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(InputError, match="bad.toml: not valid TOML"):
        TrainConfig.from_toml(bad)
    with pytest.raises(InputError, match="missing.toml: no such config file"):
        TrainConfig.from_toml(tmp_path / "missing.toml")


def test_crop_size_must_fit_the_network_multiple():
    with pytest.raises(InputError, match="not a multiple of 32"):
        TrainConfig.from_dict({"crop_size": 100, "depth": 4, "downsample": 2})
    assert TrainConfig.from_dict({"crop_size": 96, "depth": 4, "downsample": 2}).crop_size == 96


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(InputError, match="default, mirrored, multiworker"):
        TrainConfig.from_dict({"strategy": "tpu"})


def test_round_trip_through_dict():
    config = TrainConfig(epochs=2, chroma_weight=0.25)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_jitters_must_not_be_negative():
    with pytest.raises(InputError, match="must not be negative"):
        TrainConfig.from_dict({"phase_jitter": -1})
    with pytest.raises(InputError, match="must not be negative"):
        TrainConfig.from_dict({"gain_jitter_db": -2.0})


def test_build_model_passes_the_antialias_setting():
    from sar_colorizer.training import build_model

    small = {"depth": 2, "base_filters": 4, "downsample": 2, "crop_size": 64}
    assert build_model(TrainConfig.from_dict({**small, "antialias": True}), 1).antialias
    assert not build_model(TrainConfig.from_dict(small), 1).antialias


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "recipe", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "models").rglob("*.toml"))
)
def test_every_committed_recipe_is_a_valid_training_config(recipe):
    """The recipes the model card reproduces its models with still read (an option renamed or
    removed breaks them here, not in a 15-minute training run)."""
    config = TrainConfig.from_toml(REPO / recipe)
    assert config.epochs > 0 and config.crop_size > 0


def test_the_default_recipe_is_the_shipped_models_recorded_config():
    """models/default.toml (make train-default) holds the settings the shipped bundle records;
    settings added since it was trained keep, by default, the behaviour it was trained with."""
    recorded = json.loads((REPO / "sar_colorizer/weights/default/bundle.json").read_text())
    recorded = recorded["training"]["config"]
    recipe = dataclasses.asdict(TrainConfig.from_toml(REPO / "models" / "default.toml"))
    assert {k: recipe[k] for k in recorded if k in recipe} == {
        k: v for k, v in recorded.items() if k in recipe
    }
    newer = {k: recipe[k] for k in recipe if k not in recorded}
    assert newer.get("antialias") is False and newer.get("phase_jitter") == 0
    assert newer.get("gain_jitter_db") == 0 and newer.get("polarisations") is None
