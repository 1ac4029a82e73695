"""Training: chips from ``sarcolor preprocess`` -> tf.data -> U-Net -> a model bundle.

The trained bundle carries everything :mod:`sar_colorizer.inference` needs to treat new input
exactly as the training chips were treated: bands, input normalisation, speckle filter, tile
multiple, the tone curve for L and the baselines fitted on the same training data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sar_colorizer.data.stats import read_stats
from sar_colorizer.errors import InputError, OutputExistsError
from sar_colorizer.io.atomic import atomic_file
from sar_colorizer.train_bundle import (
    LEARNING_CURVES,
    TRAINING_LOG,
    bundle_metadata,
    warn_on_convention_change,
    write_trained_bundle,
)
from sar_colorizer.train_config import STRATEGIES, TrainConfig

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from sar_colorizer.losses import WeightedChromaLoss
    from sar_colorizer.nets.unet import ColorizationUNet
    from sar_colorizer.novelty import FeatureDensity
    from sar_colorizer.sar.speckle import SpeckleFilter

logger = logging.getLogger(__name__)

def make_strategy(name: str) -> tf.distribute.Strategy:
    """Return the ``tf.distribute`` strategy for ``name`` (see :data:`STRATEGIES`)."""
    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise InputError(
                "--strategy multiworker needs the TF_CONFIG environment variable describing the "
                "cluster on every worker; use --strategy mirrored for one machine"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InputError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def build_loss(config: TrainConfig, stats: dict[str, Any]) -> WeightedChromaLoss:
    """The weighted-MSE-plus-chroma loss, with rarity weights from the training AB histogram."""
    import numpy as np

    from sar_colorizer.losses import WeightedChromaLoss, rarity_weights

    weights = None
    if config.rarity_weighting:
        counts = np.asarray(stats["ab_histogram"]["counts"], dtype=np.float64)
        weights = rarity_weights(counts, sigma=config.rarity_sigma, mix=config.rarity_mix)
    if config.confidence_head:
        from sar_colorizer.losses import GaussianNLLChromaLoss

        return GaussianNLLChromaLoss(ab_weights=weights, chroma_weight=config.chroma_weight,
                                     nll_weight=config.nll_weight)
    return WeightedChromaLoss(ab_weights=weights, chroma_weight=config.chroma_weight)


def build_metrics(config: TrainConfig, loss: WeightedChromaLoss) -> list[keras.metrics.Metric]:
    """AB RMSE always; with the confidence head also the NLL (calibration) and the colour part
    of the loss (:class:`~sar_colorizer.keras_metrics.ColourLoss`), on which the best epoch is
    chosen."""
    from sar_colorizer.keras_metrics import ColourLoss, MaskedABRMSE, MaskedGaussianNLL

    metrics = [MaskedABRMSE()]
    if config.confidence_head:
        metrics += [MaskedGaussianNLL(),
                    ColourLoss(ab_weights=loss.ab_weights, chroma_weight=loss.chroma_weight)]
    return metrics


def monitored_metric(config: TrainConfig, has_validation: bool) -> str:
    """What early stopping and the best checkpoint watch: the colour loss, never the NLL."""
    name = "colour_loss" if config.confidence_head else "loss"
    return f"val_{name}" if has_validation else name


def build_model(
    config: TrainConfig, input_channels: int, init: str | None = None
) -> ColorizationUNet:
    """A new :class:`ColorizationUNet`, or the network of an existing bundle to fine-tune."""
    if init:
        from sar_colorizer.bundle import load_bundle

        bundle = load_bundle(init)
        if bundle.input_channels != input_channels:
            raise InputError(
                f"--init model takes {bundle.input_channels} band(s) but the data has "
                f"{input_channels}; preprocess the data with the model's bands {bundle.bands}"
            )
        logger.info("fine-tuning from %s", bundle.path)
        return with_heads(bundle.model, config.confidence_head, config.novelty)
    from sar_colorizer.nets.unet import ColorizationUNet

    return ColorizationUNet(
        input_channels=input_channels,
        depth=config.depth,
        base_filters=config.base_filters,
        downsample=config.downsample,
        separable=config.separable,
        confidence_head=config.confidence_head,
        novelty=config.novelty,
        antialias=config.antialias,
        presence=config.polarisations is not None,
    )


def with_confidence_head(model: ColorizationUNet, confidence_head: bool) -> ColorizationUNet:
    """``model`` with the confidence head added or removed, every shared layer's weights kept
    (:func:`with_heads` keeping the model's novelty layer setting)."""
    return with_heads(model, confidence_head, bool(model.get_config().get("novelty", False)))


def with_heads(model: ColorizationUNet, confidence_head: bool, novelty: bool) -> ColorizationUNet:
    """``model`` with the confidence head and its novelty layer added or removed, every shared
    layer's weights kept.

    Fine-tuning a bundle trained without the head with ``confidence_head`` on adds a freshly
    initialised head; the AB network is unchanged. A novelty layer is (re)fitted after
    training, so a new one starts neutral.
    """
    config = model.get_config()
    novelty = bool(novelty and confidence_head)
    if (bool(config.get("confidence_head", False)) == bool(confidence_head)
            and bool(config.get("novelty", False)) == novelty):
        return model
    rebuilt = model.__class__.from_config(
        {**config, "confidence_head": bool(confidence_head), "novelty": novelty})
    for layer in rebuilt.layers:
        if not layer.weights:
            continue
        try:
            source = model.get_layer(layer.name)
        except ValueError:
            continue  # a layer of the head that the source has not got
        layer.set_weights(source.get_weights())
    logger.info("confidence head %s, novelty layer %s", "on" if confidence_head else "off",
                "on" if novelty else "off")
    return rebuilt


def _float_or_nan(text: str | None) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def plot_learning_curves(log_csv: Path, out_png: Path) -> None:
    """Plot loss and AB RMSE per epoch (train and validation) from the CSV log."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    panels = [("loss", "loss"), ("ab_rmse", "AB RMSE (CIELAB units)")]
    if rows and "nll" in rows[0]:
        panels.append(("nll", "NLL of a*, b* (CIELAB units)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.8))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            column = prefix + key
            # Keras' CSVLogger writes "NA" in the val_ columns when there is no validation data.
            values = [_float_or_nan(r.get(column)) for r in rows]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, style, marker="o", ms=3,
                        label="validation" if prefix else "train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("sarcolor training")
    fig.tight_layout()
    with atomic_file(out_png, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _cosine_schedule(
    keras_api: ModuleType, learning_rate: float, total_steps: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    return keras_api.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate, decay_steps=max(total_steps, 1), alpha=0.05
    )


@dataclass(frozen=True)
class ChipFolders:
    """The chip folders a run trains on, with their statistics.

    Attributes:
        folders: Folders written by ``sarcolor preprocess``.
        weights: Normalised sampling weight of each folder.
        folder_stats: Each folder's ``stats.json``.
        stats: Statistics of the weighted mixture of the folders
            (:func:`~sar_colorizer.data.sources.combine_stats`).
        presence: The network takes each polarisation of ``stats["bands"]`` optionally: one
            SAR and one presence channel per polarisation.
    """

    folders: list[Path]
    weights: list[float]
    folder_stats: list[dict[str, Any]]
    stats: dict[str, Any]
    presence: bool = False

    @property
    def label(self) -> Path:
        """The folder, or the folders joined by commas: bundle.json's ``training.data_dir``."""
        if len(self.folders) == 1:
            return self.folders[0]
        return Path(",".join(map(str, self.folders)))

    @property
    def n_train(self) -> int:
        """Number of training chips in all folders."""
        return int(self.stats["n_chips"]["train"])

    @property
    def input_channels(self) -> int:
        """Number of network input channels: the chips' SAR bands (with presence flags, two
        per polarisation)."""
        bands = len(self.stats.get("bands") or ["band1"])
        return 2 * bands if self.presence else bands


@dataclass(frozen=True)
class FitResult:
    """What ``model.fit`` achieved.

    Attributes:
        monitor: The metric that chose the best epoch (:func:`monitored_metric`).
        best: Its lowest value over the epochs run (NaN when none was logged).
        epochs_run: Epochs run (early stopping may end sooner); in this call, or in the whole
            run after :func:`whole_run`.
        seconds: Wall time of the fit.
    """

    monitor: str
    best: float
    epochs_run: int
    seconds: float


def train(
    data_dir: str | Path | Sequence[str | Path],
    model_out: str | Path,
    config: TrainConfig,
    *,
    init: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> dict[str, Any]:
    """Train a model on preprocessed chips and write a bundle to ``model_out``.

    Interrupted runs resume: checkpoints go to ``<model_out>.work/``, and running the same
    command again continues from the last finished epoch. The bundle is written only at the end
    (atomically), with the training log (``training_log.csv``) and the learning curves
    (``learning_curves.png``) beside the model.

    Args:
        data_dir: Folder written by ``sarcolor preprocess``, or several: each training batch then
            comes from one of them, drawn with ``config.source_weights``, and validation uses
            the validation images of all (see :mod:`sar_colorizer.data.sources`).
        model_out: Bundle directory to create.
        config: Training settings.
        init: ``"default"`` or a bundle path to fine-tune from; None trains from scratch.
        overwrite: Replace an existing bundle.
        progress: Show Keras progress bars (one line per epoch otherwise).
        callbacks: Extra Keras callbacks, run after the built-in ones.

    Returns:
        A summary: epochs run, best validation loss, wall time, paths.
    """
    from sar_colorizer.checkpoints import restore_best
    from sar_colorizer.data.sources import as_sources
    from sar_colorizer.sar.speckle import SpeckleFilter

    config.validate()
    folders = as_sources(data_dir)
    model_out = Path(model_out)
    if model_out.exists() and not overwrite:
        raise OutputExistsError(f"{model_out} exists; pass --overwrite to replace it")
    chips = read_chip_folders(folders, config.source_weights, config.polarisations)
    seed_run(config.seed, deterministic=config.deterministic)

    speckle = SpeckleFilter(config.speckle_filter, config.speckle_window, config.speckle_looks)
    strategy = make_strategy(config.strategy)
    check_batch_split(config.batch_size, strategy.num_replicas_in_sync)
    steps_per_epoch = config.steps_per_epoch or max(1, math.ceil(chips.n_train / config.batch_size))
    crops = training_crops(config, chips)
    train_ds = training_dataset(chips, crops, config, speckle)
    val_ds, validation_steps = validation_dataset(chips, config, speckle)
    model, config = compiled_model(strategy, config, chips, init=init,
                                   decay_steps=steps_per_epoch * config.epochs)

    work_dir = model_out.with_name(model_out.name + ".work")
    _prepare_work_dir(work_dir, {"config": config.to_dict(), "init": init,
                                 "data_dir": ",".join(str(f.resolve()) for f in chips.folders)})
    monitor = monitored_metric(config, val_ds is not None)
    result = fit_model(model, train_ds, val_ds, validation_steps, config,
                       steps_per_epoch=steps_per_epoch, monitor=monitor,
                       callbacks=training_callbacks(work_dir, monitor, config.patience, callbacks),
                       progress=progress)
    restore_best(model, work_dir)
    result = whole_run(result, model, work_dir)

    density = fit_novelty(model, chips, crops, config, speckle)
    metadata = trained_bundle_metadata(model, chips, config, crops, result, val_ds, init=init,
                                       density=density)
    write_trained_bundle(model_out, model, metadata, work_dir, overwrite=overwrite)
    logger.info("wrote %s (%.0f s, best %s %.4f)", model_out, result.seconds, monitor, result.best)
    return {"model": str(model_out), "seconds": result.seconds, monitor: result.best,
            "epochs": metadata["training"]["epochs_run"]}


def read_chip_folders(
    folders: list[Path], weights: Sequence[float] | None, polarisations: Sequence[str] | None = None
) -> ChipFolders:
    """Read each folder's ``stats.json`` and combine them with the normalised ``weights``
    (for a network of optional ``polarisations``, folders of different polarisations).

    Raises:
        InputError: A folder has no training chips, the weights do not fit the folders, the
            folders disagree on bands or optical convention, or a folder's band is none of
            ``polarisations``.
    """
    from sar_colorizer.data.pipeline import polarisation_channels
    from sar_colorizer.data.sources import combine_stats, source_weights

    normalised = source_weights(weights, len(folders))
    folder_stats = [read_stats(folder) for folder in folders]
    for folder, stats in zip(folders, folder_stats, strict=True):
        if int(stats["n_chips"].get("train", 0)) == 0:
            raise InputError(f"{folder}: no training chips; check the preprocess settings")
        if polarisations is not None:
            polarisation_channels(stats.get("bands") or [], polarisations, folder)
    combined = combine_stats(folder_stats, normalised, polarisations)
    return ChipFolders(folders, normalised, folder_stats, combined,
                       presence=polarisations is not None)


def seed_run(seed: int, *, deterministic: bool) -> None:
    """Seed Python, numpy and TensorFlow; with ``deterministic``, also make TensorFlow's ops
    deterministic (slower)."""
    from sar_colorizer._tf import import_keras, import_tensorflow

    tf = import_tensorflow()
    import_keras().utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def check_batch_split(batch_size: int, replicas: int) -> None:
    """Raise :class:`InputError` unless the global batch splits evenly over the replicas."""
    if batch_size % replicas:
        raise InputError(
            f"batch size {batch_size} does not split over {replicas} replicas; "
            f"use a multiple of {replicas}"
        )


def training_crops(config: TrainConfig, chips: ChipFolders) -> list[int | None]:
    """Each folder's training crop: the configured one, never larger than the folder's chips."""
    from sar_colorizer.data.sources import source_crop

    multiple = config.downsample * 2**config.depth
    return [source_crop(config.crop_size, int(s["chip_size"]), multiple)
            for s in chips.folder_stats]


def training_dataset(
    chips: ChipFolders, crops: list[int | None], config: TrainConfig, speckle: SpeckleFilter
) -> tf.data.Dataset:
    """Endless, shuffled, augmented training batches, drawn from the folders with their weights
    (:func:`~sar_colorizer.data.sources.mixed_dataset`)."""
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.data.sources import mixed_dataset

    train_ds = mixed_dataset(
        [
            make_dataset(
                folder, split="train", batch_size=config.batch_size, crop_size=crop,
                speckle_filter=speckle, augment=True, shuffle=True,
                deterministic=config.deterministic, seed=config.seed, repeat=True,
                phase_jitter=config.phase_jitter, gain_jitter_db=config.gain_jitter_db,
                polarisations=config.polarisations, pol_dropout=config.pol_dropout,
            )
            for folder, crop in zip(chips.folders, crops, strict=True)
        ],
        chips.weights,
        config.seed,
        batch_size=config.batch_size,
    )
    if len(chips.folders) > 1:
        logger.info("training on %s", ", ".join(
            f"{folder} (weight {weight:.2f}, {s['n_chips']['train']} chips of {s['chip_size']} px)"
            for folder, weight, s in zip(chips.folders, chips.weights, chips.folder_stats,
                                         strict=True)))
    return train_ds


def validation_dataset(
    chips: ChipFolders, config: TrainConfig, speckle: SpeckleFilter
) -> tuple[tf.data.Dataset | None, int]:
    """The validation chips of every folder, whole, each folder's repeated to weigh as in
    training (:func:`~sar_colorizer.data.sources.validation_repeats`).

    Returns:
        The dataset (None when no folder has validation chips) and its number of batches.
    """
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.data.sources import validation_repeats

    val_ds = None
    validation_steps = 0
    n_val_chips = [int(s["n_chips"].get("val", 0)) for s in chips.folder_stats]
    repeats = validation_repeats(n_val_chips, chips.weights)
    for folder, n_folder_val, repeat in zip(chips.folders, n_val_chips, repeats, strict=True):
        if not n_folder_val:
            continue
        folder_val = make_dataset(
            folder, split="val", batch_size=config.batch_size, crop_size=None,
            speckle_filter=speckle, augment=False, shuffle=False,
            deterministic=config.deterministic, seed=config.seed,
            polarisations=config.polarisations,
        )
        if repeat > 1:
            # full batches of the repeated chips (few small sources: few model calls)
            folder_val = folder_val.unbatch().repeat(repeat).batch(config.batch_size)
        val_ds = folder_val if val_ds is None else val_ds.concatenate(folder_val)
        validation_steps += math.ceil(repeat * n_folder_val / config.batch_size)
    if val_ds is None:
        logger.warning("%s has no validation chips: the last epoch is kept, not the best",
                       chips.label)
    return val_ds, validation_steps


def compiled_model(
    strategy: tf.distribute.Strategy,
    config: TrainConfig,
    chips: ChipFolders,
    *,
    init: str | None,
    decay_steps: int,
) -> tuple[ColorizationUNet, TrainConfig]:
    """The network (new, or ``init``'s to fine-tune), compiled under ``strategy`` with the
    loss, metrics and a cosine-decayed Adam over ``decay_steps``.

    Returns:
        The model and the settings it is trained with: for a fine-tuned network its own
        architecture replaces ``config``'s.
    """
    from sar_colorizer._tf import import_keras

    keras_api = import_keras()
    with strategy.scope():
        model = build_model(config, chips.input_channels, init)
        if init:
            config = config_of_network(config, model)
        loss = build_loss(config, chips.stats)
        optimizer = keras_api.optimizers.Adam(
            _cosine_schedule(keras_api, config.learning_rate, decay_steps)
        )
        model.compile(optimizer=optimizer, loss=loss, metrics=build_metrics(config, loss))
    return model, config


def config_of_network(config: TrainConfig, model: ColorizationUNet) -> TrainConfig:
    """``config`` with the architecture of ``model`` (a network to fine-tune), validated.

    The bundle then records (and crops are checked against) the network actually trained,
    not the defaults.
    """
    net = model.get_config()
    config = dataclasses.replace(
        config, **{key: net[key] for key in ("depth", "base_filters", "downsample",
                                             "separable", "confidence_head", "novelty",
                                             "antialias")
                    if key in net}
    )
    config.validate()
    return config


def training_callbacks(
    work_dir: Path,
    monitor: str,
    patience: int,
    extra: list[keras.callbacks.Callback] | None = None,
) -> list[keras.callbacks.Callback]:
    """Atomic, verified checkpoints in ``work_dir`` (resume and keep the best), early stopping
    on ``monitor``, the CSV log and its learning curves after every epoch, then ``extra``."""
    from sar_colorizer._tf import import_keras
    from sar_colorizer.checkpoints import make_callbacks

    keras_api = import_keras()
    log_csv, curves_png = work_dir / TRAINING_LOG, work_dir / LEARNING_CURVES
    return [
        *make_callbacks(work_dir, monitor),
        keras_api.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=patience),
        keras_api.callbacks.CSVLogger(str(log_csv), append=True),
        keras_api.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: plot_learning_curves(log_csv, curves_png)
        ),
        *(extra or []),
    ]


