#!/usr/bin/env python3
"""Fit the novelty layer onto an existing bundle with a confidence head; its colour stays as is.

``sarcolor train`` fits the novelty layer at the end of every run (:mod:`sar_colorizer.novelty`).
This runs the same steps on a bundle trained before the layer existed: add the layer
(:func:`sar_colorizer.training.with_heads`, neutral until fitted), fit the feature density on
the training chips (:func:`sar_colorizer.training.fit_novelty`, each folder by its sampling
weight) and choose the novelty weight and the shrink constant on the validation chips
(:func:`sar_colorizer.training.calibrate_confidence`). The colour network is not touched:
``sarcolor eval --no-mute-unsure`` scores the result exactly as the original bundle.

    make train-default                      # or only its two preprocess lines
    python tools/fit_novelty.py runs/chips_la runs/chips_ben /tmp/nov/default \\
        --model default --config models/default.toml

Prints the fitted density, the validation negative log-likelihood and AB RMSE by novelty weight,
the choice, and the command.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("chips", type=Path, nargs="+",
                        help="chip folder(s) written by sarcolor preprocess (the training data)")
    parser.add_argument("out", type=Path, help="bundle to write")
    parser.add_argument("--model", default="default", help="bundle to add the layer to")
    parser.add_argument("--config", type=Path, default=None,
                        help="training TOML (source weights, crop size, speckle filter); "
                             "default: the bundle's recorded training settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from sar_colorizer.bundle import load_bundle, portable_path, save_bundle
    from sar_colorizer.sar.speckle import SpeckleFilter
    from sar_colorizer.train_bundle import output_description
    from sar_colorizer.training import (
        TrainConfig,
        calibrate_confidence,
        fit_novelty,
        read_chip_folders,
        training_crops,
        validation_dataset,
        with_heads,
    )

    bundle = load_bundle(args.model)
    if not bundle.has_confidence:
        sys.exit(f"{args.model} has no confidence head: the novelty raises its variance")
    recorded = (bundle.metadata.get("training") or {}).get("config") or {}
    config = (TrainConfig.from_toml(args.config) if args.config
              else TrainConfig.from_dict({k: v for k, v in recorded.items()
                                          if k in TrainConfig.__dataclass_fields__}))
    chips = read_chip_folders(list(args.chips), config.source_weights)
    speckle = SpeckleFilter(config.speckle_filter, config.speckle_window, config.speckle_looks)
    crops = training_crops(config, chips)
    val_ds, _ = validation_dataset(chips, config, speckle)
    if val_ds is None:
        sys.exit("the chip folders have no validation chips: the novelty weight is chosen on them")

    model = with_heads(bundle.model, True, True)
    density = fit_novelty(model, chips, crops, config, speckle)
    confidence = calibrate_confidence(model, val_ds, density, seed=args.seed)
    metadata = {k: v for k, v in bundle.metadata.items() if k != "model_config"}
    metadata["outputs"] = output_description(model)
    metadata["confidence"] = {**confidence, "novelty_fit": {
        "on": portable_path(args.model), "chips": [portable_path(c) for c in args.chips],
        "colour_network": "unchanged"}}
    save_bundle(args.out, model, metadata, overwrite=args.overwrite)

    novelty = confidence["novelty"]
    print("\n# Novelty layer fitted on a trained bundle\n")
    print(f"model {args.model}; feature density of {novelty['features']} decoder features over "
          f"{novelty['n_pixels']} training pixels (typical d2 {novelty['typical_d2']:.4g}); "
          f"{100 * novelty['share_of_validation_pixels']:.0f}% of validation pixels beyond it\n")
    print("| novelty weight | validation NLL |")
    print("|---|---|")
    for weight, nll in novelty["nll"].items():
        chosen = " (chosen)" if float(weight) == novelty["weight"] else ""
        print(f"| {weight}{chosen} | {nll:.4f} |")
    k = confidence["shrink_k"]
    best_without = min(novelty["ab_rmse_without_novelty"].values())
    print(f"\nshrink k = {k:g}: validation AB RMSE {confidence['ab_rmse'][f'{k:g}']:.3f} "
          f"(without novelty, at its best k: {best_without:.3f})")
    print(f"wrote {args.out}\ncommand: python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
