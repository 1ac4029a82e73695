"""``sarcolor calibrate``: products made from the real metadata (../shared/data/s1-grd-safe);
bad products end in one line naming what is missing and what works, a non-zero exit, and no
output."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from s1_products import NAME, make_product

from sar_colorizer.cli import cli
from sar_colorizer.errors import ProductError


def _sigma0(shape, pol):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return 0.04 * (1.2 + np.sin(rows / 15.0)) * (1.0 if pol == "VV" else 0.25) + 0 * cols


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return make_product(tmp_path_factory.mktemp("product"), _sigma0, factor=16,
                        dn_dtype="float32")


def _invoke(*args):
    return CliRunner().invoke(cli, ["-q", "calibrate", *map(str, args)])


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def _copy(product, tmp_path: Path) -> Path:
    safe = tmp_path / product.safe.name
    shutil.copytree(product.safe, safe)
    return safe


def test_writes_db_bands_by_polarisation(product, tmp_path):
    out = tmp_path / "sigma0_db.tif"
    result = _invoke(product.safe, out)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.driver == "GTiff" and src.count == 2 and src.dtypes == ("float32", "float32")
        assert src.descriptions == ("VV", "VH")
        assert src.crs == "EPSG:32633" and src.res == (160.0, 160.0)
        tags = src.tags()
        assert tags["SARCOLOR_INPUT_SCALE"] == "db"
        assert tags["SARCOLOR_INPUT_POLARISATIONS"] == "VV,VH"
        assert "no terrain correction" in tags["SARCOLOR_INPUT_GEOCODING"]
        vv, vh = src.read()
    finite = np.isfinite(vv)
    assert finite.mean() > 0.5 and (np.isfinite(vh) == finite).all()
    # VH was made 0.25 x VV: -6.02 dB (bilinear geocoding of a smooth field keeps the ratio)
    np.testing.assert_allclose((vh - vv)[finite], 10 * np.log10(0.25), atol=1e-3)
    # sigma0 0.04 x (1.2 + sin) spans 0.008 .. 0.088
    assert 10 * np.log10(0.008) - 0.01 < np.nanmin(vv) < 10 * np.log10(0.01)
    assert 10 * np.log10(0.08) < np.nanmax(vv) < 10 * np.log10(0.088) + 0.01


def test_manifest_and_zip_are_products_too(product, tmp_path):
    archive = product.zip(tmp_path / f"{NAME}.zip")
    for source, name in ((product.safe / "manifest.safe", "a.tif"), (archive, "b.tif")):
        result = _invoke(source, tmp_path / name, "--polarisations", "VH", "--calibration",
                         "gamma0")
        assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert a.descriptions == ("VH",)
        assert a.tags()["SARCOLOR_INPUT_CALIBRATION"].startswith("gamma0")
        np.testing.assert_array_equal(a.read(), b.read())


def test_existing_output_is_kept(product, tmp_path):
    out = tmp_path / "out.tif"
    out.write_bytes(b"keep")
    result = _invoke(product.safe, out)
    assert result.exit_code == 4 and out.read_bytes() == b"keep"


def test_truncated_zip(product, tmp_path):
    archive = product.zip(tmp_path / f"{NAME}.zip")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.tif"
    result = _invoke(archive, out)
    assert result.exit_code == ProductError.exit_code
    line = _one_error_line(result)
    assert "truncated or damaged" in line and "download it again" in line
    assert list(tmp_path.iterdir()) == [archive]


def test_safe_without_calibration_files(product, tmp_path):
    safe = _copy(product, tmp_path)
    for path in (safe / "annotation" / "calibration").glob("calibration-*.xml"):
        path.unlink()
    out = tmp_path / "out.tif"
    result = _invoke(safe, out)
    assert result.exit_code == ProductError.exit_code
    line = _one_error_line(result)
    assert "calibration LUT" in line and "missing" in line and "--input-scale amplitude" in line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [safe.name]


def test_missing_noise_file_names_no_noise_removal(product, tmp_path):
    safe = _copy(product, tmp_path)
    next((safe / "annotation" / "calibration").glob("noise-*-vh-*.xml")).unlink()
    out = tmp_path / "out.tif"
    result = _invoke(safe, out)
    assert result.exit_code == ProductError.exit_code
    line = _one_error_line(result)
    assert "VH thermal noise LUT" in line and "--no-noise-removal" in line
    assert not out.exists()
    result = _invoke(safe, out, "--no-noise-removal")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.tags()["SARCOLOR_INPUT_NOISE_REMOVAL"] == "none"


def test_slc_product_is_refused(product, tmp_path):
    safe = _copy(product, tmp_path)
    manifest = safe / "manifest.safe"
    manifest.write_text(manifest.read_text().replace(
        "<s1sarl1:productType>GRD</s1sarl1:productType>",
        "<s1sarl1:productType>SLC</s1sarl1:productType>"))
    out = tmp_path / "out.tif"
    result = _invoke(safe, out)
    assert result.exit_code == ProductError.exit_code
    line = _one_error_line(result)
    assert "SLC product" in line and "GRD product of the same acquisition" in line
    assert not out.exists()


def test_not_a_product(tmp_path):
    folder = tmp_path / "empty.SAFE"
    folder.mkdir()
    result = _invoke(folder, tmp_path / "out.tif")
    assert result.exit_code == ProductError.exit_code
    assert "no manifest.safe" in _one_error_line(result)
