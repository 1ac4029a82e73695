"""Check ``--co NAME=VALUE`` against the creation options the GDAL driver declares.

GDAL itself only warns about an option it does not know, or a value it does not accept, and
writes the file without it (``COMPRESS=FOO``: an uncompressed file, exit 0). Each driver lists
its options and, for choices, their values (``DMD_CREATIONOPTIONLIST``, an XML document);
:func:`check_creation_options` reads that list from the GDAL library rasterio loaded and
refuses an unknown name or value before any work, naming the valid ones.
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

from sar_colorizer.errors import InputError
from sar_colorizer.io.gdal_library import gdal_library

logger = logging.getLogger(__name__)


@functools.cache
def driver_options(driver: str) -> dict[str, tuple[str, ...]] | None:
    """``{NAME: allowed values}`` of ``driver``'s creation options (empty tuple: any value);
    None where GDAL's list cannot be read (then nothing is checked)."""
    import rasterio

    library = gdal_library()
    if library is None:
        return None
    with rasterio.Env():  # registers the drivers
        library.GDALAllRegister()
        handle = library.GDALGetDriverByName(driver.encode())
        if not handle:
            return None
        text = library.GDALGetMetadataItem(handle, b"DMD_CREATIONOPTIONLIST", None)
    if not text:
        return {}
    try:
        root = ElementTree.fromstring(text.decode("utf-8", "replace"))
    except ElementTree.ParseError:
        logger.debug("unreadable creation option list of %s", driver)
        return None
    options: dict[str, tuple[str, ...]] = {}
    for option in root.iter("Option"):
        name = option.get("name")
        if not name:
            continue
        values = tuple(value.text.strip() for value in option.iter("Value") if value.text)
        aliases = [value.get("alias") for value in option.iter("Value") if value.get("alias")]
        options[name.upper()] = values + tuple(a for a in aliases if a) if values else ()
        for alias in (option.get("alias"), option.get("deprecated_alias")):
            if alias:
                options[alias.upper()] = options[name.upper()]
    return options


def check_creation_options(driver: str, options: Mapping[str, Any] | None) -> None:
    """Refuse a creation option ``driver`` does not have, or a value it does not accept.

    Raises:
        InputError: ``--co FOO=1: the GTiff driver has no creation option FOO; its options:
            ...`` or ``--co COMPRESS=FOO: COMPRESS is one of NONE, LZW, ...``.
    """
    if not options:
        return
    known = driver_options(driver)
    if known is None:
        return
    for name, value in options.items():
        key = str(name).upper()
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InputError(f"--co {name}={value}: the {driver} driver has no creation option "
                             f"{key}; its options: {names}")
        allowed = known[key]
        if allowed and str(value).upper() not in {v.upper() for v in allowed}:
            raise InputError(f"--co {name}={value}: {key} of the {driver} driver is one of "
                             f"{', '.join(allowed)}")
