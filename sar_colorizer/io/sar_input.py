"""What a SAR input is: a Sentinel-1 product, an analysis-ready RTC GeoTIFF, or a plain raster.

The one place where predict, eval, preprocess and the Python API open a SAR input
(:func:`open_sar_input`):

* a Sentinel-1 GRD product (``.SAFE`` folder, ``manifest.safe``, ``.zip``) becomes a temporary
  georeferenced GeoTIFF of calibrated, noise-removed linear backscatter
  (:func:`sar_colorizer.io.s1product.backscatter_raster`), read like any raster in linear scale;
* analysis-ready backscatter is recognised by its metadata and name and read in its scale
  without ``--input-scale`` (:func:`recognise_rtc`): OPERA RTC-S1 (GeoTIFF tag
  ``..._OUTPUT_BACKSCATTER_EXPRESSION_CONVENTION``, names ``OPERA_L2_RTC-S1_...``; gamma0 as
  linear power unless the tag says otherwise) and ASF HyP3 RTC (names
  ``S1A_IW_..._RTC30_G_gpuned_..._VV.tif``, whose 2nd letter after ``_G_`` is the scale:
  ``p`` power, ``a`` amplitude, ``d`` decibels);
* anything else is read as it is, its scale given by the caller or detected from its values
  (:func:`sar_colorizer.sar.radiometry.detect_input_scale`, which warns about 16-bit values
  that look like GRD digital numbers).

:meth:`SarInput.output_tags` says what the input was taken to be (product, calibration, noise
removal, scale and how it was known, bands, normalisation reference); predict writes them into
its outputs' metadata (``SARCOLOR_INPUT_*``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sar_colorizer.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["SarInput", "open_sar_input", "recognise_rtc", "reference_tags"]

# ASF HyP3 RTC: S1x_yy_aaaaaaaaTbbbbbb_ppo_RTCzz_u_defklm_ssss_PP.tif (HyP3 product guide):
# d gamma0 (g) or sigma0 (s), e power (p), decibels (d) or amplitude (a).
_HYP3 = re.compile(
    r"^S1[A-D]_(?:IW|EW|SM|WV)_\d{8}T\d{6}_[DS][HV][PRO]_RTC\d{2}_[A-Z]_"
    r"(?P<radiometry>[gs])(?P<scale>[pda])[uw][nf][ec][dm]_[0-9A-Z]{4}",
    re.IGNORECASE,
)
_HYP3_SCALES = {"p": "linear", "d": "db", "a": "amplitude"}
_OPERA_NAME = re.compile(r"^OPERA_L2_RTC-S1", re.IGNORECASE)


@dataclass(frozen=True)
class SarInput:
    """A SAR input as it will be read.

    Attributes:
        path: The raster to read (for a product: the temporary backscatter GeoTIFF).
        source: What the user gave.
        scale: The radiometric scale the input is known to be in, or None to use the caller's
            (``"auto"`` detects it).
        tags: ``SARCOLOR_INPUT_*`` metadata saying what the input was taken to be.
    """

    path: Path | str
    source: Path | str
    scale: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def input_scale(self, requested: str) -> str:
        """The scale to read with: the input's own (product, RTC) unless another was asked for."""
        if self.scale is None or requested in ("auto", self.scale):
            return self.scale or requested
        logger.warning(
            "%s holds %s in %s scale, but --input-scale %s was given; reading it as %s",
            self.source, self.tags.get("SARCOLOR_INPUT_PRODUCT", "backscatter"), self.scale,
            requested, requested,
        )
        return requested

    def output_tags(
        self,
        scale: str,
        requested: str,
        band_names: Sequence[str],
        references: Sequence[float],
        reference_source: str | None = None,
    ) -> dict[str, str]:
        """``SARCOLOR_INPUT_*`` tags for outputs made from this input.

        Args:
            scale: The scale the values were read in.
            requested: The scale asked for (``"auto"``: detected, unless the input knew it).
            band_names: The SAR bands used, in model order.
            references: Per band, the linear power that became relative intensity 1.
            reference_source: Where the references came from (the image itself, a fixed
                value, another raster); None: not recorded.
        """
        if self.scale is not None and requested in ("auto", self.scale):
            how = "from the product" if "SARCOLOR_INPUT_CALIBRATION" in self.tags else (
                "from the file's metadata and name")
        else:
            how = "detected from the values" if requested == "auto" else "given"
        tags = {"SARCOLOR_INPUT": str(self.source), **self.tags}
        tags["SARCOLOR_INPUT_SCALE"] = f"{scale} ({how})"
        tags["SARCOLOR_INPUT_BANDS"] = ",".join(band_names)
        tags.update(reference_tags(references, reference_source))
        return tags


