"""Fault injection: killed, interrupted and concurrent runs, a full disk, a read-only folder.

Every case runs the real command line in a subprocess, stops it at a seeded random moment
(or once it has started writing), then checks: the exit status, that no temporary file is
left behind (or, after SIGKILL, that the next run removes it and says so), that the same
command run again completes with a valid output, and that the inputs are unchanged.

A couple of representative cases run by default; the N-times loops are ``slow``
(``python -m pytest -m slow tests/test_faults.py``; ``SARCOLOR_FAULT_RUNS`` sets N, 3 by
default).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("SARCOLOR_FAULT_RUNS", "3"))
MARK = ".sarcolor-"  # in every temporary name of the package (sar_colorizer.io.atomic)
TIMEOUT = 600


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
            "CUDA_VISIBLE_DEVICES": "-1"}


def _command(*args: object) -> list[str]:
    return [sys.executable, "-m", "sar_colorizer", *map(str, args)]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if MARK in p.name)


def _digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _start_and_signal(command: list[str], cwd: Path, signum: int, *, delay: float | None = None,
                      watch: Path | None = None, extra: float = 0.0,
                      watch_for: str = "") -> tuple[int, str, float]:
    """Start ``command``; send ``signum`` after ``delay`` seconds, or ``extra`` seconds after a
    temporary file (whose name contains ``watch_for``) appears under ``watch``. Returns (exit status, output, seconds from the
    signal to the exit; 0 if it ended before the signal)."""
    process = subprocess.Popen(command, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    while process.poll() is None and time.monotonic() - started < TIMEOUT:
        if delay is not None and time.monotonic() - started >= delay:
            break
        if watch is not None and any(watch_for in p.name for p in _temporaries(watch)):
            time.sleep(extra)
            break
        time.sleep(0.02)
    sent = time.monotonic()
    if process.poll() is None:
        process.send_signal(signum)
        output, _ = process.communicate(timeout=TIMEOUT)
        return process.returncode, output, time.monotonic() - sent
    output, _ = process.communicate()
    return process.returncode, output, 0.0


def _check_stopped(status: int, output: str, signum: int, latency: float, folder: Path) -> bool:
    """Check how a signalled run ended; True if the signal stopped it (False: it finished
    first, or the signal came while the interpreter was already exiting)."""
    if latency == 0.0 or status in (0, -signum) and signum != signal.SIGKILL:
        assert status in (0, -signum), output
        return False
    if signum == signal.SIGKILL:
        assert status == -signal.SIGKILL
        return True
    assert status == 128 + signum, output
    assert "Traceback" not in output
    assert _temporaries(folder) == [], f"left after {signal.Signals(signum).name}"
    return True


def _scene(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A georeferenced float32 sigma0 scene in dB with speckle (UTM 31N, 10 m)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(-22, -8, width, dtype=np.float32)[None, :].repeat(height, 0)
    db = base + 10 * np.log10(rng.gamma(4.0, 0.25, (height, width))).astype(np.float32)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1,
               "dtype": "float32", "crs": "EPSG:32631", "tiled": True, "blockxsize": 256,
               "blockysize": 256, "transform": Affine(10, 0, 600000, 0, -10, 4800000)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(db[None])
        dst.set_band_description(1, "VH")
    return path


def _check_colour_output(path: Path, height: int, width: int) -> None:
    from sar_colorizer.io.raster import written_by_sarcolor

    with rasterio.open(path) as src:
        assert (src.count, src.height, src.width) == (4, height, width)
        data = src.read()  # every block decodes: the file is complete
    assert data[3].max() == 255
    assert written_by_sarcolor(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return _scene(tmp_path_factory.mktemp("faults") / "scene_VH.tif", 1536, 2048)


def _predict_case(tmp_path: Path, scene: Path, signum: int, *, delay: float | None,
                  watch_writing: bool, extra: float = 0.0, watch_for: str = "") -> dict[str, object]:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs = _digest([scene])
    command = _command("-q", "predict", scene, out_dir / "colour.tif", "--cog", "--overwrite")
    status, output, latency = _start_and_signal(
        command, tmp_path, signum, delay=delay, watch=out_dir if watch_writing else None,
        extra=extra, watch_for=watch_for,
    )
    left = _temporaries(out_dir)
    if _check_stopped(status, output, signum, latency, out_dir) and signum != signal.SIGKILL:
        assert latency < 5.0, f"took {latency:.1f} s to stop"  # well under, on an idle CPU
    again = _run(command, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    if left:
        assert "left by an interrupted run" in again.stderr
    assert _temporaries(out_dir) == []
    _check_colour_output(out_dir / "colour.tif", 1536, 2048)
    assert _digest([scene]) == inputs
    return {"status": status, "latency": latency, "left": len(left)}


# -- default run: representative cases ------------------------------------------------------

def test_sigkill_while_writing_leaves_temporaries_the_next_run_removes(tmp_path, scene):
    result = _predict_case(tmp_path, scene, signal.SIGKILL, delay=None, watch_writing=True,
                           extra=0.5)
    assert result["status"] == -signal.SIGKILL and result["left"] > 0


def test_sigterm_during_cog_conversion_cleans_up_promptly_and_exits_143(tmp_path, scene):
    # ".partial.tif" appears when GDAL starts converting the staged GeoTIFF to a COG.
    result = _predict_case(tmp_path, scene, signal.SIGTERM, delay=None, watch_writing=True,
                           extra=0.0, watch_for=".partial.tif")
    assert result["status"] == 143


def test_two_concurrent_writers_of_one_output(tmp_path, scene):
    """The first run claims the output before its work: the second is refused at once (while
    the first still computes), not after computing the whole scene too."""
    out = tmp_path / "same.tif"
    command = _command("-q", "predict", scene, out)
    first = subprocess.Popen(command, cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    claim = tmp_path / ".same.tif.sarcolor-claim"
    deadline = time.monotonic() + TIMEOUT
    while not claim.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert claim.exists(), "the first run never claimed its output"
    second = _run(command, tmp_path)
    still_running = first.poll() is None
    first_status, first_err = first.wait(timeout=TIMEOUT), first.stderr.read()  # type: ignore[union-attr]
    assert first_status == 0, first_err[-2000:]
    assert second.returncode == 4, second.stderr  # OutputExistsError
    assert still_running, "the second run was refused only after the first had finished"
    refused = second.stderr.strip().splitlines()
    assert len(refused) == 1 and f"{out} is being written by another run (process " \
        f"{first.pid})" in refused[0], refused
    _check_colour_output(out, 1536, 2048)
    assert _temporaries(tmp_path) == []


# -- full disk and read-only folder ---------------------------------------------------------

def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    path = tmp_path / "disk"
    _mount_tmpfs(path, "size=2m")
    yield path
    subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def read_only_folder(tmp_path):
    path = tmp_path / "ro"
    _mount_tmpfs(path, "ro,size=1m")
    yield path
    subprocess.run(["umount", str(path)], check=False)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, scene, small_disk):
    result = _run(_command("-q", "predict", scene, small_disk / "colour.tif"), tmp_path)
    assert result.returncode == 7, result.stderr[-2000:]  # OutputError
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines  # no GDAL lines before it
    assert lines[0].startswith(f"Error: {small_disk / 'colour.tif'}: the disk is full in "
                               f"{small_disk}"), lines[0]
    assert "Traceback" not in result.stderr
    assert list(small_disk.iterdir()) == []


def test_read_only_output_folder_is_one_line(tmp_path, scene, read_only_folder):
    result = _run(_command("predict", scene, read_only_folder / "colour.png"), tmp_path)
    assert result.returncode == 7, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "Read-only file system" in last or "cannot" in last
    assert "Traceback" not in result.stderr


# -- slow: N times each, at seeded random moments ------------------------------------------

def _seeded_delays(name: str, low: float, high: float) -> list[float]:
    rng = np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    return [float(x) for x in rng.uniform(low, high, RUNS)]


@pytest.fixture(scope="module")
def predict_seconds(scene, tmp_path_factory) -> float:
    """How long one undisturbed predict takes here (the range of the random moments)."""
    folder = tmp_path_factory.mktemp("baseline")
    started = time.monotonic()
    result = _run(_command("-q", "predict", scene, folder / "c.tif", "--cog"), folder)
    assert result.returncode == 0, result.stderr[-2000:]
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda s: signal.Signals(s).name)
def test_predict_signal_at_random_moments(tmp_path, scene, predict_seconds, signum):
    name = signal.Signals(signum).name
    for index, delay in enumerate(_seeded_delays(f"predict-{name}", 0.2, predict_seconds)):
        case = tmp_path / str(index)
        case.mkdir()
        _predict_case(case, scene, signum, delay=delay, watch_writing=False)


PREPROCESS_ARGS = ("--chip-size", "32", "--band-names", "VH", "--val-fraction", "0.34",
                   "--chips-per-shard", "8", "--overwrite")
TRAIN_ARGS = ("--epochs", "4", "--depth", "2", "--base-filters", "4", "--crop-size", "32",
              "--batch-size", "4", "--steps-per-epoch", "3", "--patience", "10", "--overwrite")


def _check_chips(folder: Path) -> None:
    from sar_colorizer.data.stats import read_stats

    stats = read_stats(folder)
    import tensorflow as tf

    counted = sum(1 for shard in folder.glob("train-*.tfrecord")
                  for _ in tf.data.TFRecordDataset(str(shard)))
    assert counted == stats["n_chips"]["train"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
def test_preprocess_signal_at_random_moments(tmp_path, signum, write_pairs):
    pairs = write_pairs(tmp_path / "pairs", 6, 96, seed=1, georeferenced=True).root
    inputs = _digest(sorted(pairs.rglob("*.tif")))
    command = _command("-q", "preprocess", pairs, tmp_path / "chips", *PREPROCESS_ARGS)
    for delay in _seeded_delays(f"preprocess-{signal.Signals(signum).name}", 0.5, 12.0):
        status, output, latency = _start_and_signal(command, tmp_path, signum, delay=delay)
        _check_stopped(status, output, signum, latency, tmp_path)
        again = _run(command, tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        assert _temporaries(tmp_path) == []
        _check_chips(tmp_path / "chips")
    assert _digest(sorted(pairs.rglob("*.tif"))) == inputs


@pytest.fixture(scope="module")
def chips(tmp_path_factory, write_pairs) -> Path:
    root = tmp_path_factory.mktemp("train-faults")
    pairs = write_pairs(root / "pairs", 6, 96, seed=1, georeferenced=True).root
    result = _run(_command("-q", "preprocess", pairs, root / "chips", *PREPROCESS_ARGS), root)
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "chips"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
def test_train_signal_at_random_moments_resumes(tmp_path, chips, signum):
    from sar_colorizer.bundle import load_bundle

    for index, delay in enumerate(
        _seeded_delays(f"train-{signal.Signals(signum).name}", 4.0, 25.0)
    ):
        model = tmp_path / f"model{index}"
        command = _command("-q", "train", chips, model, *TRAIN_ARGS)
        status, output, latency = _start_and_signal(command, tmp_path, signum, delay=delay)
        if _check_stopped(status, output, signum, latency, tmp_path):
            assert not model.exists()  # never a half-written bundle
        again = _run(command, tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "Traceback" not in again.stderr
        metadata = json.loads((model / "bundle.json").read_text())
        assert metadata["training"]["epochs_run"] >= 1
        load_bundle(model)
        assert not model.with_name(model.name + ".work").exists()
        assert _temporaries(tmp_path) == []
