"""Settings dataclasses read back from JSON and TOML (bundle.json, stats.json, --config files)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sar_colorizer.errors import InputError


def check_known_keys(cls: type, data: Mapping[str, Any], what: str) -> None:
    """Refuse keys of ``data`` that are not fields of the dataclass ``cls``.

    Args:
        cls: A dataclass type.
        data: Settings to build it from.
        what: Name of the settings in the message, e.g. ``"speckle filter settings"``.

    Raises:
        InputError: Unknown keys, listed with the known ones.
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"unknown {what} {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
