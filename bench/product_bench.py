#!/usr/bin/env python3
"""Benchmark Sentinel-1 products as input: a full-size GRD product that is zero (border noise)
except for one 4096 x 4096 block of real backscatter, as a ``.SAFE`` folder and as a ``.zip``.

The product is built in a temporary folder (never committed) from the real metadata in
``../shared/data/s1-grd-safe`` (26102 x 16705 px, VV + a VH twin under the names the manifest
lists): the block's sigma0 comes from the T14RNT scene mosaic (``../shared/tools/make_scene.py
--kind sar --db``: real Sentinel-1 texture, 0 dB at its 99th percentile, taken here as
sigma0 = 0.3 at the 99th percentile for VH and 4x that for VV; the mosaic's few gaps between
fragments are filled with the median, so the whole block holds data), written as uint16 digital
numbers through the inverse calibration with the thermal noise added,
``DN = sqrt(sigma0 * A_sigma**2 + noise)``, into a sparse tiled measurement GeoTIFF (only the
block's tiles exist).

Measured per run, each a fresh process as a user runs it: wall time and peak resident memory
(``/usr/bin/time -f %M``), for ``sarcolor calibrate`` and ``sarcolor predict`` (the shipped
model unless --model) on the .SAFE and the .zip, and ``sarcolor predict`` on a GeoTIFF of the
block alone (the time set by the valid pixels). Then where the block lands: the bounding box of
the output's valid pixels against the box the geolocation grid gives for the block's corners
(GDAL's thin plate spline through the grid), in output pixels.

    python bench/product_bench.py                    # calibrate + predict, .SAFE and .zip
    python bench/product_bench.py --skip-predict     # calibrate only
    python bench/product_bench.py --keep /tmp/pb     # build once in /tmp/pb, reuse it later

Prints a markdown report and the command that made it.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import GCPTransformer
from rasterio.warp import transform as transform_points
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
BLOCK = 4096
BLOCK_ROW, BLOCK_COL = 6000, 11000  # the block's upper-left corner in the product (line, pixel)


def build_product(folder: Path) -> tuple[Path, Path, Path]:
    """The .SAFE, its .zip and a GeoTIFF of the block alone (sigma0 VV,VH, linear)."""
    sys.path.insert(0, str(REPO))
    from sar_colorizer.sar.product import open_product

    safe, archive, block_tif = (folder / f"{NAME}.SAFE", folder / f"{NAME}.zip",
                                folder / "block_VV_VH.tif")
    if safe.is_dir() and archive.is_file() and block_tif.is_file():  # built before (--keep)
        return safe, archive, block_tif
    source = SHARED / "data" / "s1-grd-safe" / f"{NAME}.SAFE"
    if not source.is_dir():
        sys.exit(f"needs the real metadata at {source}")
    scene_dir = folder / "scene"
    subprocess.run([sys.executable, str(SHARED / "tools" / "make_scene.py"), "T14RNT",
                    str(scene_dir), "--kind", "sar", "--db"], check=True, capture_output=True)
    with rasterio.open(next(scene_dir.glob("*.tif"))) as src:
        db = src.read(1, window=Window(4096, 512, BLOCK, BLOCK))
    vh = 0.3 * 10 ** (db.astype(np.float64) / 10)
    vh[~np.isfinite(vh)] = np.nanmedian(vh)  # the mosaic's gaps between fragments: flat, valid
    sigma0 = {"VV": 4.0 * vh, "VH": vh}
    for file in source.rglob("*"):
        if file.is_file() and file.parent.name != "measurement":
            target = safe / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
            if "-vv-" in file.name and file.suffix == ".xml":  # the VH twin
                twin = target.with_name(
                    target.name.replace("-vv-", "-vh-").replace("-001.", "-002."))
                shutil.copyfile(file, twin)
    (safe / "measurement").mkdir()
    product = open_product(safe)
    annotation = product.annotation("VV")
    profile = {"driver": "GTiff", "width": annotation.width, "height": annotation.height,
               "count": 1, "dtype": "uint16", "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "deflate", "sparse_ok": True}
    window = Window(BLOCK_COL, BLOCK_ROW, BLOCK, BLOCK)
    for pol in ("VV", "VH"):
        a_sigma = product.calibration(pol).window(BLOCK_ROW, BLOCK_COL, BLOCK, BLOCK)
        noise = product.noise(pol).window(BLOCK_ROW, BLOCK_COL, BLOCK, BLOCK)
        dn = np.sqrt(sigma0[pol] * a_sigma**2 + noise)
        dn = np.where(np.isfinite(dn), np.clip(np.round(dn), 1, 65534), 0).astype(np.uint16)
        number = "001" if pol == "VV" else "002"
        name = (f"s1b-iw-grd-{pol.lower()}-20211223t051122-20211223t051147-030148-039993-"
                f"{number}.tiff")
        with rasterio.open(safe / "measurement" / name, "w", **profile) as dst:
            dst.write(dn, 1, window=window)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for file in sorted(safe.rglob("*")):
            if file.is_file():
                out.write(file, f"{safe.name}/{file.relative_to(safe)}")
    with rasterio.open(block_tif, "w", driver="GTiff", width=BLOCK, height=BLOCK, count=2,
                       dtype="float32", nodata=float("nan"), crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(300000, 4650000, 10, 10),
                       tiled=True, compress="deflate") as dst:
        dst.write(np.stack([sigma0["VV"], sigma0["VH"]]).astype(np.float32))
        dst.descriptions = ("VV", "VH")
    return safe, archive, block_tif


def timed(command: list[str], log: Path) -> tuple[float, float, int]:
    """Wall seconds, peak resident MB (/usr/bin/time -f %M) and exit status of a command."""
    start = time.perf_counter()
    with open(log, "w") as stderr:
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], stderr=stderr,
                              stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - start
    lines = log.read_text().strip().splitlines()
    peak_mb = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else math.nan
    if done.returncode:
        print(f"FAILED ({done.returncode}): {shlex.join(command)}\n" + "\n".join(lines[-5:]))
    return wall, peak_mb, done.returncode


def expected_box(safe: Path, path: Path) -> tuple[float, float, float, float]:
    """Output pixel box (col0, row0, col1, row1) of the block's outline through the TPS."""
    sys.path.insert(0, str(REPO))
    from sar_colorizer.io.s1product import WGS84, product_gcps
    from sar_colorizer.sar.product import open_product

    annotation = open_product(safe).annotation("VV")
    t = np.linspace(0, 1, 33)
    rows = np.concatenate([BLOCK_ROW + 0 * t, BLOCK_ROW + BLOCK + 0 * t,
                           BLOCK_ROW + BLOCK * t, BLOCK_ROW + BLOCK * t])
    cols = np.concatenate([BLOCK_COL + BLOCK * t, BLOCK_COL + BLOCK * t,
                           BLOCK_COL + 0 * t, BLOCK_COL + BLOCK + 0 * t])
    with GCPTransformer(product_gcps(annotation), tps=True) as tps:
        lon, lat = tps.xy(rows, cols, offset="ul")
    with rasterio.open(path) as src:
        xs, ys = transform_points(WGS84, src.crs, lon, lat)
        c, r = ~src.transform * (np.asarray(xs), np.asarray(ys))
    return float(c.min()), float(r.min()), float(c.max()), float(r.max())


