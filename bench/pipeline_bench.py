"""Benchmark of the tf.data input pipeline on real chips.

1. Cuts ``--pairs`` real s1s2-la-texas pairs into chips in ``--work`` (``sarcolor preprocess``).
2. Chips per second of the pipeline alone: the first pass (reading, parsing, filtering, LAB,
   filling the cache)
   and later passes (from the cache: the speckle filter and LAB conversion run once per chip,
   before the cache; flips, rotations and crops every pass).
3. The fraction of a training step spent waiting for input: a small ColorizationUNet (or a
   stand-in conv net when ``sar_colorizer.nets.unet`` is missing) trained for ``--steps`` steps
   fed by the pipeline and by one batch held in memory;
   ``waiting fraction = 1 - t_cached / t_pipeline``.

Prints a table and the command that produced it. Times depend on the machine and on what else
runs on it (tests never assert on time).

    .venv/bin/python bench/pipeline_bench.py --pairs 10 --work /tmp/sarcolor_pipeline_bench
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "s1s2-la-texas"


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="s1s2-la-texas folder")
    parser.add_argument("--pairs", type=int, default=10, help="number of real pairs to cut")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sarcolor_pipeline_bench"))
    parser.add_argument("--chip-size", type=int, default=256)
    parser.add_argument("--crop-size", type=int, default=256, help="crop taken by the pipeline")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--speckle-filter", default="boxcar")
    parser.add_argument("--speckle-window", type=int, default=5)
    parser.add_argument(
        "--epochs", type=int, default=3, help="passes over the chips, pipeline alone"
    )
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--skip-preprocess", action="store_true", help="reuse --work/chips")
    return parser.parse_args(argv)


def _prepare_chips(args: argparse.Namespace) -> tuple[Path, float]:
    from sar_colorizer.data.preprocess import preprocess

    chips = args.work / "chips"
    if args.skip_preprocess and (chips / "stats.json").is_file():
        return chips, float("nan")
    data = args.data.resolve()
    if not (data / "pairs.csv").is_file():
        sys.exit(f"{data}: no pairs.csv; pass --data <s1s2-la-texas folder>")
    lines = (data / "pairs.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:] if ",train," in line][: args.pairs]
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = args.work / "pairs.csv"
    manifest.write_text(
        "sar,optical,split\n" + "".join(f"{data / r[0]},{data / r[1]},train\n" for r in rows)
    )
    start = time.perf_counter()
    preprocess(
        manifest,
        chips,
        chip_size=args.chip_size,
        band_names=["VH"],
        val_fraction=0.0,
        overwrite=True,
        progress=False,
    )
    return chips, time.perf_counter() - start


def _pipeline_rates(chips: Path, args: argparse.Namespace, spec: Any) -> list[float]:
    from sar_colorizer.data.pipeline import make_dataset

    dataset = make_dataset(
        chips, batch_size=args.batch_size, crop_size=args.crop_size, speckle_filter=spec, seed=0
    )
    rates = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        n = 0
        for x, _y in dataset:
            n += int(x.shape[0])
        rates.append(n / (time.perf_counter() - start))
    return rates


def _model(args: argparse.Namespace) -> tuple[Any, str]:
    from sar_colorizer._tf import import_keras

    keras = import_keras()
    try:
        from sar_colorizer.nets.unet import ColorizationUNet

        model = ColorizationUNet(
            input_channels=1, depth=args.depth, base_filters=args.base_filters, downsample=2
        )
        return (
            model,
            f"ColorizationUNet(depth={args.depth}, base_filters={args.base_filters}, downsample=2)",
        )
    except ImportError:
        inputs = keras.Input((None, None, 1))
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        outputs = keras.layers.Conv2D(2, 1, activation="tanh")(x)
        return keras.Model(inputs, outputs), "stand-in conv net (2 x Conv2D 16)"


def _masked_mse(y_true: Any, y_pred: Any) -> Any:
    from sar_colorizer._tf import import_tensorflow

    tf = import_tensorflow()
    weight = y_true[..., 2:3]
    error = tf.square(y_true[..., :2] - y_pred) * weight
    return tf.reduce_sum(error) / tf.maximum(2.0 * tf.reduce_sum(weight), 1.0)


def _waiting_fraction(chips: Path, args: argparse.Namespace, spec: Any) -> dict[str, Any]:
    from sar_colorizer._tf import import_tensorflow
    from sar_colorizer.data.pipeline import make_dataset
    from sar_colorizer.data.stats import read_stats

    tf = import_tensorflow()
    model, description = _model(args)
    model.compile(optimizer="adam", loss=_masked_mse)
    pipeline = make_dataset(
        chips,
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        speckle_filter=spec,
        seed=0,
        repeat=True,
        drop_remainder=True,
    )
    x, y = next(iter(pipeline))
    cached = tf.data.Dataset.from_tensors((x, y)).repeat()
    n_chips = read_stats(chips)["n_chips"]["train"]
    # warm up: trace the train step and fill the pipeline's cache (one full pass)
    warmup = max(2, -(-n_chips // args.batch_size) + 1)
    model.fit(pipeline, steps_per_epoch=warmup, epochs=1, verbose=0)
    model.fit(cached, steps_per_epoch=2, epochs=1, verbose=0)

    def timed(dataset: Any) -> float:
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0)
        return (time.perf_counter() - start) / args.steps

    t_pipeline = timed(pipeline)
    t_cached = timed(cached)
    return {
        "model": description,
        "t_pipeline": t_pipeline,
        "t_cached": t_cached,
        "waiting": max(0.0, 1.0 - t_cached / t_pipeline),
        "n_chips": n_chips,
    }


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sar_colorizer.sar.speckle import SpeckleFilter

    spec = SpeckleFilter(args.speckle_filter, args.speckle_window)
    chips, t_preprocess = _prepare_chips(args)
    rates = _pipeline_rates(chips, args, spec)
    training = _waiting_fraction(chips, args, spec)

    crop = args.crop_size
    print()
    print(
        f"pipeline benchmark: {args.pairs} real pairs, {training['n_chips']} chips of "
        f"{args.chip_size} px, crop {crop}, batch {args.batch_size}, "
        f"filter {spec.name} {spec.window}x{spec.window}, {os.cpu_count()} CPUs"
    )
    print(f"{'measure':<46} {'value':>12}")
    print("-" * 59)
    if t_preprocess == t_preprocess:  # not NaN
        print(f"{'preprocess (s per source image)':<46} {t_preprocess / args.pairs:>12.2f}")
    print(f"{'pipeline, pass 1 (chips/s: read, filter, LAB)':<46} {rates[0]:>12.1f}")
    for epoch, rate in enumerate(rates[1:], start=2):
        print(f"{f'pipeline, pass {epoch} (chips/s, from cache)':<46} {rate:>12.1f}")
    print(f"{'train step, pipeline input (s)':<46} {training['t_pipeline']:>12.3f}")
    print(f"{'train step, cached batch in memory (s)':<46} {training['t_cached']:>12.3f}")
    print(f"{'waiting for input (1 - t_cached/t_pipeline)':<46} {training['waiting']:>12.1%}")
    print(
        f"{'train throughput, pipeline (chips/s)':<46} "
        f"{args.batch_size / training['t_pipeline']:>12.1f}"
    )
    print(f"model: {training['model']}")
    print("command: " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))


if __name__ == "__main__":
    main()
