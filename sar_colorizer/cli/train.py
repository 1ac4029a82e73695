"""``sarcolor train``: train a colorization model on chips written by ``sarcolor preprocess``."""

from __future__ import annotations

from typing import Any

import click

from sar_colorizer.cli.options import (
    overwrite_option,
    progress_enabled,
    seed_option,
    speckle_filter_option,
    speckle_window_option,
)
from sar_colorizer.train_config import STRATEGIES, TrainConfig


@click.command("train")
@click.argument("data_dirs", metavar="DATA_DIR...", nargs=-1, required=True,
                type=click.Path(file_okay=False))
@click.argument("model_out", type=click.Path())
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file with training settings (top level or a [train] table).")
@click.option("--epochs", type=int, help="Maximum number of epochs.  [default: 30]")
@click.option("--batch-size", type=int, help="Global batch size.  [default: 16]")
@click.option("--crop-size", type=int, help="Random crop of the chips in px; smaller chips are used "
              "whole.  [default: 256]")
@click.option("--learning-rate", type=float, help="Adam learning rate.  [default: 0.002]")
@click.option("--depth", type=int, help="U-Net depth.  [default: 4]")
@click.option("--base-filters", type=int, help="Filters of the first U-Net level.  [default: 16]")
@click.option("--downsample", type=click.Choice(["1", "2", "4"]),
              help="Resolution divisor of the network input.  [default: 2]")
@speckle_filter_option("before the network.", from_config=True)
@speckle_window_option(from_config=True)
@click.option("--chroma-weight", type=float, help="Lambda of the chroma loss term.  [default: 0.5]")
@click.option("--confidence-head/--no-confidence-head", default=None,
              help="Also predict the per-pixel uncertainty of the colour (a variance head "
                   "trained with a Gaussian NLL).  [default: on]")
@click.option("--novelty/--no-novelty", default=None,
              help="With the confidence head, also raise the uncertainty where the land looks "
                   "unlike the training data (a density of the network's features, fitted "
                   "after training; its weight chosen on the validation chips).  [default: on]")
@click.option("--source-weights", metavar="W1,W2,...",
              help="Sampling weight of each DATA_DIR when training on several (normalised).  "
                   "[default: equal]")
@click.option("--steps-per-epoch", type=int, help="Batches per epoch.  [default: one pass]")
@click.option("--patience", type=int, help="Early-stopping patience in epochs.  [default: 8]")
@seed_option("of the weights, shuffling and augmentation.", from_config=True)
@click.option("--deterministic", is_flag=True, default=None,
              help="Bit-identical input pipeline and ops (slower).")
@click.option("--strategy", type=click.Choice(STRATEGIES),
              help="tf.distribute strategy: one device, all local GPUs, or several workers "
                   "(TF_CONFIG).  [default: default]")
@click.option("--init", "init", metavar="PATH|default",
              help="Fine-tune from a model bundle, or 'default' for the shipped model.")
@overwrite_option
@click.pass_context
def train(ctx: click.Context, data_dirs: tuple[str, ...], model_out: str, config_file: str | None,
          init: str | None, overwrite: bool, **flags: Any) -> None:
    """Train a model on DATA_DIR (from 'sarcolor preprocess'); write the bundle MODEL_OUT.

    Several DATA_DIRs train on all of them: each batch comes from one folder, drawn with
    --source-weights, so a small dataset is not drowned by a large one; validation uses the
    validation images of every folder, weighted the same way. The optical colour convention
    comes from the chips.

    An interrupted run resumes from its last finished epoch when the same command is run again
    (checkpoints live in MODEL_OUT.work/ until the bundle is written).
    """
    from sar_colorizer.training import train as run_training

    overrides = {k: v for k, v in flags.items() if v is not None}
    if "downsample" in overrides:
        overrides["downsample"] = int(overrides["downsample"])
    if "source_weights" in overrides:
        try:
            overrides["source_weights"] = [float(w) for w in overrides["source_weights"].split(",")]
        except ValueError:
            raise click.BadParameter(f"{overrides['source_weights']!r} is not a list of numbers "
                                     "(e.g. 0.5,0.5)", param_hint="--source-weights") from None
    config = (TrainConfig.from_toml(config_file, **overrides) if config_file
              else TrainConfig.from_dict(overrides))
    summary = run_training(list(data_dirs), model_out, config, init=init, overwrite=overwrite,
                           progress=progress_enabled(ctx))
    click.echo(f"wrote {summary['model']} after {summary['epochs']} epochs "
               f"in {summary['seconds']:.0f} s")
