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
