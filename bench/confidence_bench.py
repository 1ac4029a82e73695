#!/usr/bin/env python3
"""What the confidence head costs ``predict``: the same network with and without it.

The model (default: the shipped one, which has no head) is run as it is and with a confidence
head added (:func:`sar_colorizer.training.with_confidence_head`; the head's weights do not
change its cost), on the same input, alternating the two so that a slow spell of a shared
machine hits both:

* the model runner alone (``ModelRunner``: network, OpenCV upsampling, blending weights) on
  the same batch of tiles, as ``predict`` calls it;
* ``colorize_raster`` (what ``sarcolor predict`` runs, in this process) on a strip of the
  T14RNT scene: plain model; head model with the colour muted (the default for such a
  model); head model also writing the ``--confidence`` raster.

Prints the median wall and CPU time of each (CPU time, summed over the threads, is the steadier
measure on a shared machine), the throughput and the ratios head / plain (the issue's budget:
at most 1.15), and the command that made it:

    python bench/confidence_bench.py                        # shipped model, 2048-row strip
    python bench/confidence_bench.py --model my_bundle --rows 1024 --repeats 5

The scene comes from ``--scene`` or is built with ``../shared/tools/make_scene.py`` in
``--scene-dir``, as ``bench/predict_bench.py`` does.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from predict_bench import DEFAULT_MAKE_SCENE, ensure_scene  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="model bundle (default: shipped)")
    parser.add_argument("--scene", type=Path, default=None, help="SAR raster to colour")
    parser.add_argument("--scene-dir", type=Path, default=Path("/tmp/sarcolor-bench"))
    parser.add_argument("--make-scene", type=Path, default=DEFAULT_MAKE_SCENE)
    parser.add_argument("--rows", type=int, default=2048, help="rows of the scene strip coloured")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each variant")
    parser.add_argument("--runner-calls", type=int, default=20, help="runner calls per timing")
    return parser.parse_args()


def strip_of(scene: Path, rows: int, folder: Path) -> Path:
    """The central ``rows`` rows of the scene, full width (a windowed copy)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(scene) as src:
        rows = min(rows, src.height)
        window = Window(0, (src.height - rows) // 2, src.width, rows)
        profile = src.profile.copy()
        profile.update(height=rows, transform=src.window_transform(window))
        path = folder / f"{scene.stem}_{rows}rows.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return path


def head_twin(bundle, folder: Path):
    """``bundle`` with a confidence head added, saved and loaded as predict would load it."""
    from sar_colorizer.bundle import load_bundle, save_bundle
    from sar_colorizer.train_bundle import output_description
    from sar_colorizer.training import with_confidence_head

    model = with_confidence_head(bundle.model, True)
    metadata = {k: v for k, v in bundle.metadata.items() if k != "model_config"}
    metadata.update(outputs=output_description(model), confidence={"shrink_k": 1.0})
    return load_bundle(save_bundle(folder / "with_head", model, metadata))


def time_runner(bundle, calls: int) -> tuple[float, float]:
    """Wall and CPU seconds per runner call on one batch of tiles of the bundle's size."""
    from sar_colorizer.inference.runner import ModelRunner, tiles_per_call

    tile = bundle.tile_size
    batch = tiles_per_call(64, tile)
    tiles = np.random.default_rng(0).random((batch, tile, tile, bundle.input_channels),
                                            dtype=np.float32)
    weights = (np.ones((batch, tile), np.float32), np.ones((batch, tile), np.float32))
    runner = ModelRunner.for_model(bundle.model)
    runner(tiles, weights)  # trace
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        runner(tiles, weights)
    return (time.perf_counter() - started) / calls, (time.process_time() - cpu) / calls


def time_predict(bundle, source: Path, folder: Path, confidence: bool) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one colorize_raster call."""
    from sar_colorizer.inference import colorize_raster

    started, cpu = time.perf_counter(), time.process_time()
    colorize_raster(bundle, source, folder / "out.tif", overwrite=True, progress=False,
                    confidence_path=folder / "confidence.tif" if confidence else None)
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    args = parse_args()
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.nets.unet import count_flops_per_pixel

    plain = load_bundle(args.model)
    if plain.has_confidence:
        sys.exit(f"{args.model} already has a confidence head; give a model without one")
    scene = args.scene or ensure_scene(args.scene_dir, args.make_scene)
    with tempfile.TemporaryDirectory(prefix="confidence-bench-") as tmp:
        folder = Path(tmp)
        head = head_twin(plain, folder)
        source = strip_of(scene, args.rows, folder)
        import rasterio

        with rasterio.open(source) as src:
            megapixels = src.width * src.height / 1e6

        runner = {"plain": [], "head": []}
        predict = {"plain": [], "head": [], "head + --confidence": []}
        time_predict(plain, source, folder, False)  # warm-up: tracing, XLA, file cache
        time_predict(head, source, folder, True)
        for _ in range(args.repeats):
            runner["plain"].append(time_runner(plain, args.runner_calls))
            runner["head"].append(time_runner(head, args.runner_calls))
            predict["plain"].append(time_predict(plain, source, folder, False))
            predict["head"].append(time_predict(head, source, folder, False))
            predict["head + --confidence"].append(time_predict(head, source, folder, True))

    flops = {name: count_flops_per_pixel(b.model, b.tile_size) for name, b in
             (("plain", plain), ("head", head))}
    print("# Cost of the confidence head\n")
    print(f"model {args.model} ({plain.tile_size}-px tiles); strip of {scene.name}: "
          f"{megapixels:.1f} Mpx; load average {os.getloadavg()[0]:.2f}; "
          f"median of {args.repeats} alternating runs\n")
    print(f"network FLOPs per pixel: plain {flops['plain']:.0f}, head {flops['head']:.0f} "
          f"(x{flops['head'] / flops['plain']:.3f})\n")
    print("| what | variant | median wall s | Mpx/s | wall ratio | median CPU s | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    for what, runs in (("runner, one call", runner), ("colorize_raster", predict)):
        wall0 = statistics.median(wall for wall, _ in runs["plain"])
        cpu0 = statistics.median(cpu for _, cpu in runs["plain"])
        for name, values in runs.items():
            wall = statistics.median(w for w, _ in values)
            cpu = statistics.median(c for _, c in values)
            rate = f"{megapixels / wall:.2f}" if what == "colorize_raster" else "-"
            print(f"| {what} | {name} | {wall:.3f} | {rate} | {wall / wall0:.3f} | "
                  f"{cpu:.3f} | {cpu / cpu0:.3f} |")
    print(f"\ncommand: python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
