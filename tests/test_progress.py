"""Progress without a terminal (logs, CI, captured notebook output): whole lines with the
count, the rate and the time left, now and then; nothing with -q."""

from __future__ import annotations

import io
import re

import numpy as np
from click.testing import CliRunner

from sar_colorizer.cli import cli
from sar_colorizer.progress import progress_bar

LINE = re.compile(r"^(?P<desc>.+): (?P<n>\d+)/(?P<total>\d+) (?P<unit>\w+) \((?P<pct>\d+)%\) "
                  r"after [\d:]+, [\d.?]+ \w+/s, [\d:?]+ left$")


def test_off_a_terminal_progress_is_whole_lines_with_rate_and_time_left():
    stream = io.StringIO()  # not a terminal
    for _ in progress_bar(range(5), desc="scene.tif", unit="tiles", stream=stream, interval=0):
        pass
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 2  # the start and the end, at least
    for line in lines:
        assert LINE.match(line), line
    last = LINE.match(lines[-1])
    assert last and last["n"] == last["total"] == "5" and last["pct"] == "100"
    assert last["unit"] == "tiles"


def test_lines_come_at_most_once_per_interval():
    stream = io.StringIO()
    for _ in progress_bar(range(1000), desc="x", unit="tiles", stream=stream, interval=3600):
        pass
    assert len(stream.getvalue().splitlines()) == 2  # start and end only


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    for _ in progress_bar(range(5), desc="x", unit="tiles", stream=stream, enabled=False):
        pass
    assert stream.getvalue() == ""


def test_predict_without_a_terminal_reports_progress_and_quiet_hides_it(
    tiny_bundle, make_geotiff, tmp_path
):
    scene = make_geotiff("scene_VH.tif", np.full((64, 96), -15.0, dtype=np.float32))
    options = ["--model", str(tiny_bundle), "--tile-size", "64", "--overlap", "16"]
    result = CliRunner().invoke(cli, ["predict", str(scene), str(tmp_path / "a.tif"), *options])
    assert result.exit_code == 0, result.output
    lines = [m for m in map(LINE.match, result.output.splitlines()) if m]
    assert lines and lines[-1]["desc"] == "scene_VH.tif" and lines[-1]["pct"] == "100", result.output
    quiet = CliRunner().invoke(cli, ["-q", "predict", str(scene), str(tmp_path / "b.tif"), *options])
    assert quiet.exit_code == 0 and not any(map(LINE.match, quiet.output.splitlines()))
