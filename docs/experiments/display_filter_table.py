#!/usr/bin/env python3
"""Candidate display filters for L: edge fidelity, ENL in flat areas and speed, on real images.

Each filter runs on the unfiltered relative intensity (SAR / its 99th percentile) of the three
Camargue samples (VV dB, 20 m), the six BigEarthNet samples (VH dB, 10 m) and the first Texas
test fragments (../shared/data/s1s2-la-texas, VH linear 8-bit, 10 m). Printed per group:

* edge fidelity of the filtered dB feature (:func:`sar_colorizer.visual_quality.edge_fidelity`;
  the reference is the 3 x 3 median of the SAR in dB, so filters that start with a 3 x 3
  median are flattered a little);
* ENL of the filtered intensity in the flattest 10 % of 16-px blocks
  (:func:`~sar_colorizer.visual_quality.equivalent_number_of_looks`);
* Mpx/s of the filter alone on this machine.

    python docs/experiments/display_filter_table.py            # 3 Texas fragments
    python docs/experiments/display_filter_table.py --texas 6
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
TEXAS = REPO / ".." / "shared" / "data" / "s1s2-la-texas"

Filter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Unfiltered relative intensity (0 at nodata) and the valid mask."""
    from sar_colorizer.inference import InputSpec, scene_statistics
    from sar_colorizer.io.raster import read_raster
    from sar_colorizer.sar.radiometry import Normalization, to_linear_power
    from sar_colorizer.sar.speckle import SpeckleFilter

    values, valid = read_raster(path, bands=1)
    input_spec = InputSpec(Normalization(), SpeckleFilter("none"))
    stats = scene_statistics(values, valid, input_spec)
    linear = np.asarray(to_linear_power(values, stats.input_scale, valid), dtype=np.float32)[0]
    relative = np.clip(np.where(valid, linear / np.float32(stats.references[0]), 0.0), 0, 1)
    return relative.astype(np.float32), valid


def feature(relative: np.ndarray) -> np.ndarray:
    from sar_colorizer.sar.radiometry import relative_to_feature

    return np.asarray(relative_to_feature(relative), dtype=np.float32)


def in_db(function: Callable[[np.ndarray], np.ndarray]) -> Filter:
    """A filter of the dB feature, returned as relative intensity."""

    def run(relative: np.ndarray, valid: np.ndarray) -> np.ndarray:
        filtered = np.clip(function(feature(relative)), 0, 1)
        return (10 ** ((filtered * 25.0 - 25.0) / 10.0)).astype(np.float32)

    return run


def speckle(name: str, window: int, looks: float = 1.0) -> Filter:
    from sar_colorizer.sar.speckle import SpeckleFilter, apply_speckle_filter

    spec = SpeckleFilter(name, window, looks)
    return lambda relative, valid: apply_speckle_filter(relative[None], spec)[0]


def display(name: str) -> Filter:
    from sar_colorizer.sar.display import apply_display_filter

    return lambda relative, valid: apply_display_filter(relative, valid, name)


def guided(radius: int, eps: float) -> Callable[[np.ndarray], np.ndarray]:
    from sar_colorizer.sar.display import _guided_self

    return lambda f: _guided_self(f, np.ones(f.shape, bool), radius, eps)


def nlm(h: float) -> Callable[[np.ndarray], np.ndarray]:
    def run(f: np.ndarray) -> np.ndarray:
        image = np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)
        return cv2.fastNlMeansDenoising(image, None, h, 5, 11).astype(np.float32) / 255

    return run


CANDIDATES: dict[str, Filter] = {
    "none": lambda relative, valid: relative,
    "boxcar 5x5 (the network's)": speckle("boxcar", 5),
    "median 5x5": speckle("median", 5),
    "Lee 7x7 (ENL 4.4)": speckle("lee", 7, 4.4),
    "refined Lee 7x7 (ENL 4.4)": speckle("refined_lee", 7, 4.4),
    "Gamma-MAP 7x7 (ENL 4.4)": speckle("gamma_map", 7, 4.4),
    "guided in dB, r 2, eps 0.002": in_db(guided(2, 0.002)),
    "bilateral in dB, 7 px (display 'bilateral')": display("bilateral"),
    "non-local means in dB, h 15": in_db(nlm(15)),
    "3x3 median + guided in dB (display 'median_guided')": display("median_guided"),
}


def images(n_texas: int) -> dict[str, list[Path]]:
    groups = {
        "Camargue": sorted((SAMPLES / "spatialist-s1-vv-db").glob("*.tif")),
        "BigEarthNet": sorted((SAMPLES / "bigearthnet-s1-s2" / "S1").glob("*/*_VH.tif")),
    }
    if TEXAS.is_dir():
        with open(TEXAS / "pairs.csv", newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
        groups["Texas"] = [TEXAS / row["sar"] for row in rows[:n_texas]]
    else:
        print(f"# {TEXAS} not found: Texas fragments skipped", file=sys.stderr)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texas", type=int, default=3)
    args = parser.parse_args()
    from sar_colorizer.visual_quality import edge_fidelity, equivalent_number_of_looks

    groups = {name: [load(p) for p in paths] for name, paths in images(args.texas).items()}
    names = list(groups)
    print(
        "| filter | "
        + " | ".join(f"edge {g}" for g in names)
        + " | "
        + " | ".join(f"ENL {g}" for g in names)
        + " | Mpx/s |"
    )
    print("|---" * (2 * len(names) + 2) + "|")
    for label, function in CANDIDATES.items():
        edges, enls, seconds, pixels = [], [], 0.0, 0
        for loaded in groups.values():
            e, n = [], []
            for relative, valid in loaded:
                start = time.perf_counter()
                out = function(relative, valid)
                seconds += time.perf_counter() - start
                pixels += relative.size
                out = np.where(valid, np.nan_to_num(out), 0).astype(np.float32)
                e.append(edge_fidelity(feature(out), relative, valid))
                n.append(equivalent_number_of_looks(out, relative, valid))
            edges.append(np.mean(e))
            enls.append(np.mean(n))
        print(
            f"| {label} | "
            + " | ".join(f"{v:.2f}" for v in edges)
            + " | "
            + " | ".join(f"{v:.0f}" for v in enls)
            + f" | {pixels / seconds / 1e6:.0f} |",
            flush=True,
        )
    load = os.getloadavg()[0]
    print(f"\nload average {load:.1f} on {os.cpu_count()} CPUs (speeds are this machine's)")
    print(shlex.join(["python", "docs/experiments/display_filter_table.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