def fit_model(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    validation_steps: int,
    config: TrainConfig,
    *,
    steps_per_epoch: int,
    monitor: str,
    callbacks: list[keras.callbacks.Callback],
    progress: bool,
) -> FitResult:
    """Run ``model.fit`` for ``config.epochs`` epochs (or until early stopping)."""
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        validation_steps=validation_steps if val_ds is not None else None,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles
        verbose=1 if progress else 2,
    )
    seconds = time.perf_counter() - start
    best = min(history.history.get(monitor, [float("nan")]) or [float("nan")])
    return FitResult(monitor, best, len(history.history.get("loss", [])), seconds)


def whole_run(result: FitResult, model: keras.Model, work_dir: Path) -> FitResult:
    """``result`` of a fit that may have resumed an interrupted run, made to describe the whole
    run: the epochs finished before the interruption count, and the best monitored value is
    the lowest of any session (kept in ``work_dir/best/``, whose weights were restored).

    A run interrupted after its last epoch but before its bundle was written resumes with
    nothing left to fit; its bundle still records the epochs and the best value it had.
    """
    from sar_colorizer.checkpoints import best_record

    resumed_after = int(getattr(model, "_initial_epoch", 0) or 0)
    best = result.best
    try:
        recorded = best_record(work_dir / "best")
    except ValueError:
        recorded = None  # restore_best has said so; this session's best stands
    if recorded is not None and recorded[0] == result.monitor and not recorded[1] >= best:
        best = recorded[1]
    return dataclasses.replace(
        result, best=best, epochs_run=resumed_after + result.epochs_run
    )


