#!/usr/bin/env python3
"""Benchmark batch ``predict``: 8 scenes sequentially, then on a local Dask cluster.

The scenes are 8 crops (``--crop`` px square, default 2048) of the T14RNT scene mosaic
(float32 dB, NaN nodata, built by ``../shared/tools/make_scene.py`` and cached in
``--scene-dir``). It prints:

* sequential: one process, the model loaded once, the scenes one after another with
  TensorFlow using every CPU (what ``sarcolor predict --output-dir`` does), wall time and peak
  resident memory of the process;
* distributed: ``--workers`` single-threaded worker processes (``sarcolor predict --workers``),
  the cluster's start-up (processes + model load per worker) and the colouring time, the
  speed-up over sequential with and without the start-up, and each worker's peak memory;
* whether the outputs are identical.

    python bench/cluster_bench.py                 # 8 crops of 2048 px, 2 workers
    python bench/cluster_bench.py --crop 1024 --workers 2

Numbers depend on the machine and on what else runs on it (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MAKE_SCENE = REPO / ".." / "shared" / "tools" / "make_scene.py"
SCENE_NAME = "T14RNT_sar_db.tif"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--scene-dir", type=Path, default=Path("/tmp/sarcolor-bench"))
    parser.add_argument("--crop", type=int, default=2048, help="side of each crop (px)")
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def ensure_crops(scene_dir: Path, crop: int, count: int) -> list[Path]:
    import rasterio
    from rasterio.windows import Window

    scene = scene_dir / SCENE_NAME
    if not scene.exists():
        scene_dir.mkdir(parents=True, exist_ok=True)
        print(f"building {scene} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(MAKE_SCENE), "T14RNT", str(scene_dir), "--kind", "sar", "--db"],
            check=True,
        )
    crops = sorted(scene_dir.glob(f"crop{crop}_*.tif"))[:count]
    if len(crops) == count:
        return crops
    crops = []
    with rasterio.open(scene) as src:
        # Crops that are mostly scene (the mosaic has nodata gaps between fragments).
        for row in range(src.height // crop):
            for col in range(src.width // crop):
                window = Window(col * crop, row * crop, crop, crop)
                data = src.read(window=window)
                if np.isfinite(data).mean() < 0.5 or len(crops) == count:
                    continue
                path = scene_dir / f"crop{crop}_{len(crops)}.tif"
                profile = dict(src.profile, width=crop, height=crop,
                               transform=src.window_transform(window))
                with rasterio.open(path, "w", **profile) as dst:
                    dst.write(data)
                crops.append(path)
    if len(crops) < count:
        sys.exit(f"the scene holds only {len(crops)} crops of {crop} px; use a smaller --crop")
    return crops


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB): VmHWM of its address space.

    Not ``getrusage``'s ``ru_maxrss``, which survives ``exec``: a worker process forked from
    this one would report this process's peak as its own.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    args = parse_args()
    crops = ensure_crops(args.scene_dir, args.crop, args.scenes)
    megapixels = args.scenes * args.crop * args.crop / 1e6
    out = Path(tempfile.mkdtemp(prefix="sarcolor-cluster-bench-"))
    print(f"{args.scenes} scenes of {args.crop} x {args.crop} px ({megapixels:.1f} Mpx), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    # Sequential, in this process (as `sarcolor predict --output-dir` runs).
    from sar_colorizer.bundle import cached_bundle as load_model
    from sar_colorizer.inference import colorize_raster

    t0 = time.perf_counter()
    bundle = load_model(args.model)
    load_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    for path in crops:
        colorize_raster(bundle, path, out / "seq" / path.name, progress=False)
    sequential = time.perf_counter() - t0
    print(f"sequential: model load {load_seconds:.1f} s, colouring {sequential:.1f} s "
          f"({megapixels / sequential:.2f} Mpx/s), peak memory {peak_rss_mb():.0f} MB")

    # Distributed: a local cluster of single-threaded worker processes.
    import distributed

    from sar_colorizer.batch import BatchPlan, BatchSummary, Job, PredictOptions, colour_batch
    from sar_colorizer.cluster import local_cluster

    t0 = time.perf_counter()
    with local_cluster(args.workers) as cluster, distributed.Client(cluster) as client:
        client.run(load_model, args.model)
        startup = time.perf_counter() - t0
        jobs = [Job(input=p, output=out / "par" / p.name) for p in crops]
        t1 = time.perf_counter()
        plan = BatchPlan(inputs=list(crops), jobs=jobs, summary=BatchSummary())
        summary = colour_batch(plan, args.model, PredictOptions(), progress=False,
                               executor=client.get_executor())
        failed = summary.errors
        parallel = time.perf_counter() - t1
        worker_mb = client.run(peak_rss_mb)
        worker_now = client.run(rss_mb)
    assert not failed, failed
    print(f"{args.workers} workers: start-up (processes + model) {startup:.1f} s, colouring "
          f"{parallel:.1f} s ({megapixels / parallel:.2f} Mpx/s)")
    print("per-worker peak memory: " + ", ".join(f"{mb:.0f} MB" for mb in worker_mb.values())
          + " (resident at the end: " + ", ".join(f"{mb:.0f} MB" for mb in worker_now.values()) + ")")
    print(f"speed-up: {sequential / parallel:.2f}x colouring only, "
          f"{sequential / (parallel + startup):.2f}x counting the cluster's start-up "
          f"(sequential model load {load_seconds:.1f} s not counted)")

    import rasterio

    same = all(
        np.array_equal(rasterio.open(out / "seq" / p.name).read(),
                       rasterio.open(out / "par" / p.name).read())
        for p in crops
    )
    print(f"outputs identical: {same}")
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
