"""Training end to end on tiny synthetic pairs: bundle contents, resume, distribution."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sar_colorizer.data.stats import read_stats
from sar_colorizer.training import TrainConfig, train

REAL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "s1s2-la-texas"
TINY = {"depth": 2, "base_filters": 4, "downsample": 2, "crop_size": 32, "batch_size": 4,
        "steps_per_epoch": 2, "patience": 10}


@pytest.fixture(scope="module")
def chips(tmp_path_factory, write_pairs) -> Path:
    from sar_colorizer.data.preprocess import preprocess

    root = tmp_path_factory.mktemp("training")
    pairs = write_pairs(root / "pairs").root
    out = root / "chips"
    preprocess(pairs, out, chip_size=32, val_fraction=0.25, band_names=["VH"], progress=False)
    return out


def test_train_writes_a_complete_bundle(chips, tmp_path):
    from sar_colorizer.bundle import load_bundle

    model_out = tmp_path / "model"
    summary = train(chips, model_out, TrainConfig.from_dict({**TINY, "epochs": 2}),
                    progress=False)
    assert summary["epochs"] == 2
    for name in ("model.keras", "bundle.json", "training_log.csv", "learning_curves.png"):
        assert (model_out / name).is_file(), name
    assert not model_out.with_name("model.work").exists()

    meta = json.loads((model_out / "bundle.json").read_text())
    stats = read_stats(chips)
    assert meta["bands"] == ["VH"]
    assert meta["normalization"] == stats["normalization"]
    assert meta["tone"]["l_quantiles"] == stats["l_quantiles"]
    assert meta["baselines"]["linear_regression"] == stats["linear_regression"]
    assert meta["tile_multiple"] == 2 * 2**2
    assert meta["tile_size"] == TINY["crop_size"]  # what the network was trained on
    assert meta["pixel_size"] == 10.0  # inference resamples other pixel sizes to this one
    assert meta["training"]["config"]["depth"] == 2

    bundle = load_bundle(model_out)
    x = np.random.default_rng(0).random((1, 32, 32, 1), dtype=np.float32)
    # AB and the confidence head's log-variance of a*, b* (on by default), as bundle.json says.
    assert bundle.model.predict(x, verbose=0).shape == (1, 32, 32, 4)
    assert meta["outputs"]["channels"] == ["a", "b", "log_var_a", "log_var_b"]
    assert bundle.has_confidence
    # The shrink constant was chosen on the validation chips, as the lowest AB RMSE there.
    confidence = meta["confidence"]
    assert confidence["chosen_on"] == "validation chips" and confidence["n_pixels"] > 0
    assert confidence["ab_rmse"][f"{confidence['shrink_k']:g}"] == min(
        confidence["ab_rmse"].values())
    with open(model_out / "training_log.csv") as handle:
        columns = next(csv.reader(handle))
    assert {"nll", "val_nll", "colour_loss", "val_colour_loss", "val_ab_rmse"} <= set(columns)


def test_existing_bundle_is_refused(chips, tmp_path):
    from sar_colorizer.errors import OutputExistsError

    (tmp_path / "model").mkdir()
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        train(chips, tmp_path / "model", TrainConfig.from_dict({**TINY, "epochs": 1}),
              progress=False)


def test_interrupted_training_resumes_from_the_last_epoch(chips, tmp_path):
    from sar_colorizer._tf import import_keras

    keras = import_keras()

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated interruption")

    model_out = tmp_path / "model"
    config = TrainConfig.from_dict({**TINY, "epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        train(chips, model_out, config, progress=False, callbacks=[Interrupt()])
    assert not model_out.exists()  # nothing half-written
    work = model_out.with_name("model.work")
    assert (work / "backup").is_dir()

    train(chips, model_out, config, progress=False)
    with (model_out / "training_log.csv").open() as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    # Epochs 0 and 1 ran before the interruption; the second run continued with 2 and 3.
    assert epochs[-2:] == [2, 3]
    assert epochs.count(0) == 1


def test_a_run_interrupted_after_its_last_epoch_keeps_its_record(chips, tmp_path):
    """Killed after the last epoch's checkpoint but before the bundle: the rerun has nothing
    left to fit, and its bundle still records the epochs run and the best validation loss."""
    from sar_colorizer._tf import import_keras

    keras = import_keras()

    class InterruptAtTheEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            raise KeyboardInterrupt("simulated interruption")

    model_out = tmp_path / "model"
    config = TrainConfig.from_dict({**TINY, "epochs": 2})
    with pytest.raises(KeyboardInterrupt):
        train(chips, model_out, config, progress=False, callbacks=[InterruptAtTheEnd()])
    work = model_out.with_name("model.work")
    with (work / "training_log.csv").open() as handle:
        logged = list(csv.DictReader(handle))
    assert len(logged) == 2

    summary = train(chips, model_out, config, progress=False)
    record = json.loads((model_out / "bundle.json").read_text())["training"]
    assert record["epochs_run"] == 2 and summary["epochs"] == 2
    monitor = record["best"]["metric"]  # the validation loss that chose the best epoch
    assert monitor.startswith("val_")
    best = min(float(row[monitor]) for row in logged)
    assert record["best"]["value"] == pytest.approx(best, rel=1e-6)


def test_mirrored_strategy_on_two_logical_cpus(chips, tmp_path):
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from sar_colorizer.training import TrainConfig, make_strategy, train
        assert make_strategy("mirrored").num_replicas_in_sync == 2
        config = TrainConfig.from_dict({{**{TINY!r}, "epochs": 1, "strategy": "mirrored"}})
        train({str(chips)!r}, {str(tmp_path / "model")!r}, config, progress=False)
        print("replicas ok")
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "replicas ok" in result.stdout
    assert (tmp_path / "model" / "model.keras").is_file()


def test_batch_that_does_not_split_over_replicas_is_refused(chips, tmp_path, monkeypatch):
    from sar_colorizer import training
    from sar_colorizer.errors import InputError

    class TwoReplicas:
        num_replicas_in_sync = 2

    monkeypatch.setattr(training, "make_strategy", lambda name: TwoReplicas())
    with pytest.raises(InputError, match="multiple of 2"):
        train(chips, tmp_path / "m", TrainConfig.from_dict({**TINY, "batch_size": 3}),
              progress=False)


@pytest.mark.slow
def test_loss_falls_on_real_chips(tmp_path):
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA} (lives beside the checkout)")
    import csv as csv_module

    from sar_colorizer.data.preprocess import preprocess

    manifest = tmp_path / "pairs.csv"
    rows = list(csv_module.DictReader((REAL_DATA / "pairs.csv").open()))[:4]
    manifest.write_text("sar,optical,split\n" + "".join(
        f"{REAL_DATA / r['sar']},{REAL_DATA / r['optical']},train\n" for r in rows))
    preprocess(manifest, tmp_path / "chips", chip_size=256, val_fraction=0.25,
               band_names=["VH"], progress=False)
    config = TrainConfig.from_dict({"depth": 3, "base_filters": 8, "downsample": 4,
                                    "crop_size": 128, "batch_size": 8, "steps_per_epoch": 6,
                                    "epochs": 3, "learning_rate": 3e-3})
    train(tmp_path / "chips", tmp_path / "model", config, progress=False)
    with (tmp_path / "model" / "training_log.csv").open() as handle:
        losses = [float(row["loss"]) for row in csv_module.DictReader(handle)]
    assert losses[-1] < losses[0]


def test_checkpoints_of_a_run_with_other_settings_are_not_resumed(chips, tmp_path, caplog):
    work = tmp_path / "model.work"
    (work / "backup").mkdir(parents=True)
    (work / "run.json").write_text('{"config": {"epochs": 99}}')
    with caplog.at_level("WARNING", logger="sar_colorizer.training"):
        train(chips, tmp_path / "model", TrainConfig.from_dict({**TINY, "epochs": 1}),
              progress=False)
    assert "discarding checkpoints" in caplog.text
    assert (tmp_path / "model" / "model.keras").is_file()


@pytest.mark.parametrize("damage", ["truncated", "same checksum, foreign weights"])
def test_resume_skips_a_damaged_checkpoint_with_one_line(chips, tmp_path, caplog, damage):
    from sar_colorizer._tf import import_keras
    from sar_colorizer.checkpoints import STATE_FILE, WEIGHTS_FILE, _sha256

    keras = import_keras()

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("simulated interruption")

    model_out = tmp_path / "model"
    config = TrainConfig.from_dict({**TINY, "epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        train(chips, model_out, config, progress=False, callbacks=[Interrupt()])
    backup = model_out.with_name("model.work") / "backup"
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-00002", "epoch-00003"]
    newest = backup / "epoch-00003" / WEIGHTS_FILE
    if damage == "truncated":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])
    else:  # a valid HDF5 file of another network, with a matching checksum
        other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        other.save_weights(str(newest))
        state = json.loads((newest.parent / STATE_FILE).read_text())
        state["sha256"] = _sha256(newest)
        (newest.parent / STATE_FILE).write_text(json.dumps(state))

    with caplog.at_level("INFO", logger="sar_colorizer.checkpoints"):
        train(chips, model_out, config, progress=False)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "epoch-00003 is unusable" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert "resuming after epoch 2" in caplog.text
    with (model_out / "training_log.csv").open() as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs[-2:] == [2, 3]  # epoch 2 (index) redone from the epoch-00002 checkpoint