def trained_bundle_metadata(
    model: keras.Model,
    chips: ChipFolders,
    config: TrainConfig,
    crops: list[int | None],
    result: FitResult,
    val_ds: tf.data.Dataset | None,
    *,
    init: str | None,
    density: FeatureDensity | None = None,
) -> dict[str, Any]:
    """bundle.json of a trained model: :func:`bundle_metadata`, each folder's share when there
    are several, and for a confidence head the shrink (and with ``density`` the novelty weight,
    written into the model) chosen on ``val_ds``."""
    if init:
        warn_on_convention_change(init, chips.stats)
    metadata = bundle_metadata(chips.stats, config, model, data_dir=chips.label, init=init,
                               epochs_run=result.epochs_run,
                               best_monitor=(result.monitor, result.best), seconds=result.seconds,
                               tile_size=max((c for c in crops if c), default=None))
    if len(chips.folders) > 1:
        from sar_colorizer.bundle import portable_path

        metadata["training"]["source_folders"] = [
            {"data_dir": portable_path(folder), "weight": weight, "crop_size": crop,
             "n_chips": folder_stats["n_chips"]}
            for folder, weight, crop, folder_stats in zip(chips.folders, chips.weights, crops,
                                                          chips.folder_stats, strict=True)
        ]
    if getattr(model, "confidence_head", False):
        metadata["confidence"] = calibrate_confidence(model, val_ds, density, seed=config.seed)
    return metadata


