"""Compare trained model variants: validation quality, parameters, FLOPs and network speed.

Reads bundles written by ``sarcolor train`` (their ``training_log.csv`` holds the validation AB
RMSE per epoch on validation chips carved out of the training split) and times each network as
``predict`` runs it (batch normalisation folded, low-resolution output upsampled by OpenCV) on
tiles of its training size, about a megapixel per call, on this machine. With ``--val-pairs`` (the preprocess folder, whose
``pairs.csv`` lists the source images by split, or any manifest), each model also colours the
whole validation images as ``predict`` would (tiles of its training size) and is scored beside
the best baseline on them: that column is the one to choose by.

    python docs/experiments/variants_table.py runs/bundle_a runs/bundle_b ... --val-pairs runs/chips256
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
    """Megapixels per second of the network alone (input pixels, full resolution), called
    through predict's runner."""
    import numpy as np

    from sar_colorizer.inference.runner import ModelRunner

    runner = ModelRunner.for_model(model)
    x = np.random.default_rng(0).random((batch, tile, tile, 1), dtype=np.float32)
    runner(x)
    start = time.perf_counter()
    for _ in range(repeats):
        runner(x)
    return batch * tile * tile * repeats / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--tile", type=int, default=None,
                        help="tile side for the speed column (default: each model's training "
                             "tile size)")
    parser.add_argument("--batch", type=int, default=None,
                        help="tiles per call (default: predict's, about a megapixel)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--val-pairs", type=Path, default=None,
                        help="pairs to score whole images on: a manifest, or the preprocess "
                             "folder (its pairs.csv)")
    parser.add_argument("--split", default="val",
                        help="only the pairs of this split (default: val)")
    args = parser.parse_args()
    pairs = []
    if args.val_pairs is not None:
        from sar_colorizer.data.layouts import find_pairs
        from sar_colorizer.evaluation import select_pairs

        pairs = select_pairs(find_pairs(args.val_pairs), split=args.split)

    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import BATCH_PIXELS
    from sar_colorizer.nets.unet import count_flops_per_pixel

    print(f"command: python {' '.join(sys.argv)}\n")
    print("| variant | downsample | base filters | separable | rarity weights | parameters "
          "| crop px | kFLOP/px | network Mpx/s | best val chip AB RMSE (epoch / run) "
          "| val images AB RMSE / best baseline | val chroma ratio | training time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in args.bundles:
        bundle = load_bundle(path)
        config = bundle.metadata["model_config"]
        train_config = bundle.metadata["training"]["config"]
        value, epoch, epochs = best_validation(path)
        tile = args.tile or bundle.tile_size
        batch = args.batch or max(1, BATCH_PIXELS // tile**2)
        flops = count_flops_per_pixel(bundle.model, tile) / 1e3
        speed = network_speed(bundle.model, tile, batch, args.repeats)
        minutes = bundle.metadata["training"]["seconds"] / 60
        images, chroma = "-", "-"
        if pairs:
            from tile_size_effect import score_tiles

            scores = score_tiles(bundle, pairs, [bundle.tile_size])
            best = min(v[0] for k, v in scores.items() if k.startswith("baseline"))
            rmse, ratio = scores[f"tiles of {bundle.tile_size} px"]
            images, chroma = f"{rmse:.2f} / {best:.2f} = {rmse / best:.3f}", f"{ratio:.3f}"
        print(f"| {path.name} | {config['downsample']} | {config['base_filters']} "
              f"| {config['separable']} | {train_config['rarity_weighting']} "
              f"| {bundle.model.count_params():,} | {bundle.tile_size} | {flops:.1f} | {speed:.2f} "
              f"| {value:.2f} ({epoch} / {epochs}) | {images} | {chroma} | {minutes:.0f} min |")
    tiles = f"{args.tile} px" if args.tile else "each model's training size"
    batch = args.batch or "about 1 Mpx"
    print(f"\nnetwork speed on tiles of {tiles}, {batch} per call; validation chip AB "
          "RMSE in CIELAB units during training; val images: whole validation fragments coloured "
          "with tiles of the model's training size, mean AB RMSE over images; training times "
          "include other work sharing the 2 cores.")


if __name__ == "__main__":
    main()
