"""The files a streamed colorisation writes: colour raster, AB, confidence, quicklook.

Output profiles start from the source's (same grid, CRS and transform); each file is written
window by window through :class:`~sar_colorizer.io.writer.RasterWriter` (atomically) and GDAL's
block cache is sized for the strips that streaming reuses (:func:`gdal_cache_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.color.constants import AB_SCALE

if TYPE_CHECKING:
    from sar_colorizer.io.dataset import RasterInfo
    from sar_colorizer.io.writer import RasterWriter

__all__ = ["OutputWriters", "RasterOutputs", "gdal_cache_bytes", "output_profiles"]

#: Source creation options that do not carry over to outputs of another data type.
#: Band descriptions of the ``--ab-output`` raster (GIS tools show them as band names).
AB_DESCRIPTIONS = ("a_cielab", "b_cielab")
_SOURCE_ONLY_OPTIONS = ("predictor", "nbits", "pixeltype", "photometric", "alpha")


def output_profiles(profile: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Profiles of the RGB output and the AB output, starting from the source's profile."""
    base = {k: v for k, v in profile.items() if k.lower() not in _SOURCE_ONLY_OPTIONS}
    rgb = dict(base, count=3, dtype="uint8", nodata=None)
    ab = dict(base, count=2, dtype="float32", nodata=float("nan"))
    return rgb, ab


def gdal_cache_bytes(info: RasterInfo, with_ab: bool) -> int:
    """GDAL block cache for streaming: two block rows (up to 512 px) of input and outputs.

    Strips are written in slices narrower than a block row, so a block row of the output must
    stay cached until it is complete; the input's block rows are read by two strips each.
    GDAL's default (5 % of RAM) would grow the process by hundreds of MB on large machines.
    """
    profile = info.profile
    block_rows = min(max(int(profile.get("blockysize") or 1), 512), 2048)
    in_bytes = info.count * np.dtype(info.dtype).itemsize
    out_bytes = 4 + (8 if with_ab else 0)  # RGBA uint8, AB 2 x float32
    return max(32 * 2**20, 2 * block_rows * info.width * (in_bytes + out_bytes))


@dataclass(frozen=True)
class RasterOutputs:
    """The files one :func:`~sar_colorizer.inference.raster.colorize_raster` call writes.

    Attributes:
        colour: The colorized raster (RGB with alpha, or RGB for JPEG).
        driver: Its GDAL driver; None: from the extension.
        ab: Predicted a*, b* (CIELAB units) as a float32 2-band GeoTIFF, NaN on nodata.
        quicklook: A side-by-side PNG (:mod:`~sar_colorizer.inference.quicklook`).
        confidence: Predicted sigma of a*, b* (CIELAB units), float32 1-band GeoTIFF.
        overwrite: Replace existing outputs.
        creation_options: GDAL creation options for the colour raster.
        tags: Metadata written into every raster output (``SARCOLOR_INPUT_*``: what the input
            was taken to be).
    """

    colour: Path
    driver: str | None = None
    ab: Path | None = None
    quicklook: Path | None = None
    confidence: Path | None = None
    overwrite: bool = False
    creation_options: dict[str, str] | None = None
    tags: Mapping[str, str] | None = None

    def paths(self) -> list[Path]:
        """Every file to write."""
        return [p for p in (self.colour, self.ab, self.quicklook, self.confidence) if p is not None]

    def check(self, in_path: Path | str) -> None:
        """Refuse outputs that repeat the input or each other, or exist without ``overwrite``.

        Raises:
            InputError: Two of the files are the same.
            OutputExistsError: An output exists and ``overwrite`` is False.
        """
        from sar_colorizer.io.output_policy import check_distinct, check_output_path

        outputs = self.paths()
        check_distinct(in_path, outputs)
        for path in outputs:
            check_output_path(path, self.overwrite)

    def open(self, stack: ExitStack, profile: dict[str, Any]) -> OutputWriters:
        """Writers for the rasters (not the quicklook), closed (finished) by ``stack``."""
        from sar_colorizer.io.writer import RasterWriter

        rgb_profile, ab_profile = output_profiles(profile)
        colour = stack.enter_context(
            RasterWriter(
                self.colour,
                rgb_profile,
                driver=self.driver,
                overwrite=self.overwrite,
                creation_options=self.creation_options,
                tags=self.tags,
            )
        )
        ab = None
        if self.ab is not None:
            ab = stack.enter_context(
                RasterWriter(self.ab, ab_profile, driver="GTiff", overwrite=self.overwrite,
                             descriptions=AB_DESCRIPTIONS, tags=self.tags)
            )
        confidence = None
        if self.confidence is not None:
            confidence = stack.enter_context(
                RasterWriter(self.confidence, dict(ab_profile, count=1), driver="GTiff",
                             overwrite=self.overwrite, descriptions=("ab_sigma_cielab",),
                             tags=self.tags)
            )
        return OutputWriters(colour, ab, confidence)


@dataclass(frozen=True)
class OutputWriters:
    """The open rasters of :class:`RasterOutputs`."""

    colour: RasterWriter
    ab: RasterWriter | None = None
    confidence: RasterWriter | None = None

    @property
    def colour_only(self) -> bool:
        """Only the colour raster is written and what it leaves unwritten reads back as
        nodata (an alpha band: unwritten blocks are 0, transparent): a writer may skip
        columns and rows without valid pixels (:meth:`write_rows` with ``col0``)."""
        return self.ab is None and self.confidence is None and self.colour.alpha

    def write_rows(
        self,
        top: int,
        rgb: np.ndarray,
        ab_norm: np.ndarray,
        sigma: np.ndarray | None,
        valid: np.ndarray,
        col0: int = 0,
    ) -> None:
        """Write scene rows from ``top`` on: ``rgb`` uint8 (h, w, 3) and ``valid`` (h, w) at
        columns from ``col0`` on (the full width W unless :attr:`colour_only`), ``ab_norm``
        (h, W, 2) normalised a*, b* and ``sigma`` (h, W) CIELAB units or None, full width."""
        from rasterio.windows import Window

        height, width = valid.shape
        window = Window(col0, top, width, height)
        self.colour.write(rgb.transpose(2, 0, 1), window, valid=valid)
        if self.ab is not None:
            ab = ab_norm * np.float32(AB_SCALE)
            ab[~valid] = np.nan
            self.ab.write(ab.transpose(2, 0, 1), window, valid=valid)
        if self.confidence is not None and sigma is not None:
            sigma_block = sigma.copy()
            sigma_block[~valid] = np.nan
            self.confidence.write(sigma_block[None], window, valid=valid)
