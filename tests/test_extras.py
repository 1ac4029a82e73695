"""Optional extras: a missing one is a one-line error naming it, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from sar_colorizer.cli import cli

REPO = Path(__file__).resolve().parents[1]


def test_workers_without_the_dask_extra_is_a_one_line_error(monkeypatch, make_geotiff, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    scene = make_geotiff("a_VH.tif", np.full((40, 40), -15.0, dtype=np.float32))
    result = CliRunner().invoke(
        cli, ["predict", str(scene), "--output-dir", str(tmp_path / "out"), "--workers", "2"]
    )
    assert result.exit_code != 0
    assert 'pip install ".[dask]"' in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_dataarray_without_the_xarray_extra_names_it(monkeypatch):
    import pytest

    import sar_colorizer as sc
    from sar_colorizer.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(MissingExtraError, match=r'the xarray extra .* pip install "\.\[xarray\]"'):
        sc.colorize_dataarray(object())


def test_help_imports_neither_tensorflow_nor_the_extras():
    code = (
        "import sys; from sar_colorizer.cli import cli\n"
        "try:\n    cli(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    cli(['pairs', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'distributed', 'dask', 'xarray', 'pystac',\n"
        "                     'pystac_client', 'shapely') if m in sys.modules]\n"
        "print('heavy:', heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "--workers" in result.stdout and "--scheduler" in result.stdout
    assert "--s1-collection" in result.stdout
    assert "heavy: []" in result.stdout
