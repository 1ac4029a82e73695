"""Batch ``predict`` on a real ``distributed.LocalCluster`` of 2 worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from sar_colorizer.cli import cli

distributed = pytest.importorskip(
    "distributed", reason="needs the dask extra: pip install '.[dask]'"
)

REPO = Path(__file__).resolve().parents[2]


def _write_scene(path: Path, height: int, width: int, seed: int) -> Path:
    from affine import Affine

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    db = -17 + 5 * np.sin(yy / (30.0 + seed)) * np.cos(xx / 45.0) + rng.normal(0, 2, (height, width))
    profile = dict(
        driver="GTiff", width=width, height=height, count=1, dtype="float32", nodata=-9999.0,
        crs="EPSG:32631", transform=Affine(10, 0, 600000 + 5000 * seed, 0, -10, 4800000),
        tiled=True, blockxsize=256, blockysize=256,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(db.astype(np.float32)[None])
    return path


def _two_scenes(tmp_path: Path) -> tuple[Path, Path]:
    """Two small scenes in ``scenes/`` and an empty ``out/`` beside them."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for seed in range(2):
        _write_scene(scenes / f"scene{seed}_VH.tif", 120, 100, seed)
    out = tmp_path / "out"
    out.mkdir()
    return scenes, out


@pytest.fixture(autouse=True)
def _workers_import_this_checkout(monkeypatch):
    # Worker processes import sar_colorizer from PYTHONPATH: this checkout, as the test does.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_two_workers_match_the_sequential_batch_and_report_a_corrupt_input(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for seed in range(3):
        _write_scene(scenes / f"scene{seed}_VH.tif", 300, 280 + 20 * seed, seed)
    (scenes / "broken_VH.tif").write_bytes(b"II*\x00 this is not a complete GeoTIFF")

    runner = CliRunner()
    pattern = str(scenes / "*.tif")
    sequential = runner.invoke(
        cli, ["-q", "predict", pattern, "--output-dir", str(tmp_path / "seq"), "--format", "gtiff",
              "--confidence", str(tmp_path / "seq_confidence")]
    )
    parallel = runner.invoke(
        cli,
        ["-q", "predict", pattern, "--output-dir", str(tmp_path / "par"), "--format", "gtiff",
         "--confidence", str(tmp_path / "par_confidence"), "--workers", "2"],
    )
    for result in (sequential, parallel):
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines()[-1] == "3 done, 0 skipped, 1 failed"
        assert "broken_VH.tif" in result.output
    for seed in range(3):
        name = f"scene{seed}_VH.tif"
        np.testing.assert_array_equal(_pixels(tmp_path / "par" / name), _pixels(tmp_path / "seq" / name))
        # The confidence rasters of the shipped model's head, written by the workers too.
        confidence = f"scene{seed}_VH_confidence.tif"
        np.testing.assert_array_equal(_pixels(tmp_path / "par_confidence" / confidence),
                                      _pixels(tmp_path / "seq_confidence" / confidence))
        with rasterio.open(tmp_path / "par" / name) as src:
            assert src.crs == "EPSG:32631"
    assert sorted(p.name for p in (tmp_path / "par").iterdir()) == [
        f"scene{seed}_VH.tif" for seed in range(3)
    ]


def test_scheduler_and_workers_need_a_batch(tmp_path):
    result = CliRunner().invoke(cli, ["predict", "a.tif", "b.png", "--workers", "2"])
    assert result.exit_code == 2 and "--output-dir" in result.output


@pytest.mark.slow
def test_a_worker_killed_mid_scene_has_its_scene_rerun_and_nothing_half_written(tmp_path):
    from sar_colorizer.api import colorize_file
    from sar_colorizer.batch import BatchPlan, BatchSummary, Job, PredictOptions, colour_batch
    from sar_colorizer.cluster import local_cluster

    scenes = [_write_scene(tmp_path / f"big{seed}_VH.tif", 1800, 1600, seed) for seed in range(4)]
    out = tmp_path / "out"
    out.mkdir()
    jobs = [Job(input=p, output=out / f"{p.stem}.tif") for p in scenes]
    options = PredictOptions(driver="GTiff")
    killed: list[int] = []

    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())

        def kill_when_writing() -> None:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not killed:
                if any(p.name.startswith(".") and ".partial" in p.name for p in out.iterdir()):
                    time.sleep(0.5)  # well inside a scene
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_writing, daemon=True)
        killer.start()
        plan = BatchPlan(inputs=list(scenes), jobs=jobs, summary=BatchSummary())
        summary = colour_batch(plan, "default", options, progress=False,
                               executor=client.get_executor())
        killer.join()

    assert killed, "no worker was killed: the scenes finished before one started writing"
    assert summary.errors == [] and summary.done == 4
    assert sorted(p.name for p in out.iterdir()) == sorted(j.output.name for j in jobs)
    reference = tmp_path / "reference.tif"
    colorize_file(scenes[0], reference)
    np.testing.assert_array_equal(_pixels(out / "big0_VH.tif"), _pixels(reference))


def test_workers_refuse_a_raster_sarcolor_did_not_write(tmp_path):
    """--overwrite on workers refuses a raster sarcolor did not write (without --force), as the
    sequential batch does: the foreign file keeps its bytes, the other scene is coloured."""
    scenes, out = _two_scenes(tmp_path)
    foreign = _write_scene(out / "scene0_VH.tif", 50, 40, seed=9)  # not written by sarcolor
    foreign_bytes = foreign.read_bytes()
    result = CliRunner().invoke(
        cli, ["-q", "predict", str(scenes / "*.tif"), "--output-dir", str(out),
              "--format", "gtiff", "--overwrite", "--workers", "2"],
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == "1 done, 0 skipped, 1 failed"
    assert "sarcolor did not write it" in result.output and "--force" in result.output
    assert foreign.read_bytes() == foreign_bytes
    with rasterio.open(out / "scene1_VH.tif") as src:
        assert src.count == 4


def test_workers_clean_up_only_dead_runs_temporaries(tmp_path):
    """The clean-up after a run on workers removes the temporary files of dead writers only
    (the owner check of io/atomic.py): another live run's temporary file beside an output
    stays."""
    import subprocess

    from sar_colorizer.io.atomic import temporary_path

    scenes, out = _two_scenes(tmp_path)

    def temporary_of(pid: int) -> Path:
        return Path(str(temporary_path(out / "scene1_VH.tif")).replace(
            f"-{os.getpid()}-", f"-{pid}-"))

    live = subprocess.Popen(["sleep", "300"])
    try:
        live_temporary = temporary_of(live.pid)
        live_temporary.write_bytes(b"another run is writing this")
        dead = subprocess.Popen(["true"])
        dead.wait()
        dead_temporary = temporary_of(dead.pid)
        dead_temporary.write_bytes(b"a killed run left this")
        result = CliRunner().invoke(
            cli, ["-q", "predict", str(scenes / "*.tif"), "--output-dir", str(out),
                  "--format", "gtiff", "--workers", "2"],
        )
        assert result.exit_code == 0, result.output
        assert live_temporary.read_bytes() == b"another run is writing this"
        assert not dead_temporary.exists()
        outputs = sorted(p.name for p in out.glob("*.tif") if not p.name.startswith("."))
        assert outputs == ["scene0_VH.tif", "scene1_VH.tif"]
    finally:
        live.kill()
        live.wait()