def _prepare_work_dir(work_dir: Path, run: dict[str, Any]) -> None:
    """Keep checkpoints of an interrupted run only if it had the same settings and data.

    Resuming restores the weights, optimizer and epoch of the interrupted run; checkpoints of a
    run with other settings would silently continue the wrong training, so they are discarded.
    """
    run_file = work_dir / "run.json"
    if work_dir.exists():
        previous = json.loads(run_file.read_text()) if run_file.is_file() else None
        if previous == run:
            logger.info("resuming the interrupted run in %s", work_dir)
            return
        logger.warning("discarding checkpoints in %s: they come from a run with other settings",
                       work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    run_file.write_text(json.dumps(run, indent=2))


def fit_novelty(
    model: keras.Model,
    chips: ChipFolders,
    crops: list[int | None],
    config: TrainConfig,
    speckle: SpeckleFilter,
) -> FeatureDensity | None:
    """Fit the feature density of a model's novelty layer on the training chips (unaugmented,
    centre crops, each folder by its sampling weight); None for a model without one."""
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.novelty import fit_feature_density, has_novelty

    if not has_novelty(model):
        return None
    datasets = [
        make_dataset(folder, split="train", batch_size=config.batch_size, crop_size=crop,
                     speckle_filter=speckle, augment=False, shuffle=False, cache=False,
                     polarisations=config.polarisations)
        for folder, crop in zip(chips.folders, crops, strict=True)
    ]
    return fit_feature_density(model, datasets, chips.weights, seed=config.seed)


def calibrate_confidence(model: keras.Model, val_ds: tf.data.Dataset | None,
                         density: FeatureDensity | None = None, *,
                         seed: int = 0) -> dict[str, Any]:
    """Choose the shrink constant of :mod:`sar_colorizer.confidence` on the validation chips,
    together with the novelty weight when ``density`` is given (then written into the model).

    Runs the trained model over ``val_ds`` (never a test split), keeps up to 20,000 random
    valid pixels per batch and picks the constant(s) with the lowest AB RMSE
    (:func:`~sar_colorizer.confidence.choose_shrink`,
    :func:`~sar_colorizer.novelty.choose_novelty`). Without validation data the defaults are
    recorded, saying so (a fitted density then keeps weight 0: no data to size it on).

    Returns:
        bundle.json's ``confidence`` entry.
    """
    import numpy as np

    from sar_colorizer.confidence import DEFAULT_SHRINK_K, choose_shrink
    from sar_colorizer.novelty import (
        choose_novelty,
        density_record,
        set_novelty,
        validation_outputs,
    )

    if val_ds is None:
        logger.warning("no validation chips: the confidence shrink keeps its default k = %g%s",
                       DEFAULT_SHRINK_K, " and novelty stays off" if density else "")
        if density is not None:
            set_novelty(model, density, 0.0)
        return {"shrink_k": DEFAULT_SHRINK_K, "chosen_on": "default (no validation data)"}
    pixels = validation_outputs(model, val_ds, density, seed=seed)
    if density is None:
        choice = choose_shrink(pixels["true"], pixels["mean"], pixels["log_var"])
        logger.info("confidence shrink: k = %g chosen on %d validation pixels (AB RMSE %s)",
                    choice["shrink_k"], choice["n_pixels"],
                    ", ".join(f"k={k}: {v:.3f}" for k, v in choice["ab_rmse"].items()))
        return {**choice, "chosen_on": "validation chips"}
    choice = choose_novelty(pixels["true"], pixels["mean"], pixels["log_var"], pixels["novelty"])
    set_novelty(model, density, choice["novelty_weight"])
    k = choice["shrink_k"]
    logger.info("confidence: novelty weight %g (NLL %s), shrink k = %g (AB RMSE %.3f; %.3f "
                "without novelty at its best k) on %d validation pixels",
                choice["novelty_weight"], ", ".join(f"w={w}: {v:.3f}" for w, v in choice["nll"].items()),
                k, choice["ab_rmse"][f"{k:g}"], min(choice["ab_rmse_without_novelty"].values()),
                choice["n_pixels"])
    novelty = {**density_record(density), "weight": choice["novelty_weight"], "nll": choice["nll"],
               "share_of_validation_pixels": round(float(np.mean(pixels["novelty"] > 0)), 4),
               "ab_rmse_without_novelty": choice["ab_rmse_without_novelty"]}
    return {"shrink_k": k, "ab_rmse": choice["ab_rmse"], "n_pixels": choice["n_pixels"],
            "novelty": novelty, "chosen_on": "validation chips"}
