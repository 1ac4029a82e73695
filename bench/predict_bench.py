#!/usr/bin/env python3
"""Benchmark ``sarcolor predict`` on a whole Sentinel-1 scene and on crops of it.

What it measures, on the machine it runs on:

* end-to-end ``sarcolor predict`` (a fresh process per run, as a user runs it) on the T14RNT
  scene mosaic (12288 x 5120 px, float32 dB with NaN nodata, built by
  ``../shared/tools/make_scene.py``) and on crops of 1/2 and 1/4 of its rows (full width):
  wall time, throughput (scene megapixels per second, inside the command and including process
  start-up), CPU seconds and peak resident memory (``os.wait4`` rusage of that process). The
  crops keep the scene's width because streaming memory is bounded by strips of
  ``tile_size x width`` pixels: memory should stay flat while time grows linearly with rows;
* the model's forward FLOPs per pixel (counted from its convolution layers), the FLOP rate the
  runs achieved (FLOPs of all tiles, overlap included, divided by the command's inference
  time) against a ceiling: a large float32 numpy matmul on the same machine;
* the TensorFlow threading settings in use;
* the throughput of a pix2pix ``unet_256`` generator (Isola et al. 2017: 8 x (4x4 stride-2
  conv) down with 64-128-256-512x5 filters, 8 up with skip connections, 54 M parameters,
  reimplemented in Keras) on 256 x 256 tiles, and our end-to-end throughput relative to it.

    python bench/predict_bench.py --model my_bundle                # whole scene + crops
    python bench/predict_bench.py --model /tmp/tiny --quick        # crops only

The scene and crops are cached in ``--scene-dir`` (default ``/tmp/sarcolor-bench``). Numbers
depend on the machine and on whatever else runs on it (the load average is printed).
Prints a markdown report and the command line that made it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MAKE_SCENE = REPO / ".." / "shared" / "tools" / "make_scene.py"
SCENE_NAME = "T14RNT_sar_db.tif"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="model bundle (default: shipped)")
    parser.add_argument("--scene-dir", type=Path, default=Path("/tmp/sarcolor-bench"))
    parser.add_argument(
        "--make-scene",
        type=Path,
        default=DEFAULT_MAKE_SCENE,
        help="path of make_scene.py (default: ../shared/tools/make_scene.py)",
    )
    parser.add_argument("--quick", action="store_true", help="crops only, not the whole scene")
    parser.add_argument(
        "--format",
        default="tif",
        choices=["tif", "png"],
        help="output format of the runs (default tif)",
    )
    parser.add_argument(
        "--tile-size", type=int, default=None, help="default: the model's training tile size"
    )
    parser.add_argument(
        "--overlap", type=int, default=None, help="default: predict's (tile / 8, at most 64)"
    )
    parser.add_argument(
        "--tiles-per-call", type=int, default=None, help="most tiles per call (default: predict's)"
    )
    parser.add_argument("--pix2pix-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed pix2pix/matmul repeats")
    return parser.parse_args()


# --------------------------------------------------------------------------------------------
# Inputs


def ensure_scene(scene_dir: Path, make_scene: Path) -> Path:
    scene = scene_dir / SCENE_NAME
    if scene.exists():
        return scene
    if not make_scene.exists():
        sys.exit(f"{make_scene} not found; pass --make-scene PATH/make_scene.py")
    scene_dir.mkdir(parents=True, exist_ok=True)
    print(f"building {scene} with {make_scene} ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, str(make_scene), "T14RNT", str(scene_dir), "--kind", "sar", "--db"],
        check=True,
    )
    return scene


def ensure_crop(scene: Path, divisor: int) -> Path:
    """The central 1/divisor of the scene's rows, full width, written through a window."""
    import rasterio
    from rasterio.windows import Window

    crop = scene.with_name(f"{scene.stem}_rows1of{divisor}.tif")
    if crop.exists():
        return crop
    with rasterio.open(scene) as src:
        rows = src.height // divisor
        window = Window(0, (src.height - rows) // 2, src.width, rows)
        profile = src.profile.copy()
        profile.update(height=rows, width=src.width, transform=src.window_transform(window))
        with rasterio.open(crop, "w", **profile) as dst:
            for row0 in range(0, rows, 512):  # windowed copy, never the whole scene
                part = Window(0, row0, src.width, min(512, rows - row0))
                source = Window(0, window.row_off + row0, src.width, part.height)
                dst.write(src.read(window=source), window=part)
    return crop


# --------------------------------------------------------------------------------------------
# Runs


def run_predict(args: argparse.Namespace, source: Path, output: Path) -> dict:
    """One ``sarcolor predict`` process: wall time, CPU, peak RSS, reported inference time."""
    command = [
        sys.executable,
        "-m",
        "sar_colorizer",
        "predict",
        "--model",
        str(args.model),
        str(source),
        str(output),
        "--overwrite",
        *(["--tile-size", str(args.tile_size)] if args.tile_size else []),
        *(["--overlap", str(args.overlap)] if args.overlap is not None else []),
        *(["--tiles-per-call", str(args.tiles_per_call)] if args.tiles_per_call else []),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all runs).
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stdout, stderr = process.stdout.read(), process.stderr.read()
    process.wait()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"predict failed on {source}:\n{stdout}\n{stderr}")
    match = re.search(r"wrote .* \((\d+) x (\d+) px, (\d+) tiles\) in ([\d.]+) s", stderr)
    if not match:
        sys.exit(f"could not parse the predict log:\n{stderr}")
    width, height, tiles, seconds = (int(match[1]), int(match[2]), int(match[3]), float(match[4]))
    return {
        "name": source.name,
        "width": width,
        "height": height,
        "tiles": tiles,
        "seconds": seconds,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "command": command,
    }


