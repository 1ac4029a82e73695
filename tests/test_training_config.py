"""Training settings: TOML files, flag overrides and validation (no TensorFlow needed)."""

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
