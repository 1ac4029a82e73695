#!/usr/bin/env python3
"""How the tile size used at inference changes a model's colours.

A U-Net with zero padding learns, during training, where the borders of its training crops
are; on larger inputs its deep layers see context they never saw. This script scores one model
on the same image pairs with several inference tile sizes (and the whole image at once), beside
the mean-colour and linear-regression baselines, and prints a markdown table of mean AB RMSE
and chroma ratio (as ``sarcolor eval`` computes them) with each setting's ratio to the best
baseline.

    python docs/experiments/tile_size_effect.py runs/default runs/val_pairs.csv --tiles 256,512,whole

PAIRS is anything ``sarcolor eval`` accepts (a folder of pairs or a CSV manifest).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="model bundle directory, or 'default'")
    parser.add_argument("pairs", type=Path, help="folder of pairs or CSV manifest")
    parser.add_argument("--split", default=None, help="only pairs of this split")
    parser.add_argument(
        "--tiles",
        default="256,512,whole",
        help="comma-separated tile sizes in pixels; 'whole' runs each image at once",
    )
    parser.add_argument(
        "--overlap", type=int, default=None, help="tile overlap (default: predict's)"
    )
    return parser.parse_args()


def score_tiles(
    bundle, pairs, tiles: list[int | None], overlap: int | None = None
) -> dict[str, tuple[float, float]]:
    """Mean AB RMSE and chroma ratio over ``pairs`` for each inference tile size.

    Keys are ``"tiles of N px"`` (``"whole image"`` for None) and ``"baseline: NAME"`` for the
    mean-colour and linear-regression baselines, scored on the same pixels.
    """
    from sar_colorizer.baselines import BASELINE_NAMES
    from sar_colorizer.data.pairs import read_pair
    from sar_colorizer.evaluation import bundle_baselines, optical_to_lab
    from sar_colorizer.inference import colorize_array
    from sar_colorizer.metrics import ab_rmse, chroma_ratio

    baselines = bundle_baselines(bundle)
    scores: dict[str, list[tuple[float, float]]] = {}
    for pair in pairs:
        arrays = read_pair(pair)
        scale = getattr(arrays, "input_scale", None) or "auto"
        optical_lab = optical_to_lab(arrays.optical_rgb)
        valid = np.asarray(arrays.valid, dtype=bool)
        result: dict = {}
        for tile in tiles:
            result = colorize_array(
                bundle,
                arrays.sar,
                arrays.valid,
                input_scale=scale,
                tile_size=tile,
                overlap=overlap,
            )
            ab = np.asarray(result["ab"], dtype=np.float64)
            key = "whole image" if tile is None else f"tiles of {tile} px"
            scores.setdefault(key, []).append(
                (ab_rmse(ab, optical_lab[..., 1:], valid), chroma_ratio(ab, optical_lab, valid))
            )
        feature = np.nan_to_num(np.where(valid, result["feature"], np.nan))
        for name in BASELINE_NAMES:
            if name == "no_colour":
                continue
            ab = baselines.predict_ab(name, feature)
            scores.setdefault(f"baseline: {name}", []).append(
                (ab_rmse(ab, optical_lab[..., 1:], valid), chroma_ratio(ab, optical_lab, valid))
            )
    return {
        key: (float(np.mean([v[0] for v in values])), float(np.mean([v[1] for v in values])))
        for key, values in scores.items()
    }


def main() -> int:
    args = parse_args()
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.data.layouts import find_pairs
    from sar_colorizer.evaluation import select_pairs

    tiles: list[int | None] = [
        None if item.strip() == "whole" else int(item) for item in args.tiles.split(",")
    ]
    bundle = load_bundle(args.model)
    pairs = select_pairs(find_pairs(args.pairs), split=args.split)
    started = time.perf_counter()
    scores = score_tiles(bundle, pairs, tiles, args.overlap)
    best = min(value[0] for key, value in scores.items() if key.startswith("baseline"))
    print(f"`{' '.join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    print(f"({len(pairs)} image pairs, model trained on {bundle.tile_size}-px tiles, "
          f"overlap {args.overlap or 'default'}, {time.perf_counter() - started:.0f} s)\n")
    print("| inference | AB RMSE | / best baseline | chroma ratio |")
    print("|---|---:|---:|---:|")
    for key, (rmse, chroma) in scores.items():
        print(f"| {key} | {rmse:.3f} | {rmse / best:.3f} | {chroma:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