def matmul_ceiling(repeats: int, size: int = 4096) -> float:
    """GFLOP/s of a float32 ``size x size`` numpy matmul (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def pix2pix_unet_256(keras, input_channels: int = 3, output_channels: int = 3):
    """pix2pix ``unet_256`` generator (ngf 64, batch norm, dropout in the 3 innermost ups).

    As in junyanz/pytorch-CycleGAN-and-pix2pix ``UnetGenerator(num_downs=8)``: the outermost
    down has no normalisation, the innermost none either; downs use LeakyReLU(0.2), ups ReLU;
    4x4 kernels, stride 2, no bias where batch norm follows; tanh output.
    """
    layers = keras.layers
    filters_down = [64, 128, 256, 512, 512, 512, 512, 512]
    inputs = keras.Input((256, 256, input_channels))
    x = inputs
    skips = []
    for level, filters in enumerate(filters_down):
        if level > 0:
            x = layers.LeakyReLU(0.2)(x)
        normalise = 0 < level < len(filters_down) - 1
        x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=not normalise)(x)
        if normalise:
            x = layers.BatchNormalization()(x)
        skips.append(x)
    skips.pop()  # the innermost output feeds the first up directly
    for level, filters in enumerate(reversed(filters_down[:-1])):
        x = layers.ReLU()(x)
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        if 1 <= level <= 3:
            x = layers.Dropout(0.5)(x)
        x = layers.Concatenate()([x, skips.pop()])
    x = layers.ReLU()(x)
    outputs = layers.Conv2DTranspose(
        output_channels, 4, strides=2, padding="same", activation="tanh"
    )(x)
    return keras.Model(inputs, outputs, name="pix2pix_unet_256")


def pix2pix_throughput(batch: int, repeats: int) -> dict:
    from sar_colorizer._tf import import_keras, import_tensorflow
    from sar_colorizer.nets.unet import count_flops_per_pixel

    tf = import_tensorflow()
    keras = import_keras()
    model = pix2pix_unet_256(keras)
    forward = tf.function(lambda x: model(x, training=False), autograph=False)
    x = tf.constant(np.random.default_rng(0).random((batch, 256, 256, 3), dtype=np.float32))
    forward(x).numpy()
    best = min(_timed(lambda: forward(x).numpy()) for _ in range(repeats))
    flops = count_flops_per_pixel(model, 256)
    return {
        "params_m": model.count_params() / 1e6,
        "mpx_s": batch * 256 * 256 / best / 1e6,
        "flops_px": flops,
        "gflops": flops * batch * 256 * 256 / best / 1e9,
        "seconds_per_tile": best / batch,
    }


def model_facts(args: argparse.Namespace, scene: Path) -> dict:
    from sar_colorizer._tf import import_tensorflow
    from sar_colorizer.bundle import load_bundle
    from sar_colorizer.inference import tile_settings, tiles_per_call
    from sar_colorizer.io.raster import read_info
    from sar_colorizer.io.tiling import TileGrid, round_tile_size
    from sar_colorizer.nets.unet import count_flops_per_pixel

    tf = import_tensorflow()
    bundle = load_bundle(args.model)
    tile_size, overlap = tile_settings(bundle, args.tile_size, args.overlap)
    tile = round_tile_size(tile_size, bundle.tile_multiple)
    info = read_info(scene)
    grid = TileGrid.for_shape(info.height, info.width, tile, overlap)
    return {
        "path": bundle.path,
        "config": bundle.metadata.get("model_config", {}),
        "params_m": bundle.model.count_params() / 1e6,
        "flops_px": count_flops_per_pixel(bundle.model, tile),
        "tile": tile,
        "overlap": overlap,
        "n_cols": grid.n_cols,
        "per_call": tiles_per_call(grid.n_cols, tile, args.tiles_per_call),
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf_version": tf.__version__,
        "speckle_filter": bundle.metadata.get("speckle_filter"),
    }


# --------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    scene = ensure_scene(args.scene_dir, args.make_scene)
    inputs = [ensure_crop(scene, 4), ensure_crop(scene, 2)]
    if not args.quick:
        inputs.append(scene)
    out_dir = args.scene_dir / "out"
    out_dir.mkdir(exist_ok=True)

    runs = [
        run_predict(args, path, out_dir / f"{path.stem}_colour.{args.format}") for path in inputs
    ]
    facts = model_facts(args, scene)
    ceiling = matmul_ceiling(args.repeats)
    pix2pix = pix2pix_throughput(args.pix2pix_batch, args.repeats)
    load_after = os.getloadavg()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = lambda n: f"{n} (0 = TensorFlow default: one per core)"  # noqa: E731
    print("## sarcolor predict benchmark\n")
    print(f"- command: `{shlex.join([sys.executable, *sys.argv])}`")
    print(
        f"- machine: {platform.processor() or platform.machine()}, {cores} cores available, "
        f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after "
        "(other processes share the cores: compare the CPU columns)"
    )
    print(
        f"- TensorFlow {facts['tf_version']}: intra-op threads {threads(facts['intra_op'])}, "
        f"inter-op threads {threads(facts['inter_op'])}, TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')} (oneDNN CPU kernels); sarcolor runs the "
        "model (batch normalisation folded into the convolutions), the strip reader and the "
        "colour/writer in three Python threads"
    )
    print(
        f"- model: {facts['path']} ({facts['params_m']:.3f} M parameters, config "
        f"{facts['config']}), speckle filter {facts['speckle_filter']}"
    )
    print(
        f"- tiles {facts['tile']} px, overlap {facts['overlap']}; {facts['per_call']} tiles "
        f"per model call on rows of {facts['n_cols']} tiles (--tiles-per-call "
        f"{args.tiles_per_call or 'default: about 1 Mpx per call'}); output .{args.format}"
    )
    print(f"- per-run command: `{shlex.join(runs[0]['command'])}`\n")

    print(
        "| input | size (px) | Mpx | tiles | inference s | process wall s | Mpx/s "
        "(inference) | Mpx/s (process) | CPU s | CPU s / Mpx | peak RSS MB | model GFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        mpx = run["width"] * run["height"] / 1e6
        flops = facts["flops_px"] * run["tiles"] * facts["tile"] ** 2
        run["gflops"] = flops / run["seconds"] / 1e9
        run["mpx_s"] = mpx / run["seconds"]
        print(
            f"| {run['name']} | {run['width']} x {run['height']} | {mpx:.1f} | {run['tiles']} "
            f"| {run['seconds']:.1f} | {run['wall']:.1f} | {run['mpx_s']:.2f} | "
            f"{mpx / run['wall']:.2f} | {run['cpu']:.1f} | {run['cpu'] / mpx:.2f} | "
            f"{run['rss_mb']:.0f} | {run['gflops']:.1f} |"
        )

    largest = runs[-1]
    print("\n| quantity | value |\n|---|---|")
    print(
        f"| model forward FLOPs per pixel (tile {facts['tile']}) | "
        f"{facts['flops_px'] / 1e3:.1f} k |"
    )
    print(
        f"| achieved model GFLOP/s ({largest['name']}, all tile pixels) | {largest['gflops']:.1f} |"
    )
    print(f"| float32 numpy matmul ceiling, GFLOP/s | {ceiling:.1f} |")
    print(f"| achieved / ceiling | {largest['gflops'] / ceiling:.1%} |")
    print(f"| pix2pix unet_256: parameters | {pix2pix['params_m']:.1f} M |")
    print(f"| pix2pix unet_256: FLOPs per pixel | {pix2pix['flops_px'] / 1e3:.0f} k |")
    print(
        f"| pix2pix unet_256: throughput on 256 px tiles (model only, batch "
        f"{args.pix2pix_batch}) | {pix2pix['mpx_s']:.3f} Mpx/s "
        f"({pix2pix['seconds_per_tile']:.2f} s per tile, {pix2pix['gflops']:.1f} GFLOP/s) |"
    )
    print(
        f"| our end-to-end Mpx/s ({largest['name']}) / pix2pix model-only Mpx/s | "
        f"{largest['mpx_s'] / pix2pix['mpx_s']:.1f} x |"
    )


if __name__ == "__main__":
    main()
