"""Compare trained model variants: validation quality, parameters, FLOPs and network speed.

Reads bundles written by ``sarcolor train`` (their ``training_log.csv`` holds the validation AB
RMSE per epoch, on validation fragments carved out of the training split) and times each
network on 512 x 512 tiles on this machine.

    python bench/variants_table.py /path/to/bundle_a /path/to/bundle_b ...
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path


def best_validation(bundle: Path) -> tuple[float, int, int]:
    """Best validation AB RMSE, the epoch it was reached, and the number of epochs run."""
    with (bundle / "training_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    scored = [(float(r["val_ab_rmse"]), int(r["epoch"]) + 1) for r in rows if r.get("val_ab_rmse")]
    value, epoch = min(scored)
    return value, epoch, len(rows)


def network_speed(model, tile: int, batch: int, repeats: int) -> float:
    """Megapixels per second of the network alone (input pixels, full resolution)."""
    import numpy as np
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).random((batch, tile, tile, 1), dtype=np.float32))
    forward(x).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        forward(x).numpy()
    return batch * tile * tile * repeats / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.nets.unet import count_flops_per_pixel

    print(f"command: python {' '.join(sys.argv)}\n")
    print("| variant | downsample | base filters | separable | rarity weights | parameters "
          "| kFLOP/px | network Mpx/s | best val AB RMSE (epoch / run) | training time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in args.bundles:
        bundle = load_bundle(path)
        config = bundle.metadata["model_config"]
        train_config = bundle.metadata["training"]["config"]
        value, epoch, epochs = best_validation(path)
        flops = count_flops_per_pixel(bundle.model, args.tile) / 1e3
        speed = network_speed(bundle.model, args.tile, args.batch, args.repeats)
        minutes = bundle.metadata["training"]["seconds"] / 60
        print(f"| {path.name} | {config['downsample']} | {config['base_filters']} "
              f"| {config['separable']} | {train_config['rarity_weighting']} "
              f"| {bundle.model.count_params():,} | {flops:.1f} | {speed:.2f} "
              f"| {value:.2f} ({epoch} / {epochs}) | {minutes:.0f} min |")
    print(f"\ntiles {args.tile} px, batch {args.batch}; validation AB RMSE in CIELAB units on "
          "256-px validation chips; training times include other work sharing the 2 cores.")


if __name__ == "__main__":
    main()
