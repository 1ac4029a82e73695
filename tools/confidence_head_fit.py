#!/usr/bin/env python3
"""Fit a confidence head onto an existing bundle whose colour network stays frozen.

The shipped model predates the confidence head. This adds one
(:func:`sar_colorizer.training.with_confidence_head`), freezes every other layer (batch
normalisation included, so the AB output stays exactly the bundle's), trains only the head with
:class:`~sar_colorizer.losses.GaussianNLLChromaLoss` on the training chips, chooses the shrink
constant on the validation chips (:func:`sar_colorizer.training.calibrate_confidence`) and writes a
bundle. With the colour unchanged, ``sarcolor eval`` of the result with ``--no-mute-unsure``
scores exactly as the original model, and with the default muting shows what the confidence
adds, on the same colours:

    sarcolor preprocess ../shared/data/s1s2-la-texas /tmp/conf/chips --band-names VH
    python tools/confidence_head_fit.py /tmp/conf/chips /tmp/conf/default_head --steps 150
    sarcolor eval /tmp/conf/default_head ../shared/data/s1s2-la-texas --split test \
        --report /tmp/conf/texas_muted
    sarcolor eval /tmp/conf/default_head ../shared/data/s1s2-la-texas --split test \
        --no-mute-unsure --report /tmp/conf/texas_full

Prints the validation NLL before and after, the shrink constant chosen, and the command.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

HEAD_LAYERS = ("variance_hidden", "variance_logits")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("chips", type=Path, help="folder written by sarcolor preprocess")
    parser.add_argument("out", type=Path, help="bundle to write")
    parser.add_argument("--model", default="default", help="bundle to add the head to")
    parser.add_argument("--steps", type=int, default=150, help="training steps of the head")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from sar_colorizer._tf import import_keras
    from sar_colorizer.bundle import load_bundle, save_bundle
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.data.stats import read_stats
    from sar_colorizer.keras_metrics import ColourLoss, MaskedABRMSE, MaskedGaussianNLL
    from sar_colorizer.losses import GaussianNLLChromaLoss
    from sar_colorizer.train_bundle import output_description
    from sar_colorizer.training import (
        calibrate_confidence,
        with_confidence_head,
    )

    keras = import_keras()
    keras.utils.set_random_seed(args.seed)
    bundle = load_bundle(args.model)
    stats = read_stats(args.chips)
    model = with_confidence_head(bundle.model, True)
    for layer in model.layers:
        layer.trainable = layer.name in HEAD_LAYERS
    config = (bundle.metadata.get("training") or {}).get("config") or {}
    chroma_weight = float(config.get("chroma_weight", 0.5))
    loss = GaussianNLLChromaLoss(chroma_weight=chroma_weight)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss=loss,
                  metrics=[MaskedABRMSE(), MaskedGaussianNLL(),
                           ColourLoss(chroma_weight=chroma_weight)])
    speckle = bundle.speckle_filter
    train = make_dataset(args.chips, split="train", batch_size=args.batch_size,
                         crop_size=bundle.tile_size, speckle_filter=speckle, augment=True,
                         shuffle=True, seed=args.seed, repeat=True)
    n_val = int(stats["n_chips"].get("val", 0))
    if not n_val:
        sys.exit(f"{args.chips} has no validation chips: the shrink is chosen on them")
    val = make_dataset(args.chips, split="val", batch_size=args.batch_size, crop_size=None,
                       speckle_filter=speckle, augment=False, shuffle=False, seed=args.seed)
    steps = math.ceil(n_val / args.batch_size)

    before = model.evaluate(val, steps=steps, verbose=0, return_dict=True)
    started = time.perf_counter()
    model.fit(train, epochs=1, steps_per_epoch=args.steps, verbose=2)
    seconds = time.perf_counter() - started
    after = model.evaluate(val, steps=steps, verbose=0, return_dict=True)
    confidence = calibrate_confidence(model, val, seed=args.seed)

    metadata = {k: v for k, v in bundle.metadata.items() if k != "model_config"}
    metadata["outputs"] = output_description(model)
    metadata["confidence"] = {
        **confidence,
        "head_fit": {"on": str(args.model), "chips": str(args.chips), "steps": args.steps,
                     "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                     "colour_network": "frozen"},
    }
    for layer in model.layers:
        layer.trainable = True
    save_bundle(args.out, model, metadata, overwrite=args.overwrite)

    print("\n# Confidence head fitted on a frozen colour network\n")
    print(f"model {args.model}; {args.steps} steps of {args.batch_size} chips in {seconds:.0f} s")
    print("| validation chips | AB RMSE | NLL (CIELAB units) | colour loss |")
    print("|---|---|---|---|")
    for name, scores in (("before (head untrained)", before), ("after", after)):
        print(f"| {name} | {scores['ab_rmse']:.3f} | {scores['nll']:.3f} | "
              f"{scores['colour_loss']:.5f} |")
    print(f"\nshrink k = {confidence['shrink_k']:g} (validation AB RMSE by k: "
          + ", ".join(f"{k}: {v:.3f}" for k, v in confidence["ab_rmse"].items()) + ")")
    print(f"wrote {args.out}\ncommand: python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
