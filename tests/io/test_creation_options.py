"""``--co``: an unknown creation option or value is refused, naming the valid ones."""

from __future__ import annotations

import pytest

from sar_colorizer.errors import InputError
from sar_colorizer.io.creation_options import check_creation_options, driver_options


def test_the_drivers_declare_their_options():
    gtiff = driver_options("GTiff")
    assert gtiff is not None and "COMPRESS" in gtiff and "LZW" in gtiff["COMPRESS"]
    assert "TILED" in gtiff and gtiff["TILED"] == ()  # a boolean: any value
    assert "ZLEVEL" in driver_options("PNG")


def test_an_unknown_value_names_the_valid_ones():
    with pytest.raises(InputError, match=r"--co COMPRESS=FOO: COMPRESS of the GTiff driver is "
                                         r"one of NONE, LZW, .*DEFLATE"):
        check_creation_options("GTiff", {"COMPRESS": "FOO"})


def test_an_unknown_name_names_the_driver_s_options():
    with pytest.raises(InputError, match=r"the PNG driver has no creation option TILED; its "
                                         r"options: .*ZLEVEL"):
        check_creation_options("PNG", {"TILED": "YES"})


def test_valid_options_pass_in_any_case():
    check_creation_options("GTiff", {"compress": "lzw", "tiled": "yes", "blockxsize": 256})
    check_creation_options("COG", {"COMPRESS": "deflate", "LEVEL": 6})
    check_creation_options("GTiff", None)


@pytest.mark.parametrize("option, expected", [
    ("COMPRESS=FOO", "COMPRESS of the GTiff driver is one of NONE, LZW"),
    ("FOO=BAR", "the GTiff driver has no creation option FOO; its options: ALPHA"),
])
def test_predict_refuses_an_unknown_creation_option_before_any_work(
    option, expected, tiny_bundle, make_geotiff, tmp_path, monkeypatch
):
    import numpy as np
    from click.testing import CliRunner

    from sar_colorizer import bundle
    from sar_colorizer.cli import cli

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    # where predict's tasks get their model (Keras or ONNX Runtime alike)
    monkeypatch.setattr(bundle, "cached_bundle", no_model)
    scene = make_geotiff("scene_VH.tif", np.full((40, 40), -15.0, dtype=np.float32))
    out = tmp_path / "out"
    for target in (["--output-dir", str(out), "--suffix", ".tif"], [str(out / "c.tif")]):
        args = ["predict", "--model", str(tiny_bundle), str(scene), *target, "--co", option]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 3, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], lines
    assert not out.exists() or list(out.iterdir()) == []
