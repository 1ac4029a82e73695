#!/usr/bin/env python3
"""Benchmark ``sarcolor predict`` against its targets, each figure beside its yardstick in one run.

What it measures, on the machine it runs on (every predict is a fresh process, as a user runs
it; ``os.wait4`` gives that process's CPU seconds and peak resident memory):

* the T14RNT scene (12288 x 5120 px, float32 dB with NaN nodata at the edges, built by
  ``../shared/tools/make_scene.py``) as a whole process, start-up included, and inside predict
  (the time predict logs, from the bundle loaded to the outputs renamed into place);
* crops of 1/4 and 1/2 of its rows (full width): peak memory must stay flat in scene size
  (streaming holds a few strips of ``tile x width`` pixels);
* the 90 %-nodata ratio: a fully valid scene of the same size (the mosaic's gaps filled with
  copies of its own fragments) against the same with 90 % of its pixels nodata (a diagonal
  swath of it kept, like the corner of a GRD footprint in a tile), in the same repeat; and the
  mosaic (itself 60 % nodata) against its own 90 %-nodata variant, whose ratio cannot exceed
  that of their valid pixels (about 3.7);
* the README quick start (the Camargue sample, 0.06 Mpx) as a cold process, median of
  ``--repeats``;
* the outputs on ONNX Runtime (the default) against the TensorFlow path
  (``SARCOLOR_RUNTIME=tensorflow``: the Keras model) on the 1/4 crop: largest difference in
  8-bit levels;
* the yardstick: a pix2pix ``unet_256`` generator (Isola et al. 2017: 8 x (4x4 stride-2 conv)
  down with 64-128-256-512x5 filters, 8 up with skip connections, 54 M parameters,
  reimplemented in Keras) on 256 x 256 tiles, model only, in this process;
* GeoTIFF compression of the colour output (the 1/4 crop's, RGBA uint8, 256-px tiles):
  seconds to write and bytes for DEFLATE levels, the horizontal predictor, ZSTD and LZW.

Timings on a shared machine are noisy: the ratios compare runs made in the same repeat, and
the report gives every repeat. Prints a markdown report and the command line that made it.

    python bench/predict_bench.py                       # everything, 3 repeats
    python bench/predict_bench.py --repeats 1 --skip-compression
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MAKE_SCENE = REPO / ".." / "shared" / "tools" / "make_scene.py"
SCENE_NAME = "T14RNT_sar_db.tif"
QUICK_START = (
    REPO / "data" / "samples" / "spatialist-s1-vv-db"
    / "S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db.tif"
)
#: Targets of issue 21.
TARGET_PROCESS_VS_PIX2PIX = 5.0
TARGET_INSIDE_MPX_S = 10.0
TARGET_QUICK_START_S = 2.0
TARGET_SPARSE_SPEED_UP = 4.0
TARGET_PEAK_MB = 2048.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="model bundle (default: shipped)")
    parser.add_argument(
        "--scene-dir", type=Path, default=None,
        help="where the scene, crops and outputs go (default: a new temporary folder)",
    )
    parser.add_argument(
        "--make-scene", type=Path, default=DEFAULT_MAKE_SCENE,
        help="path of make_scene.py (default: ../shared/tools/make_scene.py)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timed run")
    parser.add_argument("--pix2pix-batch", type=int, default=16)
    parser.add_argument("--skip-compression", action="store_true")
    parser.add_argument(
        "--predict-args", default="", help="extra predict options, e.g. '--tiles-per-call 8'"
    )
    parser.add_argument(
        "--reference-tree", type=Path, default=None,
        help="a checkout of sarcolor before ONNX Runtime (git worktree add DIR fcf4401) whose "
        "predict (Keras network, XLA colour conversion) the outputs are compared with; "
        "default: this tree with SARCOLOR_RUNTIME=tensorflow",
    )
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


def _copy(scene: Path, target: Path, rows: tuple[int, int], mask=None) -> Path:
    """Rows ``[r0, r1)`` of the scene, full width, through windows; ``mask(row0, rows, width)``
    -> bool array of pixels to make nodata."""
    import rasterio
    from rasterio.windows import Window

    if target.exists():
        return target
    r0, r1 = rows
    with rasterio.open(scene) as src:
        profile = src.profile.copy()
        window = Window(0, r0, src.width, r1 - r0)
        profile.update(height=r1 - r0, transform=src.window_transform(window))
        partial = target.with_name(f".{target.name}.partial")
        with rasterio.open(partial, "w", **profile) as dst:
            for row0 in range(0, r1 - r0, 512):
                part = Window(0, row0, src.width, min(512, r1 - r0 - row0))
                data = src.read(window=Window(0, r0 + row0, src.width, part.height))
                if mask is not None:
                    data[:, mask(row0, part.height, src.width)] = np.nan
                dst.write(data, window=part)
    partial.rename(target)
    return target


def ensure_crop(scene: Path, divisor: int) -> Path:
    """The central 1/divisor of the scene's rows, full width."""
    import rasterio

    with rasterio.open(scene) as src:
        height = src.height
    rows = height // divisor
    r0 = (height - rows) // 2
    return _copy(scene, scene.with_name(f"{scene.stem}_rows1of{divisor}.tif"), (r0, r0 + rows))


