"""The per-pixel end of the chain: display intensity + normalised AB -> LAB and sRGB uint8.

::

    relative --relative_to_feature--> dB feature in [0, 1] --tone table--> L in [0, 100]
    ab_norm x AB_SCALE --chroma limit (color.gamut), over the L envelope--> a*b* shown
    L + a*b* --lab_to_rgb--> sRGB, x 255, rounded to uint8; 0 outside the valid mask

These steps run in numpy and OpenCV over blocks of pixels that stay in the CPU's cache
(:mod:`sar_colorizer.color.pixels`, no TensorFlow); they are defined by the numpy / Keras
functions (:func:`~sar_colorizer.sar.radiometry.relative_to_feature`,
:func:`~sar_colorizer.inference.tone.tone_lut`,
:func:`~sar_colorizer.color.gamut.limit_chroma_numpy`,
:func:`~sar_colorizer.color.lab.lab_to_rgb`), and tests/inference checks them against those.
"""

from __future__ import annotations

import logging

import numpy as np

from sar_colorizer.color.constants import AB_SCALE
from sar_colorizer.errors import InputError
from sar_colorizer.sar.display import DEFAULT_DISPLAY_FILTER as DISPLAY_FILTER

logger = logging.getLogger(__name__)

__all__ = [
    "AB_SCALE",
    "DISPLAY_FILTER",
    "ColourConverter",
    "display_options",
]


_CONVERTERS: dict[tuple[bool, int], ColourConverter] = {}


def _envelope_radius(radius: int | None) -> int:
    """``radius``, or :data:`~sar_colorizer.color.gamut.ENVELOPE_RADIUS` for None."""
    from sar_colorizer.color.gamut import ENVELOPE_RADIUS

    return ENVELOPE_RADIUS if radius is None else int(radius)


def display_options(display_filter: str, colour_upsampling: str) -> tuple[str, str]:
    """Checked names of the display filter and the colour upsampling.

    Raises:
        InputError: An unknown name (the message lists the valid ones).
    """
    from sar_colorizer.color.upsampling import UPSAMPLINGS
    from sar_colorizer.sar.display import check_display_filter

    if colour_upsampling not in UPSAMPLINGS:
        raise InputError(
            f"unknown colour upsampling {colour_upsampling!r}; choose one of "
            f"{', '.join(UPSAMPLINGS)}"
        )
    return check_display_filter(display_filter), colour_upsampling


class ColourConverter:
    """Filtered relative intensity + normalised AB -> LAB and sRGB uint8, per pixel.

    ``feature = relative_to_feature(relative)``, ``L = tone table(feature)`` (linear
    interpolation between the table's samples), ``AB = ab_norm * AB_SCALE``, with
    ``chroma_limit`` its chroma capped to the sRGB gamut at its hue and at its L and the
    smooth envelope of the L around it (:func:`~sar_colorizer.color.gamut.limit_chroma`,
    :func:`~sar_colorizer.color.gamut.lightness_envelope` of radius ``envelope_radius``, so that
    speckle left in L does not become chroma speckle), then
    :func:`~sar_colorizer.color.lab.lab_to_rgb`; 0 outside ``valid``. Computed by
    :func:`sar_colorizer.color.pixels.convert_pixels` (numpy and OpenCV over cache-sized blocks,
    no TensorFlow); thread-safe.
    """

    def __init__(self, chroma_limit: bool = True, envelope_radius: int | None = None) -> None:
        from sar_colorizer.color.gamut import max_chroma_table

        self.envelope_radius = _envelope_radius(envelope_radius) if chroma_limit else 0
        self._table = max_chroma_table() if chroma_limit else None

    @classmethod
    def shared(
        cls, chroma_limit: bool = True, envelope_radius: int | None = None
    ) -> ColourConverter:
        """The process-wide converter (compiled once per ``chroma_limit`` and radius)."""
        key = (chroma_limit, _envelope_radius(envelope_radius))
        if key not in _CONVERTERS:
            _CONVERTERS[key] = cls(*key)
        return _CONVERTERS[key]

    @property
    def margin(self) -> int:
        """Pixels of context on each side that :meth:`bounds` needs to equal its whole-image
        value (0 without the envelope)."""
        from sar_colorizer.color.gamut import envelope_reach

        return envelope_reach(self.envelope_radius)

    def bounds(
        self, relative: np.ndarray, valid: np.ndarray, feature: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """The L envelope's lower and upper dB feature around each pixel of ``(H, W)``
        relative intensity (:func:`~sar_colorizer.color.gamut.lightness_envelope`); ``()``
        without the envelope. Rows and columns beyond the array are taken as reflected, as at
        the scene's edges: away from them, pass :attr:`margin` pixels of context and cut.
        ``feature``: the dB feature of ``relative``, where the caller has it already."""
        if self.envelope_radius <= 0:
            return ()
        from sar_colorizer.color.gamut import lightness_envelope

        if feature is None:
            from sar_colorizer.sar.radiometry import relative_to_feature

            feature = np.asarray(relative_to_feature(relative), dtype=np.float32)
        return lightness_envelope(feature, valid, self.envelope_radius)

    def __call__(
        self,
        relative: np.ndarray,
        ab_norm: np.ndarray,
        valid: np.ndarray,
        lut: np.ndarray,
        with_lab: bool = True,
        bounds: tuple[np.ndarray, ...] | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Convert ``(H, W)`` relative intensity, ``(H, W, 2)`` normalised AB, ``(H, W)`` mask.

        Args:
            relative: Relative intensity that L is made from (display-filtered; 0 at nodata).
            ab_norm: The network's a*, b* divided by :data:`AB_SCALE`.
            valid: True where the output has colour; LAB and RGB are 0 elsewhere.
            lut: The scene's tone table (:func:`~sar_colorizer.inference.tone.tone_lut`).
            with_lab: Also return LAB (else None in its place).
            bounds: :meth:`bounds` of these pixels, computed with context where they are a
                window of a larger scene; None: computed here from ``relative`` alone (the
                whole image).

        Returns:
            ``(lab float32 (H, W, 3) or None, rgb uint8 (H, W, 3))``: L with the predicted a*b*
            (before the chroma limit, as it was before the channel clipping it replaces), and
            the sRGB shown.
        """
        from sar_colorizer.color.pixels import convert_pixels

        shape = relative.shape
        if bounds is None:
            bounds = self.bounds(relative, valid)
        lab, rgb = convert_pixels(
            np.ascontiguousarray(relative, np.float32).reshape(-1),
            np.ascontiguousarray(ab_norm, np.float32).reshape(-1, 2),
            np.ascontiguousarray(valid, bool).reshape(-1),
            lut,
            tuple(np.ascontiguousarray(b, np.float32).reshape(-1) for b in bounds),
            self._table,
            with_lab,
        )
        return (
            lab.reshape(shape + (3,)) if lab is not None else None,
            rgb.reshape(shape + (3,)),
        )
