"""A scene reference fixed across images: the same land, the same colour, whatever the crop.

Every calibrated input is divided by a reference, the linear power that becomes relative
intensity 1 (by default the 99th percentile of the image's own valid pixels,
:class:`~sar_colorizer.sar.radiometry.Normalization`), and L's tone curve follows the image's
own brightness quantiles (:mod:`~sar_colorizer.inference.tone`). A crop, a neighbouring scene or
another date has other statistics, so each of its pixels is coloured a little differently.
A :class:`SceneReference` fixes them:

* ``--reference VALUE`` (:meth:`SceneReference.parse`): a linear power (``0.32``) or a dB value
  (``-5dB``), one for every band or one per band (``-5dB,-12dB``). It fixes the normalisation;
  L's tone still follows each image's quantiles (a value carries none).
* ``--reference-from RASTER`` (:meth:`SceneReference.from_raster`, resolved against a bundle
  by :func:`~sar_colorizer.inference.plan.resolve_reference`): the reference *and* the tone quantiles that ``predict``
  computes for that raster (one decimated read, the same options), so a crop coloured with
  its whole scene's reference gets the whole scene's L as well.

8-bit (or 16-bit) display images carry no radiometry: they keep their own reference, and a
fixed one is refused for them (:func:`check_calibrated`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sar_colorizer.errors import InputError

__all__ = ["OWN_REFERENCE", "SceneReference", "check_calibrated"]

#: Where a scene's reference came from (:attr:`SceneReference.source`; "image": its own).
REFERENCE_SOURCES = ("image", "fixed", "raster")

_USAGE = (
    "give the linear power that becomes full brightness (e.g. 0.32) or a dB value with the "
    "suffix dB (e.g. -5dB), one for every band or one per band separated by commas"
)


def _parse_one(item: Any, text: str) -> float:
    """One reference value -> linear power (> 0, finite)."""
    if isinstance(item, bool):
        raise InputError(f"reference {text!r} is not a number: {_USAGE}")
    if isinstance(item, str):
        word = item.strip()
        is_db = word.lower().endswith("db")
        number = word[:-2].strip() if is_db else word
        try:
            value = float(number)
        except ValueError:
            raise InputError(f"reference {text!r} is not a number: {_USAGE}") from None
        if is_db:
            if not math.isfinite(value):
                raise InputError(f"reference {text!r} is not a finite dB value: {_USAGE}")
            return float(10.0 ** (value / 10.0))
    else:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise InputError(f"reference {text!r} is not a number: {_USAGE}") from None
    if not math.isfinite(value) or value <= 0.0:
        hint = " (a negative value is dB: write it with the suffix dB)" if value < 0 else ""
        raise InputError(
            f"reference {text!r} must be a positive, finite linear power{hint}: {_USAGE}"
        )
    return value


@dataclass(frozen=True)
class SceneReference:
    """A normalisation reference (and, from a raster, tone quantiles) shared by scenes.

    Attributes:
        values: Linear power that becomes relative intensity 1: one for every band, or one per
            band in the model's order; empty while a raster's is not computed yet.
        source: ``"fixed"`` (a value given) or ``"raster"`` (taken from another raster).
        given: The value as given, or the raster's path.
        feature_quantiles: From a raster: the 101 quantiles of its SAR feature that L's tone
            curve follows (:class:`~sar_colorizer.inference.scene.SceneStatistics`); None: each
            image's own.
    """

    values: tuple[float, ...]
    source: str = "fixed"
    given: str = ""
    feature_quantiles: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.source not in REFERENCE_SOURCES[1:]:
            raise InputError(f"unknown reference source {self.source!r}; use fixed or raster")

    @classmethod
    def parse(cls, value: Any) -> SceneReference:
        """A :class:`SceneReference` of ``value``: itself, a number (linear power), a string
        (``"0.32"``, ``"-5dB"``, ``"-5dB,-12dB"``) or a sequence of those.

        Raises:
            InputError: Not a positive linear power or a finite dB value (one line, naming the
                form to use).
        """
        if isinstance(value, SceneReference):
            return value
        if isinstance(value, str):
            items: Sequence[Any] = [part for part in value.split(",")]
            text = value
        elif isinstance(value, Sequence):
            items, text = list(value), ",".join(map(str, value))
        else:
            items, text = [value], str(value)
        if not items:
            raise InputError(f"reference {text!r} is empty: {_USAGE}")
        return cls(tuple(_parse_one(item, text) for item in items), "fixed", text.strip())

    @classmethod
    def from_raster(cls, path: str | os.PathLike[str]) -> SceneReference:
        """The reference of another raster, computed when the options are resolved against a
        bundle (:func:`~sar_colorizer.inference.plan.resolve_reference`)."""
        return cls((), "raster", os.fspath(path))

    @property
    def resolved(self) -> bool:
        """Whether the values are known (a raster's are computed against a bundle)."""
        return bool(self.values)

    def for_bands(self, count: int) -> tuple[float, ...]:
        """The reference of each of ``count`` bands.

        Raises:
            InputError: Neither one value nor one per band.
        """
        if len(self.values) == 1:
            return self.values * count
        if len(self.values) != count:
            raise InputError(
                f"{len(self.values)} reference values given for {count} bands; give one for "
                "every band or one per band"
            )
        return self.values

    def describe(self) -> str:
        """Where the reference came from, for an output's metadata
        (``SARCOLOR_INPUT_REFERENCE_SOURCE``)."""
        if self.source == "raster":
            return f"raster {self.given} (its reference and tone quantiles)"
        return f"fixed ({self.given})"


#: How a scene's own reference is described in an output's metadata.
OWN_REFERENCE = "own image (99th percentile of linear power over its valid pixels)"


def check_calibrated(scale: str, what: str = "the input") -> None:
    """Refuse a fixed reference for a display image (it has no radiometry to refer to).

    Raises:
        InputError: ``scale`` is ``"display"``.
    """
    if scale == "display":
        raise InputError(
            f"{what} is a display image (8/16-bit, no radiometry), which keeps its own "
            "reference: drop --reference/--reference-from, or pass --input-scale if its "
            "values are calibrated"
        )