def ensure_sparse(scene: Path, valid_share: float = 0.10) -> Path:
    """The scene with nodata outside a diagonal swath, so that ``valid_share`` of its pixels
    are valid (90 % nodata): the swath keeps ``valid_share / (the scene's valid share)`` of
    its area."""
    import rasterio

    with rasterio.open(scene) as src:
        height = src.height
    keep = min(1.0, valid_share / valid_fraction(scene))

    def mask(row0: int, rows: int, width: int) -> np.ndarray:
        y = (np.arange(row0, row0 + rows) / height)[:, None]
        x = (np.arange(width) / width)[None, :]
        # The band |x - y| <= h keeps 2h - h^2 of the unit square.
        half = 1.0 - math.sqrt(1.0 - keep)
        return np.abs(x - y) > half

    name = f"{scene.stem}_{round(100 * (1 - valid_share))}pct_nodata.tif"
    return _copy(scene, scene.with_name(name), (0, height), mask)


def ensure_filled(scene: Path) -> Path:
    """The scene with every nodata pixel filled, the same size and georeference: a fully
    valid scene for the 90 %-nodata ratio. A gap pixel takes its value from the mosaic moved
    by whole fragments (1024 px), first along its rows, then its columns too (the first move
    with data there wins): the filled scene is the same radar texture; a gap left after every
    move takes the median dB."""
    target = scene.with_name(f"{scene.stem}_filled.tif")
    if target.exists():
        return target
    # In a process of its own: a child of this one would inherit its peak resident memory
    # (Linux keeps it across exec), and every predict's peak would read as this one's.
    process = multiprocessing.get_context("spawn").Process(
        target=_write_filled, args=(scene, target)
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        sys.exit(f"could not write {target}")
    return target


def _write_filled(scene: Path, target: Path) -> None:
    import rasterio

    with rasterio.open(scene) as src:
        profile = src.profile.copy()
        data = src.read(1)
    filled = data.copy()
    step = 1024
    moves = [(0, k * step) for k in range(1, data.shape[1] // step)]
    moves += [(k * step, c) for k in range(1, data.shape[0] // step) for c in (0, *(m[1] for m in moves))]
    for move in moves:
        gaps = ~np.isfinite(filled)
        if not gaps.any():
            break
        source = np.roll(data, move, axis=(0, 1))
        filled[gaps] = source[gaps]
    gaps = ~np.isfinite(filled)
    filled[gaps] = np.nanmedian(data)
    partial = target.with_name(f".{target.name}.partial")
    with rasterio.open(partial, "w", **profile) as dst:
        dst.write(filled, 1)
    partial.rename(target)


def valid_fraction(path: Path) -> float:
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(1, out_shape=(src.height // 8, src.width // 8))
    return float(np.isfinite(data).mean())


# --------------------------------------------------------------------------------------------
# Runs


def run_predict(
    args: argparse.Namespace,
    source: Path,
    output: Path,
    env: dict[str, str] | None = None,
    tree: Path = REPO,
) -> dict:
    """One ``sarcolor predict`` process: wall time, CPU, peak RSS, reported inference time."""
    command = [
        sys.executable, "-m", "sar_colorizer", "predict", "--model", str(args.model),
        str(source), str(output), "--overwrite", *shlex.split(args.predict_args),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, cwd=tree,
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
        "name": source.name, "width": width, "height": height, "mpx": width * height / 1e6,
        "tiles": tiles, "seconds": seconds, "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
        "command": command,
    }


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
    """Model-only Mpx/s of the pix2pix generator (best of ``repeats``) in this process."""
    from sar_colorizer._tf import import_keras, import_tensorflow

    tf = import_tensorflow()
    keras = import_keras()
    model = pix2pix_unet_256(keras)
    forward = tf.function(lambda x: model(x, training=False), autograph=False)
    x = tf.constant(np.random.default_rng(0).random((batch, 256, 256, 3), dtype=np.float32))
    forward(x).numpy()
    times = [_timed(lambda: forward(x).numpy()) for _ in range(repeats)]
    return {
        "params_m": model.count_params() / 1e6,
        "mpx_s": [batch * 256 * 256 / t / 1e6 for t in times],
        "best_mpx_s": batch * 256 * 256 / min(times) / 1e6,
    }


def compare_outputs(a: Path, b: Path) -> tuple[int, float]:
    """Largest absolute difference of two rasters (8-bit levels) and the share of differing
    values, block by block."""
    import rasterio

    largest, differing, total = 0, 0, 0
    with rasterio.open(a) as first, rasterio.open(b) as second:
        for _, window in first.block_windows(1):
            x = first.read(window=window).astype(np.int16)
            y = second.read(window=window).astype(np.int16)
            difference = np.abs(x - y)
            largest = max(largest, int(difference.max()))
            differing += int(np.count_nonzero(difference))
            total += difference.size
    return largest, differing / max(total, 1)


def compression_table(colour: Path, work: Path, repeats: int) -> list[dict]:
    """Seconds (best of ``repeats``, one thread) and bytes to write ``colour`` with each
    setting, from memory."""
    import rasterio

    with rasterio.open(colour) as src:
        data = src.read()
        profile = {k: v for k, v in src.profile.items()
                   if k not in ("compress", "predictor", "zlevel", "zstd_level")}
    profile.update(tiled=True, blockxsize=256, blockysize=256)
    settings = [
        ("none", {}),
        ("DEFLATE level 1, no predictor", {"compress": "deflate", "zlevel": 1}),
        ("DEFLATE level 1, predictor 2 (predict's default)",
         {"compress": "deflate", "zlevel": 1, "predictor": 2}),
        ("DEFLATE level 6, predictor 2", {"compress": "deflate", "zlevel": 6, "predictor": 2}),
        ("DEFLATE level 9, predictor 2", {"compress": "deflate", "zlevel": 9, "predictor": 2}),
        ("ZSTD level 1, predictor 2", {"compress": "zstd", "zstd_level": 1, "predictor": 2}),
        ("ZSTD level 9, predictor 2", {"compress": "zstd", "zstd_level": 9, "predictor": 2}),
        ("LZW, predictor 2", {"compress": "lzw", "predictor": 2}),
    ]
    rows = []
    for name, options in settings:
        target = work / "compression.tif"
        seconds = []
        for _ in range(repeats):
            target.unlink(missing_ok=True)
            started = time.process_time()
            with rasterio.Env(GDAL_NUM_THREADS="1"):
                with rasterio.open(target, "w", **{**profile, **options}) as dst:
                    dst.write(data)
            seconds.append(time.process_time() - started)
        rows.append({"name": name, "seconds": min(seconds), "bytes": target.stat().st_size})
        target.unlink()
    return rows


# --------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    scene_dir = args.scene_dir or Path(tempfile.mkdtemp(prefix="sarcolor-bench-"))
    scene = ensure_scene(scene_dir, args.make_scene)
    quarter, half = ensure_crop(scene, 4), ensure_crop(scene, 2)
    sparse = ensure_sparse(scene)
    filled = ensure_filled(scene)
    filled_sparse = ensure_sparse(filled)
    out = scene_dir / "out"
    out.mkdir(exist_ok=True)

    quick = [run_predict(args, QUICK_START, out / "camargue.png") for _ in range(args.repeats)]
    scaling = [run_predict(args, path, out / f"{path.stem}.tif") for path in (quarter, half)]
    whole, nodata, full, full_nodata = [], [], [], []
    for _ in range(args.repeats):  # full and sparse in the same repeat, for their ratio
        whole.append(run_predict(args, scene, out / "whole.tif"))
        nodata.append(run_predict(args, sparse, out / "sparse.tif"))
        full.append(run_predict(args, filled, out / "filled.tif"))
        full_nodata.append(run_predict(args, filled_sparse, out / "filled_sparse.tif"))
    reference_env, tree = {"SARCOLOR_RUNTIME": "tensorflow"}, REPO
    if args.reference_tree is not None:
        tree = args.reference_tree.resolve()
        reference_env = {"PYTHONPATH": str(tree)}
    tensorflow = run_predict(args, quarter, out / "quarter_tensorflow.tif", reference_env, tree)
    largest, differing = compare_outputs(out / f"{quarter.stem}.tif", out / "quarter_tensorflow.tif")
    pix2pix = pix2pix_throughput(args.pix2pix_batch, args.repeats)
    compression = None if args.skip_compression else compression_table(
        out / f"{quarter.stem}.tif", out, args.repeats
    )
    load_after = os.getloadavg()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("## sarcolor predict benchmark\n")
    print(f"- command: `{shlex.join([sys.executable, *sys.argv])}`")
    print(
        f"- machine: {platform.processor() or platform.machine()}, {cores} cores available, "
        f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after (other processes "
        "share the cores; ratios compare runs of the same repeat)"
    )
    print(f"- per-run command: `{shlex.join(whole[0]['command'])}`")
    mosaic_share, sparse_share = valid_fraction(scene), valid_fraction(sparse)
    print(f"- scenes in {scene_dir}; the mosaic is {mosaic_share:.1%} valid, its 90 %-nodata "
          f"variant {sparse_share:.1%}; the filled scene (the mosaic's gaps filled with its own "
          f"fragments) 100 %, its 90 %-nodata variant {valid_fraction(filled_sparse):.1%}\n")

    print("| run | Mpx | tiles | inside predict s | process wall s | Mpx/s inside | "
          "Mpx/s process | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    labelled = [
        *(("quick start", run) for run in quick),
        ("1/4 scene", scaling[0]), ("1/2 scene", scaling[1]),
        *(("whole scene", run) for run in whole),
        *(("90 % nodata", run) for run in nodata),
        *(("filled scene (100 % valid)", run) for run in full),
        *(("filled scene, 90 % nodata", run) for run in full_nodata),
        ("1/4 scene, TensorFlow path" + (
            f" ({args.reference_tree})" if args.reference_tree else ""), tensorflow),
    ]
    for label, run in labelled:
        print(
            f"| {label} | {run['mpx']:.2f} | {run['tiles']} | {run['seconds']:.2f} | "
            f"{run['wall']:.2f} | {run['mpx'] / run['seconds']:.2f} | "
            f"{run['mpx'] / run['wall']:.2f} | {run['cpu']:.1f} | {run['rss_mb']:.0f} |"
        )

    quick_median = _median([run["wall"] for run in quick])
    inside = _median([run["mpx"] / run["seconds"] for run in whole])
    process = _median([run["mpx"] / run["wall"] for run in whole])
    speed_ups = [w["wall"] / n["wall"] for w, n in zip(whole, nodata, strict=True)]
    full_speed_ups = [w["wall"] / n["wall"] for w, n in zip(full, full_nodata, strict=True)]
    peak = max(run["rss_mb"] for run in (*scaling, *whole, *nodata, *full, *full_nodata, *quick))
    flat = max(run["rss_mb"] for run in whole) / scaling[0]["rss_mb"]
    yardstick = pix2pix["best_mpx_s"]
    print("\n| quantity | value | target |\n|---|---|---|")
    print(f"| pix2pix unet_256, model only, 256-px tiles, batch {args.pix2pix_batch} (Mpx/s, "
          f"each repeat) | {', '.join(f'{v:.2f}' for v in pix2pix['mpx_s'])} (best "
          f"{yardstick:.2f}; {pix2pix['params_m']:.1f} M parameters) | yardstick |")
    print(f"| whole scene as a process, start-up included (Mpx/s, median) / pix2pix best | "
          f"{process:.2f} / {yardstick:.2f} = {process / yardstick:.1f} x | >= "
          f"{TARGET_PROCESS_VS_PIX2PIX:.0f} x: {_mark(process / yardstick >= TARGET_PROCESS_VS_PIX2PIX)} |")
    print(f"| whole scene inside predict (Mpx/s, median) | {inside:.2f} | >= "
          f"{TARGET_INSIDE_MPX_S:.0f}: {_mark(inside >= TARGET_INSIDE_MPX_S)} |")
    quick_walls = ", ".join(f"{run['wall']:.2f}" for run in quick)
    print(f"| README quick start, cold process (s, median of {len(quick)}) | {quick_median:.2f} "
          f"({quick_walls}) | <= {TARGET_QUICK_START_S}: "
          f"{_mark(quick_median <= TARGET_QUICK_START_S)} |")
    print(f"| 90 %-nodata scene: the filled (100 % valid) scene's wall / its wall (each "
          f"repeat) | {', '.join(f'{v:.1f}' for v in full_speed_ups)} x (median "
          f"{_median(full_speed_ups):.1f} x) | >= {TARGET_SPARSE_SPEED_UP:.0f} x: "
          f"{_mark(_median(full_speed_ups) >= TARGET_SPARSE_SPEED_UP)} |")
    # The mosaic is itself mostly nodata: even a run whose every second followed the valid
    # pixels could be no more than (its valid share / the variant's) faster.
    print(f"| the same for the mosaic ({mosaic_share:.0%} valid) and its variant "
          f"({sparse_share:.1%}): wall ratio (each repeat) | "
          f"{', '.join(f'{v:.1f}' for v in speed_ups)} x (median {_median(speed_ups):.1f} x) | "
          f"at most {mosaic_share / sparse_share:.2f} x: the ratio of valid pixels |")
    print(f"| peak RSS, any run (MB); whole scene / 1/4 scene | {peak:.0f}; {flat:.2f} | < "
          f"{TARGET_PEAK_MB:.0f} and flat: {_mark(peak < TARGET_PEAK_MB and flat < 1.3)} |")
    print(f"| 1/4 scene: ONNX Runtime output vs TensorFlow path (largest difference, 8-bit "
          f"levels; share of values differing) | {largest}; {differing:.4%} | <= 1: "
          f"{_mark(largest <= 1)} |")
    if compression:
        print("\n| GeoTIFF compression of the colour output (1/4 scene, RGBA, 256-px tiles, one "
              "thread) | write CPU s | MB | MB/s written |\n|---|---|---|---|")
        for row in compression:
            print(f"| {row['name']} | {row['seconds']:.2f} | {row['bytes'] / 1e6:.1f} | "
                  f"{scaling[0]['mpx'] * 4 / max(row['seconds'], 1e-9):.0f} |")


if __name__ == "__main__":
    main()