def valid_box(path: Path) -> tuple[int, int, int, int, str, int]:
    """Output pixel box of valid pixels (dataset mask), the CRS, the valid pixel count: a
    1/16 look for where they are, then full resolution there."""
    with rasterio.open(path) as src:
        factor = 16
        coarse = src.dataset_mask(out_shape=(max(1, src.height // factor),
                                             max(1, src.width // factor))) > 0
        rows, cols = np.nonzero(coarse)
        sy, sx = src.height / coarse.shape[0], src.width / coarse.shape[1]
        r0 = max(0, int((rows.min() - 1) * sy))
        c0 = max(0, int((cols.min() - 1) * sx))
        r1 = min(src.height, int((rows.max() + 2) * sy))
        c1 = min(src.width, int((cols.max() + 2) * sx))
        mask = src.dataset_mask(window=Window(c0, r0, c1 - c0, r1 - r0)) > 0
        rows, cols = np.nonzero(mask)
        return (c0 + int(cols.min()), r0 + int(rows.min()), c0 + int(cols.max()) + 1,
                r0 + int(rows.max()) + 1, str(src.crs), int(mask.sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sarcolor-product-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    sarcolor = [sys.executable, "-m", "sar_colorizer", "-q"]
    try:
        start = time.perf_counter()
        safe, archive, block_tif = build_product(folder)
        print(f"built the product in {time.perf_counter() - start:.0f} s: {safe.name} "
              f"(26102 x 16705 px, VV+VH, {BLOCK} x {BLOCK} px of data at line {BLOCK_ROW}, "
              f"pixel {BLOCK_COL}); zip {archive.stat().st_size / 2**20:.0f} MB")
        runs = []
        for label, product in ((".SAFE", safe), (".zip", archive)):
            out = folder / f"calibrate{label.replace('.', '_')}.tif"
            runs.append((f"calibrate {label}", [*sarcolor, "calibrate", "--overwrite", str(product), str(out)],
                         out, product))
            if not args.skip_predict:
                out = folder / f"predict{label.replace('.', '_')}.tif"
                runs.append((f"predict {label}", [*sarcolor, "predict", "--overwrite", "--model",
                                                  args.model, str(product), str(out)], out, product))
        if not args.skip_predict:
            out = folder / "predict_block.tif"
            runs.append(("predict block GeoTIFF (4096 x 4096, same sigma0, VH)",
                         [*sarcolor, "predict", "--overwrite", "--model", args.model, "--bands", "VH",
                          str(block_tif), str(out)],
                         out, None))
        print("\n| run | wall s | peak RSS MB | output | valid px | block box (col0,row0,col1,row1): "
              "output vs geolocation grid |")
        print("|---|---|---|---|---|---|")
        for label, command, out, product in runs:
            wall, peak, status = timed(command, folder / "time.log")
            if status:
                print(f"| {label} | {wall:.1f} | {peak:.0f} | FAILED | | |")
                continue
            c0, r0, c1, r1, crs, count = valid_box(out)
            place = ""
            if product is not None:
                e = expected_box(safe, out)
                place = (f"({c0},{r0},{c1},{r1}) vs ({e[0]:.1f},{e[1]:.1f},{e[2]:.1f},{e[3]:.1f}); "
                         f"max edge offset {max(abs(c0 - e[0]), abs(r0 - e[1]), abs(c1 - e[2]), abs(r1 - e[3])):.1f} px")
            print(f"| {label} | {wall:.1f} | {peak:.0f} | {crs} | {count / 1e6:.2f} M | {place} |")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("command: python " + shlex.join(sys.argv))


if __name__ == "__main__":
    main()
