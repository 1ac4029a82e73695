"""The per-pixel end of the chain: display intensity + normalised AB -> LAB and sRGB uint8.

::

    relative --relative_to_feature--> dB feature in [0, 1] --tone table--> L in [0, 100]
    ab_norm x AB_SCALE --chroma limit (color.gamut), over the L envelope--> a*b* shown
    L + a*b* --lab_to_rgb--> sRGB, x 255, rounded to uint8; 0 outside the valid mask

These ~60 element-wise steps run as two XLA-compiled TensorFlow functions
(:class:`ColourConverter`), which fuse them into two passes over the pixels; they are defined by
the numpy / Keras functions they compile (:func:`~sar_colorizer.sar.radiometry.relative_to_feature`,
:func:`~sar_colorizer.inference.tone.tone_lut`,
:func:`~sar_colorizer.color.gamut.limit_chroma_numpy`,
:func:`~sar_colorizer.color.lab.lab_to_rgb`), and tests/inference checks them against those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from sar_colorizer.color.constants import AB_SCALE
from sar_colorizer.errors import InputError
from sar_colorizer.inference.tone import TONE_LUT_SIZE
from sar_colorizer.sar.display import DEFAULT_DISPLAY_FILTER as DISPLAY_FILTER

if TYPE_CHECKING:
    from tensorflow import Tensor

    TensorPair = tuple[Tensor, Tensor]

logger = logging.getLogger(__name__)

__all__ = [
    "AB_SCALE",
    "DISPLAY_FILTER",
    "ColourConverter",
    "XlaFallback",
    "display_options",
    "xla_errors",
]


#: Pixels per call of the compiled colour conversion (fixed, so it compiles once).
_COLOUR_CHUNK = 1 << 18

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


def xla_errors() -> tuple[type[Exception], ...]:
    """What TensorFlow raises where a ``jit_compile=True`` function cannot be compiled here.

    ``InvalidArgumentError``: an operation without an XLA kernel on this device ("Detected
    unsupported operations when trying to compile graph ... on XLA_CPU_JIT"), the documented
    failure of ``jit_compile``'s must-compile semantics. ``NotFoundError``: no XLA launch kernel
    or platform registered in this TensorFlow build. ``UnimplementedError``: a backend without
    an implementation of an operation. ``InternalError``: XLA's GPU backend without its CUDA
    toolkit parts ("libdevice not found").
    """
    from sar_colorizer._tf import import_tensorflow

    errors = import_tensorflow().errors
    return (
        errors.InvalidArgumentError,
        errors.NotFoundError,
        errors.UnimplementedError,
        errors.InternalError,
    )


class XlaFallback:
    """Calls ``compiled``; where XLA cannot compile it here (:func:`xla_errors`), warns once
    and calls ``plain`` (the same graph without XLA) from then on.

    Any other error, or an error of ``plain``, propagates.
    """

    def __init__(self, compiled: Callable[..., TensorPair], plain: Callable[..., TensorPair]):
        self._compiled: Callable[..., TensorPair] | None = compiled
        self._plain = plain
        self._errors = xla_errors()

    @property
    def compiled(self) -> bool:
        """False once the plain graph has replaced the compiled one."""
        return self._compiled is not None

    def __call__(self, *arrays: np.ndarray) -> TensorPair:
        if self._compiled is not None:
            try:
                return self._compiled(*arrays)
            except self._errors as error:
                logger.warning(
                    "XLA cannot compile the colour conversion on this platform; using plain "
                    "TensorFlow, which is slower (%s: %s)",
                    type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "",
                )
                self._compiled = None
        return self._plain(*arrays)


class ColourConverter:
    """Filtered relative intensity + normalised AB -> LAB and sRGB uint8, per pixel.

    ``feature = relative_to_feature(relative)``, ``L = tone table(feature)`` (linear
    interpolation between the table's samples), ``AB = ab_norm * AB_SCALE``, with
    ``chroma_limit`` its chroma capped to the sRGB gamut at its hue and at its L and the
    smooth envelope of the L around it (:func:`~sar_colorizer.color.gamut.limit_chroma`,
    :func:`~sar_colorizer.color.gamut.lightness_envelope` of radius ``envelope_radius``, so that
    speckle left in L does not become chroma speckle), then
    :func:`~sar_colorizer.color.lab.lab_to_rgb`; 0 outside ``valid``. Runs as two XLA-compiled
    ``tf.function``s (L and a*b*, then sRGB) on fixed chunks of :data:`_COLOUR_CHUNK` pixels
    (one compilation whatever the image size; XLA fuses the element-wise operations, several
    times faster than running them one by one). Falls back to the uncompiled graph where XLA
    is unavailable (:class:`XlaFallback`).
    """

    def __init__(self, chroma_limit: bool = True, envelope_radius: int | None = None) -> None:
        from sar_colorizer._tf import import_tensorflow
        from sar_colorizer.color.gamut import limit_chroma, max_chroma_table
        from sar_colorizer.color.lab import lab_to_rgb
        from sar_colorizer.sar.radiometry_tf import relative_to_feature_tf

        tf = import_tensorflow()
        gamut = tf.constant(max_chroma_table().reshape(-1))
        steps = float(TONE_LUT_SIZE - 1)
        self.envelope_radius = _envelope_radius(envelope_radius) if chroma_limit else 0
        n_bounds = 2 if self.envelope_radius > 0 else 0

        def lookup(feature: Tensor, lut: Tensor) -> Tensor:
            position = feature * steps
            index = tf.minimum(tf.cast(position, tf.int32), TONE_LUT_SIZE - 2)
            fraction = position - tf.cast(index, tf.float32)
            return tf.gather(lut, index) * (1.0 - fraction) + tf.gather(lut, index + 1) * fraction

        def lightness_and_chroma(
            relative: Tensor, ab_norm: Tensor, lut: Tensor, *bounds: Tensor
        ) -> TensorPair:
            lightness = lookup(relative_to_feature_tf(relative), lut)
            ab = ab_norm * AB_SCALE
            if chroma_limit:  # keep hue, reduce chroma to what sRGB shows at this L
                # The bounds only choose a cap (the pixel's own L caps it too): the nearest
                # table entry is close enough, at a third of the interpolation's cost.
                nearest = [tf.gather(lut, tf.cast(b * steps + 0.5, tf.int32)) for b in bounds]
                ab = limit_chroma(lightness, ab, gamut, *nearest)
            return lightness, ab

        def to_rgb(lightness: Tensor, shown: Tensor, ab_norm: Tensor, valid: Tensor) -> TensorPair:
            # lab: the predicted colour (as before any gamut handling, like the clipping this
            # limit replaces); rgb: the colour shown.
            lab = tf.concat([lightness[:, None], ab_norm * AB_SCALE], axis=-1)
            rgb = lab_to_rgb(tf.concat([lightness[:, None], shown], axis=-1))
            rgb = tf.cast(rgb * 255.0 + 0.5, tf.uint8)
            mask = valid[:, None]
            return tf.where(mask, lab, 0.0), tf.where(mask, rgb, tf.zeros_like(rgb))

        def convert(
            relative: Tensor, ab_norm: Tensor, valid: Tensor, lut: Tensor, *bounds: Tensor
        ) -> TensorPair:
            lightness, shown = lightness_and_chroma(relative, ab_norm, lut, *bounds)
            return to_rgb(lightness, shown, ab_norm, valid)

        pixel = tf.TensorSpec([_COLOUR_CHUNK], tf.float32)
        signature = [
            pixel,
            tf.TensorSpec([_COLOUR_CHUNK, 2], tf.float32),
            tf.TensorSpec([_COLOUR_CHUNK], tf.bool),
            tf.TensorSpec([TONE_LUT_SIZE], tf.float32),
            *[pixel] * n_bounds,
        ]
        # Two compiled functions: inside one, XLA would recompute the tone lookup and the
        # chroma cap (table reads) for every colour channel that uses them; materialising L
        # and a*b* between the two keeps the chroma limit's cost small.
        first = tf.function(
            lightness_and_chroma,
            input_signature=[signature[0], signature[1], signature[3], *signature[4:]],
            jit_compile=True,
            autograph=False,
        )
        second = tf.function(
            to_rgb,
            input_signature=[signature[0], signature[1], signature[1], signature[2]],
            jit_compile=True,
            autograph=False,
        )

        def compiled(
            relative: Tensor, ab_norm: Tensor, valid: Tensor, lut: Tensor, *bounds: Tensor
        ) -> TensorPair:
            lightness, shown = first(relative, ab_norm, lut, *bounds)
            return second(lightness, shown, ab_norm, valid)

        plain = tf.function(convert, input_signature=signature, autograph=False)
        self._convert = XlaFallback(compiled, plain)
        self._lock = threading.Lock()

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
        shape = relative.shape
        n = relative.size
        if bounds is None:
            bounds = self.bounds(relative, valid)
        flat = [
            np.ascontiguousarray(relative, np.float32).reshape(-1),
            np.ascontiguousarray(ab_norm, np.float32).reshape(-1, 2),
            np.ascontiguousarray(valid, bool).reshape(-1),
            *(np.ascontiguousarray(b, np.float32).reshape(-1) for b in bounds),
        ]
        lut = np.ascontiguousarray(lut, np.float32)
        rgb = np.empty((n, 3), dtype=np.uint8)
        lab = np.empty((n, 3), dtype=np.float32) if with_lab else None
        chunk = _COLOUR_CHUNK
        with self._lock:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                pieces = [array[start:stop] for array in flat]
                if stop - start < chunk:
                    pad = chunk - (stop - start)
                    pieces = [
                        np.concatenate([p, np.zeros((pad,) + p.shape[1:], p.dtype)]) for p in pieces
                    ]
                lab_chunk, rgb_chunk = self._convert(*pieces[:3], lut, *pieces[3:])
                rgb[start:stop] = rgb_chunk.numpy()[: stop - start]
                if lab is not None:
                    lab[start:stop] = lab_chunk.numpy()[: stop - start]
        return (
            lab.reshape(shape + (3,)) if lab is not None else None,
            rgb.reshape(shape + (3,)),
        )
