"""Bad inputs and faults against the command line, each run as its own process.

For every case: the exit code, the first line of the message (the error line, or the last
"wrote" line of a run that succeeds), how many lines the run printed (progress lines apart),
and what is left in the output folder besides the outputs a successful run should leave
(temporary files, half-written outputs, stray sidecars). Cases with a signal start the command,
wait until it is writing, send the signal, then run the same command again.

    python bench/fault_table.py                 # every case; prints a markdown table
    python bench/fault_table.py --only 1,2,44   # some cases
    python bench/fault_table.py --list          # the cases

It uses the committed samples (data/samples) and, where present, ../shared/data; it writes only
into a temporary folder (--keep DIR keeps it). A full disk and a read-only folder need a tmpfs
(root); without one those cases say so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
CAMARGUE = SAMPLES / "spatialist-s1-vv-db" / "S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db.tif"
BEN_SAMPLES = SAMPLES / "bigearthnet-s1-s2"
SHARED = REPO.parent / "shared" / "data"
TIMEOUT = 900
PROGRESS = re.compile(r"^.+: \d+/\d+ \w+ \(\d+%\) after ")
MARK = ".sarcolor-"
TEMPORARY = r"\.sarcolor-\d+-[0-9a-f]{8}\."


# -- fixtures -------------------------------------------------------------------------------


def _write(path: Path, array: np.ndarray, *, nodata: float | None = None, geo: bool = True,
           driver: str = "GTiff") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    bands = array[None] if array.ndim == 2 else array
    profile = {"driver": driver, "height": bands.shape[1], "width": bands.shape[2],
               "count": bands.shape[0], "dtype": bands.dtype}
    if geo:
        profile.update(crs="EPSG:32631", transform=Affine(10, 0, 600000, 0, -10, 4800000))
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def make_fixtures(root: Path) -> dict[str, Path]:
    """Inputs of every kind, in ``root/in`` (read-only for the cases)."""
    inp = root / "in"
    inp.mkdir(parents=True)
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    f: dict[str, Path] = {"camargue": CAMARGUE}
    with rasterio.open(CAMARGUE) as src:
        db = src.read(1)
    rng = np.random.default_rng(0)
    big = np.tile(db, (12, 10))[:2400, :2400] + rng.normal(0, 0.5, (2400, 2400)).astype("float32")
    f["big"] = _write(inp / "big_VH.tif", big.astype("float32"))
    (inp / "empty.tif").write_bytes(b"")
    f["empty"] = inp / "empty.tif"
    f["truncated"] = inp / "truncated.tif"
    f["truncated"].write_bytes(CAMARGUE.read_bytes()[: CAMARGUE.stat().st_size // 3])
    f["text"] = inp / "notes.tif"
    f["text"].write_text("this is not a raster\n")
    f["json"] = next(BEN_SAMPLES.glob("S1/*/*_labels_metadata.json"))
    f["photo"] = REPO / "models" / "visual_camargue.png"  # an RGB picture
    f["all_nan"] = _write(inp / "all_nan_VH.tif", np.full((200, 200), np.nan, "float32"),
                          nodata=float("nan"))
    f["all_zero"] = _write(inp / "all_zero_VH.tif", np.zeros((200, 200), "float32"))
    f["one_pixel"] = _write(inp / "one_pixel_VH.tif", np.full((1, 1), -15.0, "float32"))
    mostly = np.full((400, 400), -9999.0, "float32")
    mostly[:6, :6] = db[:6, :6]
    f["mostly_nodata"] = _write(inp / "mostly_nodata_VH.tif", mostly, nodata=-9999.0)
    grey = np.clip((db - db.min()) / (db.max() - db.min()) * 255, 0, 255).astype("uint8")
    f["no_georef_png"] = _write(inp / "nogeo_VH.png", grey, geo=False, driver="PNG")
    for name in ("b1", "b2", "b3"):
        f[f"batch_{name}"] = _write(inp / "batch" / f"{name}_VH.tif", big[:1200, :1200])
    # broken bundles, from the shipped one
    default = REPO / "sar_colorizer" / "weights" / "default"
    for name in ("no_keras", "bad_json", "truncated_keras", "two_bands"):
        folder = inp / "bundles" / name
        shutil.copytree(default, folder)
    (inp / "bundles" / "no_keras" / "model.keras").unlink()
    (inp / "bundles" / "bad_json" / "bundle.json").write_text('{"bands": ["VH"], ')
    keras_file = inp / "bundles" / "truncated_keras" / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:50_000])
    meta = json.loads((inp / "bundles" / "two_bands" / "bundle.json").read_text())
    meta["bands"], meta["input_channels"] = ["VV", "VH"], 2
    (inp / "bundles" / "two_bands" / "bundle.json").write_text(json.dumps(meta))
    f.update({f"bundle_{p.name}": p for p in (inp / "bundles").iterdir()})
    # pairs: one of mismatched sizes among good ones
    pairs = inp / "pairs_mismatch"
    for i, (sar, opt) in enumerate(_ben_pairs()[:3]):
        (pairs / "sar").mkdir(parents=True, exist_ok=True)
        (pairs / "opt").mkdir(parents=True, exist_ok=True)
        os.symlink(sar, pairs / "sar" / f"p{i}.tif")
        os.symlink(opt, pairs / "opt" / f"p{i}.tif")
    # like the BigEarthNet pairs (2 SAR bands, no georeference), but of different sizes
    _write(pairs / "sar" / "odd.tif", np.full((2, 120, 120), -15.0, "float32"), geo=False)
    _write(pairs / "opt" / "odd.tif", np.full((3, 100, 100), 800, "uint16"), geo=False)
    f["pairs_mismatch"] = pairs
    (inp / "pairs_empty").mkdir()
    f["pairs_empty"] = inp / "pairs_empty"
    f["csv_columns"] = inp / "columns.csv"
    f["csv_columns"].write_text("image,label\na.tif,b.tif\n")
    f["csv_missing"] = inp / "missing.csv"
    f["csv_missing"].write_text("sar,optical,split\nnope/a.tif,nope/b.tif,test\n")
    f["ben"] = BEN_SAMPLES
    return f


def _ben_pairs() -> list[tuple[Path, Path]]:
    """(SAR, optical) of the shared BigEarthNet test split, else none."""
    manifest = SHARED / "bigearthnet-configilm" / "pairs.csv"
    if not manifest.is_file():
        return []
    rows = [line.split(",") for line in manifest.read_text().splitlines()[1:]]
    return [(manifest.parent / r[0], manifest.parent / r[1]) for r in rows if r[2] == "test"]


# -- running --------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
            "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def sarcolor(*args: object) -> list[str]:
    return [sys.executable, "-m", "sar_colorizer", *map(str, args)]


@dataclass
class Case:
    name: str
    args: Callable[[dict[str, Path], Path], list[object]]
    expect: tuple[str, ...] = ()  # what a successful run leaves in out/ ("x/": all in x)
    signum: int | None = None  # send this once the run writes, then run again
    prepare: Callable[[dict[str, Path], Path], None] | None = None
    note: str = ""
    second: Callable[[dict[str, Path], Path], list[object]] | None = None  # run concurrently
    check: Callable[[dict[str, Path], Path], str] | None = None  # extra finding, after the run
    # a file name matching this (re.search) marks "writing": by default a temporary of the
    # package (".c.sarcolor-PID-HEX.partial.tif", ".staging.tif"), not the claim taken before
    wait_for: str = TEMPORARY
    kept: str = ""  # a folder kept on purpose (training's resume state), listed as one entry
    extra_wait: float = 1.0
    succeeds: bool = False  # a good input among the cases: exit 0 is the clean end


@dataclass
class Outcome:
    code: int | str
    message: str
    lines: int
    seconds: float
    leftovers: list[str] = field(default_factory=list)
    rerun: str = ""
    extra: str = ""
    traceback: bool = False
    rerun_clean: bool = True
    info: int = 0  # of the lines, those logged at INFO (what a run reads, how it went)


def _message(stderr: str, code: int) -> tuple[str, int]:
    lines = [line for line in stderr.splitlines() if line.strip() and not PROGRESS.match(line)]
    if code == 0:
        wrote = [line for line in lines if line.startswith("INFO: wrote") or "done" in line]
        return (wrote[-1] if wrote else (lines[-1] if lines else "")), len(lines)
    for prefix in (("Error", "Interrupted", "ERROR"), ("Usage",)):
        for line in lines:
            if line.startswith(prefix):
                return line, len(lines)
    return (lines[0] if lines else ""), len(lines)


def _info_lines(stderr: str) -> int:
    return sum(line.startswith("INFO:") for line in stderr.splitlines())


def _leftovers(work: Path, expect: tuple[str, ...], kept: str = "") -> list[str]:
    out = work / "out"
    found = []
    n_kept = 0
    if out.exists():
        for path in sorted(out.rglob("*")):
            if path.is_dir() and any(path.iterdir()):
                continue
            relative = path.relative_to(out).as_posix()
            if kept and relative.startswith(kept) and MARK not in relative:
                n_kept += 1
            elif relative not in expect and not any(
                    e.endswith("/") and relative.startswith(e) for e in expect):  # a folder
                found.append(relative + ("/" if path.is_dir() else ""))
    if n_kept:
        found.append(f"{kept} ({n_kept} files: the resume state, kept on purpose)")
    found += [p.relative_to(work).as_posix() for p in sorted(work.glob(f"in*/**/*{MARK}*"))]
    found += [p.relative_to(REPO).as_posix() for p in sorted(SAMPLES.rglob(f"*{MARK}*"))]
    return found


def _watch(process: subprocess.Popen, folder: Path, marker: str, extra: float) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if folder.exists() and any(re.search(marker, p.name) for p in folder.rglob("*")):
            time.sleep(extra)
            return
        time.sleep(0.05)


def run_case(case: Case, fixtures: dict[str, Path], work: Path) -> Outcome:
    work.mkdir(parents=True)
    (work / "out").mkdir()
    if case.prepare:
        case.prepare(fixtures, work)
    command = sarcolor(*case.args(fixtures, work))
    started = time.monotonic()
    note = ""
    if case.signum is None and case.second is None:
        result = subprocess.run(command, cwd=work, env=_env(), capture_output=True, text=True,
                                timeout=TIMEOUT)
        code, stderr = result.returncode, result.stderr + result.stdout
    elif case.second is not None:
        first = subprocess.Popen(command, cwd=work, env=_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        second = subprocess.run(sarcolor(*case.second(fixtures, work)), cwd=work, env=_env(),
                                capture_output=True, text=True, timeout=TIMEOUT)
        second_seconds = time.monotonic() - started
        out, err = first.communicate(timeout=TIMEOUT)
        code, stderr = second.returncode, second.stderr
        message, lines = _message(stderr, code)
        return Outcome(code, message, lines, second_seconds, _leftovers(work, case.expect, case.kept),
                       extra=f"first run: exit {first.returncode}", info=_info_lines(stderr),
                       traceback="Traceback" in stderr + err,
                       rerun_clean=first.returncode == 0)
    else:
        process = subprocess.Popen(command, cwd=work, env=_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        assert case.signum is not None
        _watch(process, work, case.wait_for, case.extra_wait)
        missed = process.poll() is not None
        process.send_signal(case.signum)
        out, err = process.communicate(timeout=TIMEOUT)
        code, stderr = process.returncode, err + out
        if missed:
            note = MISSED + "the run ended before it was writing"
    seconds = time.monotonic() - started
    message, lines = _message(stderr, code if isinstance(code, int) and code >= 0 else 1)
    if isinstance(code, int) and code < 0:
        message = f"(killed by {signal.Signals(-code).name}: no message, no clean-up)"
    outcome = Outcome(code, message, lines, seconds, _leftovers(work, case.expect, case.kept),
                      traceback="Traceback" in stderr, info=_info_lines(stderr))
    if note:
        outcome.extra = note
    if case.signum is not None:
        again = subprocess.run(command, cwd=work, env=_env(), capture_output=True, text=True,
                               timeout=TIMEOUT)
        notes = [line for line in again.stderr.splitlines()
                 if "left by an interrupted run" in line or "resum" in line.lower()]
        left = _leftovers(work, case.expect, case.kept)
        outcome.traceback |= "Traceback" in again.stderr
        outcome.rerun_clean = again.returncode == 0 and not _unexpected(left)
        outcome.rerun = (f"rerun: exit {again.returncode}"
                         + (f", {len(notes)} line(s) like '{_short(notes[0])}'" if notes else "")
                         + (f"; left: {', '.join(left)}" if left else "; nothing left"))
    if case.check:
        outcome.extra = "; ".join(x for x in (outcome.extra, case.check(fixtures, work)) if x)
    return outcome


def _unexpected(leftovers: list[str]) -> list[str]:
    return [entry for entry in leftovers if not entry.endswith("kept on purpose)")]


def verdict(case: Case, o: Outcome) -> tuple[bool, str]:
    """Whether a case ended clean, and why not.

    Clean: no traceback and no failed check (a world file, a GeoTIFF named .png, ...); a good
    input succeeds and leaves only its outputs; a signal ends the run with 128 + its number
    (kill -9: killed) and the same command then succeeds and leaves nothing but the documented
    resume state (it removes what kill -9 left); of two runs to one output the second is
    refused at once (exit 4) and the first succeeds; a bad input exits non-zero with one error
    line (INFO lines aside; click's usage errors: its three) and leaves nothing."""
    if o.traceback:
        return False, "a traceback"
    if o.extra.startswith(BAD):
        return False, o.extra
    code = o.code if isinstance(o.code, int) else -1
    if case.succeeds:
        if code != 0:
            return False, f"a good input failed (exit {code})"
    elif case.signum is not None:
        if o.extra.startswith(MISSED):
            return False, "the run ended before the signal"
        if code not in (-case.signum, 128 + case.signum):
            return False, f"exit {code} after {signal.Signals(case.signum).name}"
        if not o.rerun_clean:
            return False, "the same command again did not end clean"
        return True, ""
    elif case.second is not None:
        if code != 4 or not o.rerun_clean:
            return False, f"second run exit {code}, {o.extra}"
    elif code <= 0:
        return False, f"exit {code} for a bad input"
    elif o.lines - o.info != 1 and not (code == 2 and o.lines <= 3):
        return False, f"{o.lines - o.info} lines besides INFO lines"
    if _unexpected(o.leftovers):
        return False, "files left"
    return True, ""


BAD = "NOT CLEAN: "
MISSED = "NOT SIGNALLED: "


def _short(text: str, width: int = 110) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


# -- checks after a run ----------------------------------------------------------------------


def _ab_descriptions(_f: dict[str, Path], work: Path) -> str:
    path = work / "out" / "ab.tif"
    if not path.exists():
        return "no ab.tif"
    with rasterio.open(path) as src:
        text = f"ab.tif band descriptions {src.descriptions}"
        return text if src.descriptions == ("a_cielab", "b_cielab") else BAD + text


def _world_file(_f: dict[str, Path], work: Path) -> str:
    sidecars = sorted(p.name for p in (work / "out").iterdir() if p.name != "c.png")
    text = f"beside c.png: {sidecars or 'nothing'}"
    world = [name for name in sidecars if name.endswith((".pgw", ".wld"))]
    return BAD + text + " (a world file placing it at 0, 0)" if world else text


def _compression(_f: dict[str, Path], work: Path) -> str:
    path = work / "out" / "c.tif"
    if not path.exists():
        return "no c.tif"
    with rasterio.open(path) as src:
        return BAD + f"c.tif written, compression {src.compression}"


def _driver(path: Path) -> str:
    if not path.exists():
        return f"no {path.name}"
    with rasterio.open(path) as src:
        text = f"{path.name} is a {src.driver} file"
    named = {".png": "PNG", ".jpg": "JPEG", ".tif": "GTiff"}.get(path.suffix)
    return text if src.driver == named else BAD + text


def _mount(path: Path, options: str) -> bool:
    path.mkdir(exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _small_disk(_f: dict[str, Path], work: Path) -> None:
    if not _mount(work / "out", "size=2m"):
        raise RuntimeError("cannot mount a tmpfs (needs root)")


def _read_only(_f: dict[str, Path], work: Path) -> None:
    if not _mount(work / "out", "ro,size=1m"):
        raise RuntimeError("cannot mount a tmpfs (needs root)")


def _existing(_f: dict[str, Path], work: Path) -> None:
    (work / "out" / "c.png").write_bytes(b"mine")


def _chips(f: dict[str, Path], work: Path) -> None:
    chips = f.get("chips")
    if chips is None:
        chips = work.parent / "chips"
        result = subprocess.run(sarcolor("-q", "preprocess", BEN_SAMPLES, chips, "--val-fraction",
                                         "0.34"), cwd=work, env=_env(), capture_output=True,
                                text=True, timeout=TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f"preprocess failed: {result.stderr[-500:]}")
        f["chips"] = chips


def _file_as_dir(_f: dict[str, Path], work: Path) -> None:
    (work / "out" / "file").write_text("a file")


TRAIN = ["--epochs", "6", "--depth", "2", "--base-filters", "8", "--downsample", "2",
         "--crop-size", "64", "--batch-size", "4", "--steps-per-epoch", "8", "--no-novelty"]


def cases() -> list[Case]:
    big = ["--tiles-per-call", "2"]
    c = [
        # inputs
        Case("missing input file", lambda f, w: ["predict", "nope.tif", "out/c.png"]),
        Case("empty file (0 bytes)", lambda f, w: ["predict", f["empty"], "out/c.png"]),
        Case("truncated GeoTIFF (first third)", lambda f, w: ["predict", f["truncated"], "out/c.png"]),
        Case("text file named .tif", lambda f, w: ["predict", f["text"], "out/c.png"]),
        Case("JSON file (BigEarthNet labels)", lambda f, w: ["predict", f["json"], "out/c.png"]),
        Case("RGB photo (8-bit PNG, 3 bands)", lambda f, w: ["predict", f["photo"], "out/c.png"]),
        Case("all-NaN raster", lambda f, w: ["predict", f["all_nan"], "out/c.tif"]),
        Case("all-zero raster", lambda f, w: ["predict", f["all_zero"], "out/c.tif"]),
        Case("1x1 raster", lambda f, w: ["predict", f["one_pixel"], "out/c.tif"],
             expect=("c.tif",), succeeds=True),
        Case("mostly nodata (36 of 160000 px valid)",
             lambda f, w: ["predict", f["mostly_nodata"], "out/c.tif"], expect=("c.tif",),
             succeeds=True),
        Case("a folder as input", lambda f, w: ["predict", w / "out", "out/c.png"]),
        Case("glob matching nothing (--output-dir)",
             lambda f, w: ["predict", "--output-dir", "out", "nothing/*.tif"]),
        # outputs
        Case("read-only output folder", lambda f, w: ["predict", f["camargue"], "out/c.png"],
             prepare=_read_only),
        Case("output in a missing folder (created)",
             lambda f, w: ["predict", f["camargue"], "out/new/c.png"],
             expect=("new/c.png", "new/c.pgw", "new/c.png.aux.xml"), succeeds=True),
        Case("output same as input (--overwrite)",
             lambda f, w: ["predict", f["camargue"], f["camargue"], "--overwrite"]),
        Case("output exists, no --overwrite", lambda f, w: ["predict", f["camargue"], "out/c.png"],
             prepare=_existing, expect=("c.png",)),
        Case("output exists, --overwrite (not written by sarcolor)",
             lambda f, w: ["predict", f["camargue"], "out/c.png", "--overwrite"],
             prepare=_existing, expect=("c.png", "c.pgw", "c.png.aux.xml"), succeeds=True),
        Case("unknown output extension (.xyz)", lambda f, w: ["predict", f["camargue"], "out/c.xyz"]),
        Case("--output-dir is a file",
             lambda f, w: ["predict", "--output-dir", "out/file", f["camargue"]],
             prepare=_file_as_dir, expect=("file",)),
        Case("output is an existing folder (taken as --output-dir)",
             lambda f, w: ["predict", f["camargue"], "out"],
             expect=tuple(f"{CAMARGUE.stem}{s}" for s in (".png", ".pgw", ".png.aux.xml")),
             succeeds=True),
        Case("no georeference, PNG output (world file?)",
             lambda f, w: ["predict", f["no_georef_png"], "out/c.png", "--pixel-size", "20"],
             expect=("c.png", "c.png.aux.xml"), check=_world_file, succeeds=True),
        Case("--ab-output band descriptions",
             lambda f, w: ["predict", f["camargue"], "out/c.tif", "--ab-output", "out/ab.tif"],
             expect=("c.tif", "ab.tif"), check=_ab_descriptions, succeeds=True),
        # bundles
        Case("--model: missing folder", lambda f, w: ["predict", "--model", "nope", f["camargue"], "out/c.png"]),
        Case("bundle without model.keras",
             lambda f, w: ["predict", "--model", f["bundle_no_keras"], f["camargue"], "out/c.png"]),
        Case("bundle.json not JSON",
             lambda f, w: ["predict", "--model", f["bundle_bad_json"], f["camargue"], "out/c.png"]),
        Case("model.keras truncated",
             lambda f, w: ["predict", "--model", f["bundle_truncated_keras"], f["camargue"], "out/c.png"]),
        Case("bundle.json says 2 bands, model has 1",
             lambda f, w: ["predict", "--model", f["bundle_two_bands"], f["camargue"], "out/c.png"]),
        Case("--model is a file",
             lambda f, w: ["predict", "--model", f["camargue"], f["camargue"], "out/c.png"]),
        # signals and concurrency (2400 x 2400 scene)
        Case("SIGINT while writing, then the same command",
             lambda f, w: ["predict", f["big"], "out/c.tif", *big], signum=signal.SIGINT,
             expect=("c.tif",)),
        Case("SIGTERM while writing, then the same command",
             lambda f, w: ["predict", f["big"], "out/c.tif", "--cog", *big], signum=signal.SIGTERM,
             expect=("c.tif",)),
        Case("SIGHUP while writing, then the same command",
             lambda f, w: ["predict", f["big"], "out/c.tif", *big], signum=signal.SIGHUP,
             expect=("c.tif",)),
        Case("kill -9 while writing, then the same command",
             lambda f, w: ["predict", f["big"], "out/c.tif", *big], signum=signal.SIGKILL,
             expect=("c.tif",)),
        Case("two runs to one output at once (second's exit)",
             lambda f, w: ["predict", f["big"], "out/c.tif", *big],
             second=lambda f, w: ["predict", f["big"], "out/c.tif", *big], expect=("c.tif",)),
        Case("SIGINT in a batch of 3, then the same command",
             lambda f, w: ["predict", "--output-dir", "out", "--suffix", ".tif", "--skip-existing",
                           f["batch_b1"], f["batch_b2"], f["batch_b3"], *big],
             signum=signal.SIGINT, expect=("b1_VH.tif", "b2_VH.tif", "b3_VH.tif"),
             wait_for=r"^b1_VH\.tif$", extra_wait=0.3),  # the first written, the second begun
        Case("SIGINT during training, then the same command (resume)",
             lambda f, w: ["train", f["chips"], "out/m", *TRAIN], signum=signal.SIGINT,
             prepare=_chips, wait_for="backup", extra_wait=2.0, kept="m.work/",
             expect=("m/model.keras", "m/model.onnx", "m/bundle.json", "m/training_log.csv",
                     "m/learning_curves.png")),
        Case("kill -9 during training, then the same command (resume)",
             lambda f, w: ["train", f["chips"], "out/m", *TRAIN], signum=signal.SIGKILL,
             prepare=_chips, wait_for="backup", extra_wait=2.0, kept="m.work/",
             expect=("m/model.keras", "m/model.onnx", "m/bundle.json", "m/training_log.csv",
                     "m/learning_curves.png")),
        Case("SIGTERM during preprocess, then the same command",
             lambda f, w: ["preprocess", f["ben"], "out/chips", "--val-fraction", "0.34"],
             signum=signal.SIGTERM, extra_wait=0.2,
             expect=("chips/",)),
        # pairs
        Case("eval: pairs folder missing", lambda f, w: ["eval", "default", "nope", "--report", "out/r"]),
        Case("eval: empty pairs folder",
             lambda f, w: ["eval", "default", f["pairs_empty"], "--report", "out/r"]),
        Case("eval: CSV without sar/optical columns",
             lambda f, w: ["eval", "default", f["csv_columns"], "--report", "out/r"]),
        Case("eval: CSV naming missing files",
             lambda f, w: ["eval", "default", f["csv_missing"], "--report", "out/r"]),
        Case("eval: one pair of mismatched sizes among 4",
             lambda f, w: ["eval", "default", f["pairs_mismatch"], "--report", "out/r"],
             expect=("r/report.json", "r/report.md", "r/report.html", "r/grid.png",
                     "r/confidence_deciles.png")),
        Case("preprocess: one pair of mismatched sizes",
             lambda f, w: ["preprocess", f["pairs_mismatch"], "out/chips"]),
        Case("eval: --split that no pair has",
             lambda f, w: ["eval", "default", f["ben"], "--split", "val", "--report", "out/r"]),
        # disk
        Case("full disk (2 MB tmpfs), GeoTIFF output",
             lambda f, w: ["predict", f["big"], "out/c.tif", *big], prepare=_small_disk),
        # creation options
        Case("--co COMPRESS=FOO", lambda f, w: ["predict", f["camargue"], "out/c.tif", "--co", "COMPRESS=FOO"],
             check=_compression),
        Case("--co FOO=BAR (unknown option)",
             lambda f, w: ["predict", f["camargue"], "out/c.tif", "--co", "FOO=BAR"], check=_compression),
        Case("--co without '='", lambda f, w: ["predict", f["camargue"], "out/c.tif", "--co", "LZW"]),
        Case("--co TILED=YES on a PNG", lambda f, w: ["predict", f["camargue"], "out/c.png", "--co", "TILED=YES"]),
        Case("--cog with a .png name", lambda f, w: ["predict", f["camargue"], "out/c.png", "--cog"],
             check=lambda f, w: _driver(w / "out" / "c.png")),
        # command line
        Case("unknown option", lambda f, w: ["predict", "--colour", f["camargue"], "out/c.png"]),
        Case("train: folder without chips", lambda f, w: ["train", f["pairs_empty"], "out/m"]),
        Case("export: output exists",
             lambda f, w: ["export", "default", "out/file", "--format", "savedmodel"],
             prepare=_file_as_dir, expect=("file",)),
    ]
    return c


PREFACE = """# Bad inputs and faults: what each command does

Each case runs `sarcolor` as its own process on the committed samples (and, for pairs, the
shared BigEarthNet test split), in a temporary folder. Columns: the exit code; the first line
of the message (the error line, or the last "wrote" line of a run that succeeds); how many lines
the run printed, progress lines apart; its seconds; what is left in the output folder besides
the outputs a successful run leaves (temporary files, claims, half-written outputs, stray
sidecars); for a signal, what the same command does when run again. A case is clean when:
{rule}

Regenerate (as root: the full-disk and read-only cases mount a small tmpfs; the table is
printed to standard output):

    {command} > docs/fault_cases.md
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case numbers (1-based)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    all_cases = cases()
    if args.list:
        for i, case in enumerate(all_cases, 1):
            print(f"{i:2d} {case.name}")
        return
    chosen = ([int(x) for x in args.only.split(",")] if args.only
              else list(range(1, len(all_cases) + 1)))
    root = args.keep or Path(tempfile.mkdtemp(prefix="sarcolor-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    fixtures = make_fixtures(root)
    print(PREFACE.format(command=shlex.join(["python", *sys.argv]),
                         rule=" ".join((verdict.__doc__ or "").split()).partition("Clean: ")[2]))
    print("| # | case | exit | message (first line) | lines | s | left in out/ | after | clean |")
    print("|---|---|---|---|---|---|---|---|---|")
    results: list[tuple[int, bool, str]] = []
    try:
        for number in chosen:
            case = all_cases[number - 1]
            work = root / f"case{number:02d}"
            try:
                o = run_case(case, fixtures, work)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"| {number} | {case.name} | - | not run: {_short(str(error))} | | | | | no |",
                      flush=True)
                results.append((number, False, "not run"))
                continue
            finally:
                if (work / "out").is_mount():
                    subprocess.run(["umount", str(work / "out")], check=False)
            after = "; ".join(x for x in (o.rerun, o.extra) if x)
            clean, why = verdict(case, o)
            results.append((number, clean, why))
            print(f"| {number} | {case.name} | {o.code} | {_short(o.message)} | {o.lines} | "
                  f"{o.seconds:.1f} | {', '.join(o.leftovers) or 'nothing'} | {_short(after, 160)} "
                  f"| {'yes' if clean else 'NO: ' + _short(why, 60)} |", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    not_clean = [f"{n} ({why})" for n, clean, why in results if not clean]
    print(f"\n{len(results)} cases, {len(results) - len(not_clean)} clean"
          + (f"; not clean: {', '.join(not_clean)}" if not_clean else ""))


if __name__ == "__main__":
    main()