def recognise_rtc(path: str | os.PathLike[str], tags: Mapping[str, str]) -> tuple[str, str] | None:
    """The scale and a description of an analysis-ready RTC GeoTIFF, from its tags and name.

    Args:
        path: The file (its name is read).
        tags: Its dataset tags (``rasterio``'s ``src.tags()``).

    Returns:
        ``(scale, description)``, e.g. ``("linear", "OPERA RTC-S1 gamma0 ...")``; None when the
        raster is neither an OPERA RTC-S1 nor a HyP3 RTC product.
    """
    name = Path(os.fspath(path)).name
    upper = {str(key).upper(): str(value) for key, value in tags.items()}
    expression = next(
        (value for key, value in upper.items()
         if key.endswith("OUTPUT_BACKSCATTER_EXPRESSION_CONVENTION")), None,
    )
    normalisation = next(
        (value for key, value in upper.items()
         if key.endswith("OUTPUT_BACKSCATTER_NORMALIZATION_CONVENTION")), "gamma0",
    )
    is_opera = bool(_OPERA_NAME.match(name)) or upper.get("PRODUCT_TYPE", "").upper() == "RTC-S1"
    if is_opera or expression is not None:
        text = (expression or "linear backscatter intensity").lower()
        if "amplitude" in text:
            scale = "amplitude"
        elif "db" in text or "decibel" in text:
            scale = "db"
        else:
            scale = "linear"
        source = "OPERA RTC-S1" if is_opera else "RTC GeoTIFF"
        how = f"metadata: {expression}" if expression else "OPERA's default, linear power"
        return scale, f"{source} {normalisation} ({how})"
    match = _HYP3.match(name)
    if match:
        scale = _HYP3_SCALES[match["scale"].lower()]
        radiometry = "gamma0" if match["radiometry"].lower() == "g" else "sigma0"
        return scale, f"ASF HyP3 RTC {radiometry} ({scale}, from the file name)"
    return None


def _raster_tags(path: str | os.PathLike[str]) -> dict[str, str]:
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return dict(src.tags())
    except RasterioError:
        return {}  # the reader says what is wrong with it


@contextlib.contextmanager
def open_sar_input(
    path: str | os.PathLike[str],
    product_options: object | None = None,
    *,
    bands: str | int | Sequence[str | int] | None = None,
    progress: bool = True,
    workdir: str | os.PathLike[str] | None = None,
) -> Iterator[SarInput]:
    """Open a SAR input for reading as a raster; a product is calibrated and geocoded first
    (to a temporary file, deleted when the block ends).

    Args:
        path: A raster GDAL reads, or a Sentinel-1 GRD product (``.SAFE``, ``manifest.safe``,
            ``.zip``).
        product_options: :class:`sar_colorizer.io.s1product.ProductOptions` for products.
        bands: The bands the caller will read; polarisation names (``"VH"``) make a product
            calibrate only those (unless ``product_options`` names its own).
        progress: Progress bars while a product is calibrated.
        workdir: Folder for a product's temporary files (default: the system's).

    Yields:
        The :class:`SarInput`.

    Raises:
        ProductError: An incomplete, damaged or unsupported product.
    """
    from sar_colorizer.io.raster import input_path, is_virtual_path
    from sar_colorizer.sar.polarisation import polarisations_in
    from sar_colorizer.sar.product import is_product_path

    path = input_path(path)
    if is_product_path(path):
        from sar_colorizer.io.s1product import ProductOptions, backscatter_raster

        if product_options is not None and not isinstance(product_options, ProductOptions):
            raise InputError(f"product options must be ProductOptions, not {product_options!r}")
        options = product_options or ProductOptions()
        wanted = polarisations_in(bands if isinstance(bands, str | None) else str(bands)
                                  if isinstance(bands, int) else ",".join(map(str, bands)))
        if options.polarisations is None and wanted:
            options = dataclasses.replace(options, polarisations=wanted)
        with backscatter_raster(path, options, progress=progress,
                                workdir=workdir) as (raster, tags):
            logger.info("%s: %s, %s", path, tags["SARCOLOR_INPUT_PRODUCT"],
                        tags["SARCOLOR_INPUT_CALIBRATION"])
            yield SarInput(raster, path, "linear", tags)
        return
    tags = {} if is_virtual_path(path) else _raster_tags(path)  # no second remote open
    recognised = recognise_rtc(path, tags)
    if recognised is not None:
        scale, description = recognised
        logger.info("%s: %s, read as %s", path, description, scale)
        yield SarInput(path, path, scale, {"SARCOLOR_INPUT_PRODUCT": description,
                                           "SARCOLOR_INPUT_SCALE": scale})
        return
    yield SarInput(path, path)


def reference_tags(references: Sequence[float], source: str | None = None) -> dict[str, str]:
    """An output's metadata about its reference: ``SARCOLOR_INPUT_REFERENCE`` (linear power
    per band), ``SARCOLOR_INPUT_REFERENCE_DB`` (the same in dB) and, when known,
    ``SARCOLOR_INPUT_REFERENCE_SOURCE`` (own image, fixed value, or another raster)."""
    tags = {
        "SARCOLOR_INPUT_REFERENCE": ",".join(f"{value:.6g}" for value in references),
        "SARCOLOR_INPUT_REFERENCE_DB": ",".join(
            f"{10.0 * math.log10(value):.4f}" for value in references
        ),
    }
    if source is not None:
        tags["SARCOLOR_INPUT_REFERENCE_SOURCE"] = source
    return tags
