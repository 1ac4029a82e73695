"""``sarcolor predict``: inputs are never replaced, foreign rasters need --force, checks before
the model loads, exit codes, and one line for an unexpected error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.cli import cli
from sar_colorizer.errors import InputError, OutputExistsError

MISSING_MODEL = "/nonexistent/model"  # any check that needs the model would fail on it


def _invoke(*args: object):
    return CliRunner().invoke(cli, ["-q", "predict", *map(str, args)])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def two_sar(make_geotiff) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    return tuple(  # type: ignore[return-value]
        make_geotiff(f"two/s{i}_VH.tif", (-15 + 3 * rng.standard_normal((40, 50))).astype("float32"))
        for i in range(2)
    )


def test_a_shell_glob_of_two_inputs_never_overwrites_the_second(two_sar):
    first, second = two_sar
    before = _digest(second)
    # `sarcolor predict two/*.tif` after the shell expanded it: the second SAR file is OUTPUT.
    result = _invoke("--model", MISSING_MODEL, first, second)
    assert result.exit_code == OutputExistsError.exit_code
    assert "sarcolor did not write it" in result.output and "--output-dir" in result.output
    result = _invoke("--model", MISSING_MODEL, first, second, "--overwrite")
    assert result.exit_code == OutputExistsError.exit_code
    assert "--overwrite --force" in result.output
    assert _digest(second) == before


def test_an_input_is_never_an_output_even_with_force(two_sar):
    first, _ = two_sar
    before = _digest(first)
    result = _invoke("--model", MISSING_MODEL, first, first, "--overwrite", "--force")
    assert result.exit_code == OutputExistsError.exit_code
    assert "is an input of this run" in result.output
    assert _digest(first) == before


def test_output_format_and_folder_are_checked_before_the_model_loads(two_sar, tmp_path):
    first, _ = two_sar
    result = _invoke("--model", MISSING_MODEL, first, tmp_path / "out.xyz")
    assert result.exit_code == InputError.exit_code
    assert "out.xyz" in result.output and "no such model" not in result.output
    (tmp_path / "file").write_text("x")
    result = _invoke("--model", MISSING_MODEL, first, tmp_path / "file" / "out.png")
    assert result.exit_code == InputError.exit_code
    assert "is a file, not a folder" in result.output


def test_force_needs_overwrite(two_sar, tmp_path):
    result = _invoke(two_sar[0], tmp_path / "o.png", "--force")
    assert result.exit_code == 2 and "--force only applies with --overwrite" in result.output


def test_an_unexpected_error_is_one_line_with_a_hint(two_sar, tmp_path, monkeypatch):
    monkeypatch.setattr("sar_colorizer.bundle.cached_bundle", lambda path: object())

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr("sar_colorizer.inference.colorize_raster", broken)
    result = _invoke(two_sar[0], tmp_path / "o.png")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == ["Error: unexpected error: RuntimeError: something inside broke; run with -v "
                     "for the traceback"]
    verbose = CliRunner().invoke(cli, ["-v", "predict", str(two_sar[0]), str(tmp_path / "p.png")])
    assert verbose.exit_code == 1 and "Traceback" in verbose.output
    assert "run with -v" not in verbose.output


def test_a_sarcolor_output_is_replaced_with_overwrite_only(two_sar, tmp_path):
    from sar_colorizer.io.raster import write_raster, written_by_sarcolor

    out = tmp_path / "colour.png"
    write_raster(out, np.zeros((3, 8, 8), np.uint8), {})
    assert written_by_sarcolor(out)
    result = _invoke("--model", MISSING_MODEL, two_sar[0], out)
    assert result.exit_code == OutputExistsError.exit_code
    assert "exists; pass --overwrite to replace it" in result.output
    # With --overwrite the checks pass and the run goes on to load the model.
    result = _invoke("--model", MISSING_MODEL, two_sar[0], out, "--overwrite")
    assert "no such model bundle" in result.output
