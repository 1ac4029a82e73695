"""Throughput of the speckle filters, numpy/OpenCV and TensorFlow, against a plain box filter.

Prints a markdown table: megapixels per second of every filter in both implementations, and
its time relative to ``scipy.ndimage.uniform_filter`` with the same window on the same image
(the reference; target for the Lee family: at most 3x the reference's time), then the command
that made it. Each filter is timed alternately with the reference, and its ratio uses the
reference's time from the same runs, so that a load change on a shared machine moves both.

    python bench/speckle_bench.py                       # 4096 x 4096, window 7
    python bench/speckle_bench.py --size 1024 --repeat 2 --no-tf    # quick run
    python bench/speckle_bench.py --clock cpu --no-tf    # work per pixel, robust to load

The image is simulated 4.4-look gamma speckle (Sentinel-1 IW GRDH) over a scene of blocks and
edges, with slanted nodata (NaN) wedges at the left and right in every row as at the swath
edges of a GRD scene, float32, linear power. Times are the best of ``--repeat``
runs after one warm-up; the TensorFlow filters run inside a ``tf.function`` with dynamic
height and width, on 512 x 512 chips in batches (``--tf-tile``), as in ``tf.data``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy
import scipy.ndimage as ndi

from sar_colorizer.sar.speckle import SPECKLE_FILTERS, SpeckleFilter, apply_speckle_filter

LEE_FAMILY = ("lee", "refined_lee")
TARGET_RATIO = 3.0


def simulated_scene(size: int, looks: float, seed: int = 0) -> np.ndarray:
    """Blocks of different backscatter and a bright line, with gamma speckle and NaN wedges."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.005, 0.3, size=(16, 16)).astype(np.float32)
    scene = np.kron(blocks, np.ones((size // 16 + 1, size // 16 + 1), np.float32))[:size, :size]
    scene[size // 3 : size // 3 + 3, :] = 2.0
    speckle = rng.gamma(looks, 1.0 / looks, size=(size, size)).astype(np.float32)
    image = scene * speckle
    # Nodata wedges at the left and right, as the slanted swath edges of a GRD scene in map
    # geometry: every row has nodata.
    rows, cols = np.mgrid[0:size, 0:size]
    wedge = size // 16
    image[cols < wedge - rows * wedge // size] = np.nan
    image[cols >= size - 1 - rows * wedge // size] = np.nan
    return image


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def timed(function: Callable[[], object]) -> float:
    start = clock()
    function()
    return clock() - start


def best_times(
    function: Callable[[], object], reference: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Best wall times of ``function`` and of ``reference`` over ``repeat`` alternating runs,
    after one warm-up of each: on a shared machine both see the same load."""
    function()
    reference()
    times, reference_times = [], []
    for _ in range(repeat):
        reference_times.append(timed(reference))
        times.append(timed(function))
    return min(times), min(reference_times)


def tensorflow_runner(
    image: np.ndarray, spec: SpeckleFilter, tile: int, batch_pixels: int
) -> Callable[[], object]:
    """A callable running the in-graph filter over ``image``, results fetched to the host.

    With ``tile`` > 0 the image is cut into tile x tile chips fed in batches of about
    ``batch_pixels`` pixels, as ``tf.data`` feeds a model (each chip's edge is an image edge
    for the filter); with 0 the whole image is one (1, H, W, 1) tensor.
    """
    from sar_colorizer.sar.speckle_tf import speckle_filter_tf, tf

    graph = tf.function(
        lambda x: speckle_filter_tf(x, spec),
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)],
    )
    if tile <= 0:
        batches = [tf.constant(image[np.newaxis, :, :, np.newaxis])]
    else:
        rows, cols = image.shape[0] // tile, image.shape[1] // tile
        chips = image[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile)
        chips = chips.transpose(0, 2, 1, 3).reshape(-1, tile, tile, 1)
        per_batch = max(1, batch_pixels // (tile * tile))
        batches = [
            tf.constant(chips[start : start + per_batch])
            for start in range(0, len(chips), per_batch)
        ]
    return lambda: [graph(batch).numpy() for batch in batches]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--window", type=int, default=7, help="filter window (odd)")
    parser.add_argument("--looks", type=float, default=4.4, help="number of looks (ENL)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    parser.add_argument(
        "--tf-repeat", type=int, default=1, help="timed runs of each TensorFlow filter"
    )
    parser.add_argument(
        "--filters", default=",".join(SPECKLE_FILTERS), help="comma-separated filter names"
    )
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow filters")
    parser.add_argument(
        "--tf-tile",
        type=int,
        default=512,
        help="run TensorFlow on tile x tile chips in batches, as tf.data feeds a model "
        "(0: the whole image as one tensor; on CPU, tensors that large are slowed down by "
        "fresh memory on every operation)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time with all threads (what a user waits); cpu: process CPU time "
        "with OpenCV and TensorFlow on one thread, the work itself, robust to other load",
    )
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    if args.clock == "cpu":
        import cv2

        cv2.setNumThreads(1)
        if not args.no_tf:
            from sar_colorizer.sar.speckle_tf import tf

            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)

    image = simulated_scene(args.size, args.looks)
    megapixels = image.size / 1e6

    def reference() -> object:
        return ndi.uniform_filter(image, size=args.window)

    rows = []
    reference_seconds = []
    names = [name.strip() for name in args.filters.split(",") if name.strip()]
    for name in names:
        spec = SpeckleFilter(name, args.window, args.looks)
        seconds, ref_seconds = best_times(
            lambda spec=spec: apply_speckle_filter(image, spec), reference, args.repeat
        )
        reference_seconds.append(ref_seconds)
        rows.append(
            (
                name,
                "numpy",
                megapixels / seconds,
                megapixels / ref_seconds,
                seconds / ref_seconds,
                "",
            )
        )
        if args.no_tf:
            continue
        # The median's window patches take window**2 times the batch's memory.
        batch_pixels = 1 << 20 if name == "median" else 1 << 22
        tile = args.tf_tile
        if tile > 0:
            note = f"{tile}^2 chips, {max(1, batch_pixels // tile**2)} per batch"
        else:
            note = "whole image as one tensor"
        seconds, ref_seconds = best_times(
            tensorflow_runner(image, spec, tile, batch_pixels), reference, max(1, args.tf_repeat)
        )
        reference_seconds.append(ref_seconds)
        tf_pixels = image.size if tile <= 0 else (args.size // tile * tile) ** 2
        ratio = seconds / ref_seconds * (image.size / tf_pixels)
        rows.append(
            (name, "tensorflow", tf_pixels / 1e6 / seconds, megapixels / ref_seconds, ratio, note)
        )
    rows.insert(
        0,
        (
            f"reference: scipy.ndimage.uniform_filter(size={args.window})",
            "scipy",
            megapixels / min(reference_seconds, default=float("nan")),
            megapixels / min(reference_seconds, default=float("nan")),
            1.0,
            "best of all its runs",
        ),
    )

    threads = "one thread, process CPU time" if args.clock == "cpu" else "wall-clock time"
    print(
        f"\nSpeckle filters on a {args.size} x {args.size} float32 image ({threads}), window "
        f"{args.window}, {args.looks:g} looks (best of {args.repeat} numpy runs, "
        f"{max(1, args.tf_repeat)} TensorFlow runs after a warm-up)\n"
    )
    print(
        "| filter | implementation | Mpx/s | reference Mpx/s (same runs) | time / reference "
        "| note |"
    )
    print("|---|---|---:|---:|---:|---|")
    for name, implementation, rate, reference_rate, ratio, note in rows:
        flag = (
            " (over target)"
            if name in LEE_FAMILY and implementation == "numpy" and (ratio > TARGET_RATIO)
            else ""
        )
        print(
            f"| {name} | {implementation} | {rate:.1f} | {reference_rate:.1f} "
            f"| {ratio:.2f}x{flag} | {note} |"
        )
    versions = f"numpy {np.__version__}, scipy {scipy.__version__}"
    try:
        import cv2

        versions += f", opencv {cv2.__version__}"
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass
    if not args.no_tf:
        from sar_colorizer.sar.speckle_tf import tf

        versions += f", tensorflow {tf.__version__}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average {load:.1f} at the end), {versions}"
    )
    command = " ".join(shlex.quote(part) for part in [sys.executable, *sys.argv])
    print(f"Command: {command}")


if __name__ == "__main__":
    main()
