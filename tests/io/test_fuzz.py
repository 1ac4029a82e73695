"""Truncated and corrupted GeoTIFF, PNG and .keras files, made by hypothesis: every one is
read (or refused) with the package's own one-line error, never another exception."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sar_colorizer.errors import SarColorError
from sar_colorizer.io.raster import read_info, read_raster, write_raster

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_raster_bytes(suffix: str) -> bytes:
    folder = Path(tempfile.mkdtemp())
    try:
        rng = np.random.default_rng(0)
        from affine import Affine

        profile = {"crs": "EPSG:32631", "transform": Affine(10, 0, 600000, 0, -10, 4800000)}
        if suffix == ".tif":
            array = (-15 + 3 * rng.standard_normal((1, 64, 48))).astype(np.float32)
        else:
            array = rng.integers(0, 255, (1, 64, 48), dtype=np.uint8)
        path = write_raster(folder / f"x{suffix}", array, profile)
        return path.read_bytes()
    finally:
        shutil.rmtree(folder)


TIFF = _valid_raster_bytes(".tif")
PNG = _valid_raster_bytes(".png")


def damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """Truncated at any point, or with a few bytes overwritten anywhere."""
    truncated = st.integers(0, len(original) - 1).map(lambda n: original[:n])
    edits = st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)),
                     min_size=1, max_size=8)

    def overwrite(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(original)
        for index, value in changes:
            data[index] = value
        return bytes(data)

    return st.one_of(truncated, edits.map(overwrite))


def _read_or_refuse(path: Path) -> None:
    try:
        info = read_info(path)
        values, valid = read_raster(path)
    except SarColorError as error:
        message = str(error)
        assert message and "\n" not in message and str(path) in message
        return
    assert values.shape[1:] == (info.height, info.width) and valid.shape == values.shape[1:]


@pytest.mark.parametrize(("suffix", "original"), [(".tif", TIFF), (".png", PNG)])
def test_damaged_rasters_are_read_or_refused_in_one_line(tmp_path, suffix, original):
    @FUZZ
    @given(data=damaged(original))
    def check(data: bytes) -> None:
        path = tmp_path / f"damaged{suffix}"
        path.write_bytes(data)
        _read_or_refuse(path)

    check()


def test_damaged_keras_files_are_refused_in_one_line(tmp_path, tiny_bundle):
    from sar_colorizer.bundle import MODEL_FILE, load_bundle

    original = (tiny_bundle / MODEL_FILE).read_bytes()
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)  # the shared bundle stays intact

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(data=damaged(original))
    def check(data: bytes) -> None:
        (folder / MODEL_FILE).write_bytes(data)
        try:
            load_bundle(folder)
        except SarColorError as error:
            message = str(error)
            assert "\n" not in message and MODEL_FILE in message
            assert "not found" not in message.lower()  # the file is there: say what is wrong

    check()
