"""What a training run writes into its bundle: ``bundle.json``'s entries and the run's files.

:func:`bundle_metadata` records everything ``predict`` and ``eval`` need to treat new input as
the training chips were treated; :func:`write_trained_bundle` saves the bundle with the
training log and learning curves beside the model.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.train_config import TrainConfig
from sar_colorizer.version import __version__

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

__all__ = [
    "LEARNING_CURVES", "TRAINING_LOG", "bundle_metadata", "output_description",
    "warn_on_convention_change", "write_trained_bundle",
]

#: Files the training run writes in its work folder and copies into the bundle.
TRAINING_LOG = "training_log.csv"
LEARNING_CURVES = "learning_curves.png"



def warn_on_convention_change(init: str, stats: dict[str, Any]) -> None:
    """Warn when the bundle to fine-tune learned another optical convention than the chips'."""
    from sar_colorizer.bundle import read_metadata

    before = read_metadata(init).get("optical_convention", "as-is")
    if before != stats.get("optical_convention", "as-is"):
        logger.warning("the model to fine-tune learned the %r optical convention; the chips "
                       "are in %r, which the new bundle records", before,
                       stats.get("optical_convention", "as-is"))


def write_trained_bundle(
    model_out: Path,
    model: keras.Model,
    metadata: dict[str, Any],
    work_dir: Path,
    *,
    overwrite: bool,
) -> None:
    """Save the bundle with the run's training log and learning curves beside the model, then
    remove the work folder (its checkpoints are no longer needed)."""
    from sar_colorizer.bundle import save_bundle

    save_bundle(model_out, model, metadata, overwrite=overwrite)
    for extra in (work_dir / TRAINING_LOG, work_dir / LEARNING_CURVES):
        if extra.exists():
            shutil.copy2(extra, model_out / extra.name)
    shutil.rmtree(work_dir, ignore_errors=True)


def bundle_metadata(
    stats: dict[str, Any],
    config: TrainConfig,
    model: keras.Model,
    *,
    data_dir: Path,
    init: str | None,
    epochs_run: int,
    best_monitor: tuple[str, float],
    seconds: float,
    tile_size: int | None = None,
) -> dict[str, Any]:
    """Everything ``predict`` and ``eval`` need to reproduce the training input handling."""
    from sar_colorizer.bundle import DEFAULT_PIXEL_SIZE, portable_path
    from sar_colorizer.sar.speckle import SpeckleFilter

    speckle = SpeckleFilter(config.speckle_filter, config.speckle_window, config.speckle_looks)
    bands = list(stats.get("bands") or ["band1"])
    optional = bool(getattr(model, "presence", False))
    return {
        "format_version": 1,
        "package_version": __version__,
        "bands": bands,
        # With optional bands the network takes one SAR channel per band (0 where the input
        # lacks it), then one 0/1 presence channel per band (Bundle.optional_bands).
        **({"optional_bands": True} if optional else {}),
        "input_channels": 2 * len(bands) if optional else len(bands),
        "input_scale_trained": stats.get("input_scale"),
        # How optical images were rendered as the RGB the model learned (and eval scores against).
        "optical_convention": stats.get("optical_convention", "as-is"),
        "normalization": stats["normalization"],
        "speckle_filter": speckle.to_dict(),
        "tile_multiple": int(model.tile_multiple),
        # predict and eval tile at the size the network was trained on (Bundle.tile_size)
        "tile_size": int(tile_size or config.crop_size or stats.get("chip_size")
                         or model.tile_multiple),
        # Ground pixel size of the training images: inference resamples other pixel sizes to
        # it. Chips record none (PNG pairs carry no georeference); Sentinel-1 IW GRD and
        # Sentinel-2 visible bands, the data this tool is for, are 10 m.
        "pixel_size": float(stats.get("pixel_size") or DEFAULT_PIXEL_SIZE),
        "model_config": model.get_config(),
        "outputs": output_description(model),
        "tone": {"method": "matched", "l_quantiles": stats["l_quantiles"]},
        "baselines": {
            "mean_colour": stats["mean_colour"],
            "linear_regression": stats["linear_regression"],
        },
        "training": {
            # Folder names only: a bundle travels (the shipped one to every user).
            "data_dir": ",".join(portable_path(part) for part in str(data_dir).split(",")),
            "n_chips": stats["n_chips"],
            "n_images": stats.get("n_images"),
            "chip_size": stats.get("chip_size"),
            "sources": stats.get("sources"),
            "config": config.to_dict(),
            "init": init,
            "epochs_run": epochs_run,
            "best": {"metric": best_monitor[0], "value": best_monitor[1]},
            "seconds": round(seconds, 1),
            "date": time.strftime("%Y-%m-%d"),
        },
    }


def output_description(model: Any) -> dict[str, Any]:
    """bundle.json's ``outputs``: what each channel of the network's output is.

    Bundles without this entry (trained before the confidence head) output normalised AB only;
    :attr:`sar_colorizer.bundle.Bundle.output_channels` reads it.
    """
    channels = list(getattr(model, "output_names_by_channel", ("a", "b")))
    description: dict[str, Any] = {
        "channels": channels,
        "ab": "normalised CIELAB a*, b* (multiply by 110), channels a and b",
    }
    if "log_var_a" in channels:
        novelty = (
            "; it includes the novelty term (weight x novelty of the decoder features under "
            "the training data's density, sar_colorizer.novelty)"
        ) if getattr(model, "novelty", False) else ""
        description["log_variance"] = (
            "natural log of the predicted variance of normalised a*, b* (Gaussian around the "
            "mean; standard deviation in CIELAB units = 110 * exp(log_var / 2)), channels "
            f"log_var_a and log_var_b{novelty}"
        )
    return description
