"""The options of a colorisation, spelled once with their defaults, and resolved once per bundle.

:class:`ColourOptions` is the one home of every option that decides the colours ``predict``
writes (tone, tiling, display filter, colour upsampling, chroma limit, pixel size, ...) and of
its default; the command line, the Python API, the xarray path and batches build one and pass
it on, never re-spelling a default. :meth:`ColourOptions.resolve` checks it against a bundle
(names, the confidence head that ``shrink`` or a sigma output need, the tone curve) and returns
the :class:`Recipe` every scheduler colours with;
:meth:`SceneColourer.for_scene <sar_colorizer.inference.core.SceneColourer.for_scene>` adds
what a scene decides (its statistics, tile grid and tone table).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import numpy as np

from sar_colorizer.inference.reference import SceneReference
from sar_colorizer.sar.display import DEFAULT_DISPLAY_FILTER

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.confidence import OutputPlan
    from sar_colorizer.inference.colour import ColourConverter
    from sar_colorizer.inference.scene import InputSpec, SceneStatistics

__all__ = ["ColourOptions", "Recipe"]

_Name = TypeVar("_Name", bound=str | None)

# Older keyword names still accepted by the functions that take options as keywords.
_ALIASES = {"batch_size": "tiles_per_call"}


@dataclass(frozen=True)
class ColourOptions:
    """How a SAR scene is coloured: every option of ``sarcolor predict`` that reaches the colours.

    Attributes:
        bands: SAR bands fed to the model: names (``"VH"``, ``"VV,VH"``, matched against band
            descriptions or the file name) or 1-based numbers; None: every band but alpha.
        band_names: The polarisation of each selected band (``("VH",)``; ``"VV,VH"`` is
            split), over their descriptions and the file name; None: from those.
        input_scale: ``"auto"`` (detected) or one of
            :data:`~sar_colorizer.sar.radiometry.INPUT_SCALES`.
        tone: How L is made from the SAR (:data:`~sar_colorizer.inference.tone.TONES`).
        tile_size: Tile side for the network (rounded to the model's multiple); None: the size
            it was trained on (:attr:`~sar_colorizer.bundle.Bundle.tile_size`).
        overlap: Overlap of neighbouring tiles; None: an eighth of the tile, at most 64
            (:func:`~sar_colorizer.io.tiling.default_overlap`).
        tiles_per_call: Most tiles per model call; None: about a megapixel per call
            (:func:`~sar_colorizer.inference.runner.tiles_per_call`).
        shrink: Move a*, b* toward neutral where the model is unsure
            (:mod:`sar_colorizer.confidence`); None: on when the model has a confidence head.
        display_filter: Filter of the SAR that L is made from
            (:data:`~sar_colorizer.sar.display.DISPLAY_FILTERS`; ``"network"``: the bundle's
            speckle filter, which always feeds the network).
        colour_upsampling: ``"guided"`` (the network's low-resolution AB follows the edges of
            L, :mod:`sar_colorizer.color.upsampling`) or ``"bilinear"``.
        chroma_limit: Cap chroma to the sRGB gamut at each pixel's L and hue
            (:mod:`sar_colorizer.color.gamut`) instead of clipping RGB channels.
        chroma_envelope: Radius of the L envelope the cap is also taken over
            (:func:`~sar_colorizer.color.gamut.lightness_envelope`); None:
            :data:`~sar_colorizer.color.gamut.ENVELOPE_RADIUS`.
        pixel_size: Ground pixel size of the input in metres; None: from the georeference,
            else the model's training pixel size. The network sees tiles resampled to the
            training pixel size.
        reference: A scene reference shared by every image coloured with these options
            (:class:`~sar_colorizer.inference.reference.SceneReference`; a number is a linear
            power, a string such as ``"-5dB"`` or ``"0.32"`` is parsed, and the setting
            ``reference_from=RASTER`` takes another raster's); None: each image's own
            (the 99th percentile of its valid pixels). Refused for display images.
    """

    bands: str | int | Sequence[str | int] | None = None
    band_names: tuple[str, ...] | None = None
    input_scale: str = "auto"
    tone: str = "balanced"
    tile_size: int | None = None
    overlap: int | None = None
    tiles_per_call: int | None = None
    shrink: bool | None = None
    display_filter: str = DEFAULT_DISPLAY_FILTER
    colour_upsampling: str = "guided"
    chroma_limit: bool = True
    chroma_envelope: int | None = None
    pixel_size: float | None = None
    reference: SceneReference | None = None

    def __post_init__(self) -> None:
        if self.band_names is not None:
            given = self.band_names
            names = tuple(n.strip() for n in (given.split(",") if isinstance(given, str)
                                              else map(str, given)))
            if not names or not all(names):
                from sar_colorizer.errors import InputError

                raise InputError(f"band names {given!r}: give one name per band, e.g. VV,VH")
            object.__setattr__(self, "band_names", names)
        if self.reference is not None and not isinstance(self.reference, SceneReference):
            object.__setattr__(self, "reference", SceneReference.parse(self.reference))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, options: ColourOptions | None = None, /, **settings: Any) -> ColourOptions:
        """``options`` (default: the defaults) with ``settings`` replacing some of them.

        ``batch_size`` is accepted for ``tiles_per_call``, and ``reference_from=RASTER`` for
        ``reference=SceneReference.from_raster(RASTER)`` (not with ``reference``).

        Raises:
            TypeError: A setting that is no option (the message lists the valid names).
            InputError: ``reference`` and ``reference_from`` both given, or a bad reference.
        """
        settings = {_ALIASES.get(name, name): value for name, value in settings.items()}
        raster = settings.pop("reference_from", None)
        if raster is not None:
            if settings.get("reference") is not None:
                from sar_colorizer.errors import InputError

                raise InputError("give either a reference or a raster to take it from, not both")
            settings["reference"] = SceneReference.from_raster(raster)
        unknown = sorted(set(settings) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"unknown colour option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(cls.names())}"
            )
        base = options if options is not None else cls()
        return dataclasses.replace(base, **settings) if settings else base

    def names_of(self, found: Sequence[_Name], where: object = "the input") -> list[_Name]:
        """The names of the selected bands: :attr:`band_names` where given (one per band),
        else ``found`` (their descriptions or the file name's polarisation).

        Raises:
            InputError: :attr:`band_names` has another number of names than there are bands.
        """
        if self.band_names is None:
            return list(found)
        if len(self.band_names) != len(found):
            from sar_colorizer.errors import InputError

            raise InputError(
                f"{where}: {len(self.band_names)} band name(s) ({','.join(self.band_names)}) "
                f"for {len(found)} selected band(s); give one per band, in order (choose bands "
                "with --bands)"
            )
        return [cast(_Name, name) for name in self.band_names]

    def resolve(self, bundle: Bundle, *, sigma: bool = False, mean: bool = False) -> Recipe:
        """Check these options against ``bundle`` and fix what follows from them.

        Args:
            bundle: The model bundle.
            sigma: Keep the predicted sigma (a ``--confidence`` output); needs a confidence head.
            mean: Keep the unshrunk a*, b* too.

        Raises:
            InputError: An unknown tone, display filter or colour upsampling; ``shrink=True``
                or ``sigma`` for a model without a confidence head; a reference raster that
                is a display image or does not match the model.
            RasterError: A reference raster that is missing or unreadable.
        """
        from sar_colorizer.confidence import OutputPlan
        from sar_colorizer.inference.colour import display_options
        from sar_colorizer.inference.plan import resolve_reference
        from sar_colorizer.inference.scene import InputSpec
        from sar_colorizer.inference.tiles import tile_settings
        from sar_colorizer.inference.tone import resolve_tone
        from sar_colorizer.sar.display import display_halo

        output_plan = OutputPlan.for_bundle(bundle, self.shrink, sigma=sigma, mean=mean)
        display_filter, colour_upsampling = display_options(
            self.display_filter, self.colour_upsampling
        )
        tone, l_quantiles = resolve_tone(bundle, self.tone)
        tile_size, overlap = tile_settings(bundle, self.tile_size, self.overlap)
        input_spec = InputSpec.from_bundle(bundle)
        reference = resolve_reference(self.reference, bundle, self)
        return Recipe(
            options=self, input_spec=input_spec, output_plan=output_plan,
            tone=tone, l_quantiles=l_quantiles, display_filter=display_filter,
            guided=colour_upsampling == "guided", tile_size=tile_size, overlap=overlap,
            tile_multiple=int(bundle.tile_multiple), model_tile_size=int(bundle.tile_size),
            model_pixel_size=float(bundle.pixel_size),
            halo=max(input_spec.halo, display_halo(display_filter)),
            reference=reference,
        )

    def with_reference(self, bundle: Bundle) -> Self:
        """These options with a raster's reference computed (once, here, rather than where
        each scene is coloured: a batch's workers then never read the reference raster).

        Raises:
            As :meth:`resolve` for the reference raster.
        """
        from sar_colorizer.inference.plan import resolve_reference

        reference = resolve_reference(self.reference, bundle, self)
        return self if reference is self.reference else dataclasses.replace(
            self, reference=reference
        )


@dataclass(frozen=True)
class Recipe:
    """:class:`ColourOptions` resolved against a bundle: what every window of every scene is
    coloured with (picklable: it holds no model).

    Attributes:
        options: The options it was resolved from.
        input_spec: The bundle's normalisation and speckle filter.
        output_plan: What is kept of the network's output (confidence channels, shrink).
        tone: Tone used for L (``"sar"`` for bundles without a tone curve).
        l_quantiles: The bundle's L quantiles for the tone curve, or None.
        display_filter: Checked name of the filter L is made from.
        guided: Upsample the network's AB guided by the displayed SAR (else bilinearly).
        tile_size, overlap: Requested tiling in training pixels (before fitting to a scene).
        tile_multiple: The model's tile multiple.
        model_tile_size: The tile side the network was trained on.
        model_pixel_size: The training pixel size in metres.
        halo: Rows and columns the speckle and display filters reach beyond a window.
        reference: The fixed scene reference with its values, or None (each image's own).
    """

    options: ColourOptions
    input_spec: InputSpec
    output_plan: OutputPlan
    tone: str
    l_quantiles: np.ndarray | None
    display_filter: str
    guided: bool
    tile_size: int
    overlap: int
    tile_multiple: int
    model_tile_size: int
    model_pixel_size: float
    halo: int
    reference: SceneReference | None = None

    def for_input(self, present: Sequence[bool] | None) -> Recipe:
        """This recipe for an input that holds the ``present`` bands of a model of optional
        bands (:meth:`~sar_colorizer.bundle.Bundle.input_layout`); itself for None."""
        if present is None:
            return self
        spec = dataclasses.replace(self.input_spec, present=tuple(bool(p) for p in present))
        return dataclasses.replace(self, input_spec=spec)

    @property
    def converter(self) -> ColourConverter:
        """The process's colour conversion for these options (compiled once per process)."""
        from sar_colorizer.inference.colour import ColourConverter

        return ColourConverter.shared(self.options.chroma_limit, self.options.chroma_envelope)

    def statistics(self, values: np.ndarray, valid: np.ndarray) -> SceneStatistics:
        """Scene statistics of ``(C, H, W)`` values (a whole image or a decimated read of it;
        :func:`~sar_colorizer.inference.scene.scene_statistics`), with the fixed
        :attr:`reference` where there is one.

        Raises:
            InputError: As :func:`~sar_colorizer.inference.scene.scene_statistics`.
        """
        from sar_colorizer.inference.scene import scene_statistics

        return scene_statistics(
            values, valid, self.input_spec, self.options.input_scale, self.display_filter,
            reference=self.reference,
        )
