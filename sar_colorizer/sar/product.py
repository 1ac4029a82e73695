"""Sentinel-1 GRD products as downloaded: the ``.SAFE`` folder, its ``manifest.safe``, the ``.zip``.

A Level-1 GRD product holds, per polarisation, a measurement GeoTIFF of digital numbers (DN,
uint16 amplitudes in radar geometry: lines = azimuth time, pixels = ground range) and XML
annotations (Sentinel-1 Product Specification, ESA S1-RS-MDA-52-7441):

* the **product annotation** (``annotation/s1?-iw-grd-vv-*.xml``): image size, pixel spacing
  and the **geolocation grid**, a few hundred points that give latitude, longitude and height
  of (line, pixel) positions (its sample positions are pixel centres);
* the **calibration LUTs** (``annotation/calibration/calibration-*.xml``): vectors of
  ``sigmaNought``, ``betaNought``, ``gamma`` and ``dn`` at lines and pixels; a backscatter
  coefficient is ``DN**2 / A**2`` with ``A`` interpolated bilinearly from its LUT;
* the **thermal noise LUTs** (``annotation/calibration/noise-*.xml``): noise power in DN**2
  units, as range vectors (``noiseRangeVector``, or ``noiseVector`` before IPF 2.9) times,
  since IPF 2.9, azimuth vectors per swath block (``noiseAzimuthVector``).

``manifest.safe`` lists every file with its role (``repID``), the product type, mode,
polarisations and the footprint. Everything here is read with the standard library
(``xml.etree``, ``zipfile``); :func:`calibrate_dn` is the radiometry of one window. Pixels
are read by GDAL (``/vsizip/`` for zips), geocoded and written in
:mod:`sar_colorizer.io.s1product`.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sar_colorizer.errors import ProductError

logger = logging.getLogger(__name__)

__all__ = [
    "Annotation",
    "AzimuthNoiseBlock",
    "LineVectors",
    "NoiseLUT",
    "Sentinel1Product",
    "calibrate_dn",
    "is_product_path",
    "open_product",
]

MANIFEST = "manifest.safe"

# manifest.safe dataObject roles (repID) of the files read here.
_ROLES = {
    "s1Level1ProductSchema": "annotation",
    "s1Level1CalibrationSchema": "calibration",
    "s1Level1NoiseSchema": "noise",
    "s1Level1MeasurementSchema": "measurement",
}
_ROLE_WORDS = {
    "annotation": "product annotation",
    "calibration": "calibration LUT",
    "noise": "thermal noise LUT",
    "measurement": "measurement",
}
# s1a-iw-grd-vv-20211223t051122-...: mission, mode (or swath), product, polarisation.
_IMAGE_NAME = re.compile(r"^s1[a-d]-(?P<swath>[a-z0-9]+)-(?P<type>[a-z]+)-(?P<pol>hh|hv|vv|vh)-")
_CALIBRATION_NAMES = {"sigma0": "sigmaNought", "beta0": "betaNought", "gamma0": "gamma"}
CALIBRATIONS: tuple[str, ...] = tuple(_CALIBRATION_NAMES)
"""Backscatter conventions a product can be calibrated to: sigma0 (ground range, per unit
ground area), beta0 (radar brightness, per unit slant-range area), gamma0 (per unit area
perpendicular to the look direction; ellipsoid incidence, not terrain-flattened)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _first_text(root: ET.Element, name: str) -> str | None:
    for element in root.iter():
        if _local(element.tag) == name and element.text and element.text.strip():
            return element.text.strip()
    return None


def _numbers(text: str | None) -> np.ndarray:
    return np.array((text or "").split(), dtype=np.float64)


def is_product_path(path: str | os.PathLike[str]) -> bool:
    """True for what :func:`open_product` reads: a ``.SAFE`` folder (or any folder holding a
    ``manifest.safe``), a ``manifest.safe`` file, or a ``.zip`` file."""
    text = os.fspath(path)
    if text.startswith("/vsi") or "://" in text:
        return False
    candidate = Path(text)
    if candidate.name.lower() == MANIFEST:
        return True
    if candidate.suffix.lower() == ".zip":
        return True
    return candidate.is_dir() and (
        candidate.suffix.upper() == ".SAFE" or (candidate / MANIFEST).is_file()
    )


class _Files:
    """Reads the files of a product, from a folder or from inside a zip."""

    def __init__(self, path: Path, zip_prefix: str | None = None) -> None:
        self.path = path
        self.zip_prefix = zip_prefix  # "NAME.SAFE/" inside the zip, None for a folder
        self._names: frozenset[str] = frozenset()
        if zip_prefix is not None:
            with zipfile.ZipFile(path) as archive:
                self._names = frozenset(archive.namelist())

    def _member(self, relative: str) -> str:
        return f"{self.zip_prefix}{relative}"

    def exists(self, relative: str) -> bool:
        if self.zip_prefix is not None:
            return self._member(relative) in self._names
        return (self.path / relative).is_file()

    def read(self, relative: str) -> bytes:
        if self.zip_prefix is not None:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    return archive.read(self._member(relative))
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise ProductError(
                    f"{self.path}: cannot read {relative} from the zip ({error}); the download "
                    "may be damaged: download it again"
                ) from None
        return (self.path / relative).read_bytes()

    def gdal_path(self, relative: str) -> str:
        """The name GDAL opens the file by (``/vsizip/`` inside a zip)."""
        if self.zip_prefix is not None:
            return f"/vsizip/{self.path.resolve()}/{self._member(relative)}"
        return str(self.path / relative)


def _locate(path: Path) -> tuple[_Files, str]:
    """The file reader and the product name of a SAFE folder, manifest or zip."""
    if not path.exists():
        raise ProductError(f"{path}: no such file or folder")
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise ProductError(
                f"{path}: no {MANIFEST} in this folder; give the product's .SAFE folder or "
                "its .zip as downloaded"
            )
        return _Files(path), path.name.removesuffix(".SAFE")
    if path.name.lower() == MANIFEST:
        return _Files(path.parent), path.parent.name.removesuffix(".SAFE")
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                manifests = [
                    name for name in archive.namelist()
                    if name.endswith("/" + MANIFEST) and name.count("/") == 1
                ]
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ProductError(
                f"{path}: not a readable zip ({error}); the download is truncated or damaged: "
                "download it again, or give the unpacked .SAFE folder"
            ) from None
        if len(manifests) != 1:
            raise ProductError(
                f"{path}: holds {len(manifests)} Sentinel-1 products (NAME.SAFE/{MANIFEST}), "
                "not 1; give a product's .zip as downloaded or its .SAFE folder"
            )
        prefix = manifests[0][: -len(MANIFEST)]
        return _Files(path, prefix), prefix.rstrip("/").removesuffix(".SAFE")
    raise ProductError(
        f"{path}: not a Sentinel-1 product; give a .SAFE folder, its {MANIFEST} or the .zip"
    )


@dataclass(frozen=True)
class LineVectors:
    """A LUT given as vectors along pixels at some lines (calibration and range noise).

    Attributes:
        lines: Line of each vector (ascending).
        pixels: Per vector, the pixels its values are given at (ascending).
        values: Per vector, the values at those pixels.
    """

    lines: np.ndarray
    pixels: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]

    def window(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """Bilinear interpolation of the LUT over a window of the image: linear along pixels
        within each vector, then linear between the two vectors around each line (held
        constant beyond the first and last vector).

        Returns:
            float64 ``(height, width)``.
        """
        rows = np.arange(row_off, row_off + height, dtype=np.float64)
        cols = np.arange(col_off, col_off + width, dtype=np.float64)
        if len(self.lines) == 1:
            single = np.interp(cols, self.pixels[0], self.values[0])
            return np.broadcast_to(single, (height, width)).copy()
        upper = np.clip(np.searchsorted(self.lines, rows, side="right"), 1, len(self.lines) - 1)
        lower = upper - 1
        span = self.lines[upper] - self.lines[lower]
        weight = np.clip((rows - self.lines[lower]) / span, 0.0, 1.0)
        out = np.empty((height, width), dtype=np.float64)
        along: dict[int, np.ndarray] = {}

        def vector(k: int) -> np.ndarray:
            if k not in along:
                along[k] = np.interp(cols, self.pixels[k], self.values[k])
            return along[k]

        for k in np.unique(lower):
            rows_k = lower == k
            t = weight[rows_k][:, np.newaxis]
            out[rows_k] = (1.0 - t) * vector(int(k)) + t * vector(int(k) + 1)
        return out


@dataclass(frozen=True)
class AzimuthNoiseBlock:
    """Azimuth noise scaling of one block of the image (a swath over a range of lines)."""

    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    lines: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class NoiseLUT:
    """Thermal noise power in DN**2 units: range vectors times azimuth blocks (IPF >= 2.9) or
    range vectors alone (older products)."""

    range_vectors: LineVectors
    azimuth_blocks: tuple[AzimuthNoiseBlock, ...] = ()

    def window(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """The noise power over a window, float64 ``(height, width)``."""
        noise = self.range_vectors.window(row_off, col_off, height, width)
        rows = np.arange(row_off, row_off + height)
        for block in self.azimuth_blocks:
            r0, r1 = max(block.first_line, row_off), min(block.last_line + 1, row_off + height)
            c0, c1 = max(block.first_sample, col_off), min(block.last_sample + 1, col_off + width)
            if r0 >= r1 or c0 >= c1:
                continue
            scale = np.interp(rows[r0 - row_off : r1 - row_off], block.lines, block.values)
            noise[r0 - row_off : r1 - row_off, c0 - col_off : c1 - col_off] *= scale[:, np.newaxis]
        return noise


@dataclass(frozen=True)
class Annotation:
    """What the product annotation of one image says about its geometry.

    Attributes:
        width, height: Image size (samples, lines).
        range_spacing, azimuth_spacing: Pixel spacing in metres (ground range, azimuth).
        gcps: Geolocation grid as ``(line, pixel, latitude, longitude, height)`` rows; line and
            pixel are those of sample centres.
    """

    width: int
    height: int
    range_spacing: float
    azimuth_spacing: float
    gcps: np.ndarray


def _line_vectors(root: ET.Element, vector_tag: str, value_tag: str, where: str) -> LineVectors:
    lines, pixels, values = [], [], []
    for vector in root.iter(vector_tag):
        line = vector.findtext("line")
        pixel = _numbers(vector.findtext("pixel"))
        value = _numbers(vector.findtext(value_tag))
        if line is None or pixel.size == 0 or pixel.size != value.size:
            raise ProductError(f"{where}: a {vector_tag} without matching pixel and {value_tag}")
        lines.append(float(line))
        pixels.append(pixel)
        values.append(value)
    if not lines:
        raise ProductError(f"{where}: no {vector_tag} with {value_tag}")
    order = np.argsort(lines, kind="stable")
    return LineVectors(
        np.asarray(lines)[order],
        tuple(pixels[k] for k in order),
        tuple(values[k] for k in order),
    )


@dataclass(frozen=True)
class Image:
    """The files of one polarisation, as named in the manifest (relative to the product)."""

    polarisation: str
    annotation: str
    calibration: str
    noise: str
    measurement: str


@dataclass
class Sentinel1Product:
    """A Sentinel-1 Level-1 GRD product, read from its manifest; LUTs are parsed on demand.

    Attributes:
        path: What the user gave (folder, manifest or zip).
        name: Product name (``S1B_IW_GRDH_1SDV_...``).
        mission, mode, product_type: ``"S1B"``, ``"IW"``, ``"GRD"``.
        polarisations: As listed in the manifest (``("VV", "VH")``).
        footprint: ``(longitude, latitude)`` corners from the manifest.
        images: Files per polarisation.
    """

    path: Path
    name: str
    mission: str
    mode: str
    product_type: str
    polarisations: tuple[str, ...]
    footprint: tuple[tuple[float, float], ...]
    images: dict[str, Image]
    files: _Files = field(repr=False)
    _annotations: dict[str, Annotation] = field(default_factory=dict, repr=False)

    def _xml(self, relative: str) -> ET.Element:
        try:
            return ET.fromstring(self.files.read(relative))
        except ET.ParseError as error:
            raise ProductError(
                f"{self.path}: {relative} is not readable XML ({error}); download the product "
                "again"
            ) from None

    def measurement_path(self, polarisation: str) -> str:
        """The measurement GeoTIFF of a polarisation, as GDAL opens it."""
        return self.files.gdal_path(self.images[polarisation].measurement)

    def annotation(self, polarisation: str) -> Annotation:
        """Image size, pixel spacing and geolocation grid of a polarisation."""
        if polarisation not in self._annotations:
            self._annotations[polarisation] = self._read_annotation(self.images[polarisation])
        return self._annotations[polarisation]

    def _read_annotation(self, image: Image) -> Annotation:
        root = self._xml(image.annotation)
        where = f"{self.path}: {image.annotation}"
        info = root.find("imageAnnotation/imageInformation")
        points = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
        if info is None or not points:
            raise ProductError(f"{where}: no image information or geolocation grid")
        try:
            gcps = np.array(
                [[float(p.findtext(k) or "nan") for k in
                  ("line", "pixel", "latitude", "longitude", "height")] for p in points]
            )
            return Annotation(
                width=int(info.findtext("numberOfSamples") or 0),
                height=int(info.findtext("numberOfLines") or 0),
                range_spacing=float(info.findtext("rangePixelSpacing") or "nan"),
                azimuth_spacing=float(info.findtext("azimuthPixelSpacing") or "nan"),
                gcps=gcps,
            )
        except ValueError as error:
            raise ProductError(f"{where}: unreadable number ({error})") from None

    def calibration(self, polarisation: str, calibration: str = "sigma0") -> LineVectors:
        """The calibration LUT (``A``, with ``backscatter = DN**2 / A**2``) of a polarisation.

        Args:
            polarisation: One of :attr:`polarisations`.
            calibration: ``"sigma0"``, ``"beta0"`` or ``"gamma0"`` (:data:`CALIBRATIONS`).
        """
        if calibration not in _CALIBRATION_NAMES:
            raise ProductError(
                f"unknown calibration {calibration!r}; choose one of: {', '.join(CALIBRATIONS)}"
            )
        relative = self.images[polarisation].calibration
        return _line_vectors(
            self._xml(relative), "calibrationVector", _CALIBRATION_NAMES[calibration],
            f"{self.path}: {relative}",
        )

    def noise(self, polarisation: str) -> NoiseLUT:
        """The thermal noise LUT of a polarisation (range and, where given, azimuth vectors)."""
        relative = self.images[polarisation].noise
        root = self._xml(relative)
        where = f"{self.path}: {relative}"
        if root.find("noiseRangeVectorList") is not None:
            range_vectors = _line_vectors(root, "noiseRangeVector", "noiseRangeLut", where)
        else:  # IPF < 2.9: range vectors only, under another name
            range_vectors = _line_vectors(root, "noiseVector", "noiseLut", where)
        blocks = []
        for vector in root.iter("noiseAzimuthVector"):
            lines = _numbers(vector.findtext("line"))
            values = _numbers(vector.findtext("noiseAzimuthLut"))
            if lines.size == 0 or lines.size != values.size:
                raise ProductError(f"{where}: a noiseAzimuthVector without matching line and LUT")
            blocks.append(AzimuthNoiseBlock(
                first_line=int(float(vector.findtext("firstAzimuthLine") or 0)),
                last_line=int(float(vector.findtext("lastAzimuthLine") or 0)),
                first_sample=int(float(vector.findtext("firstRangeSample") or 0)),
                last_sample=int(float(vector.findtext("lastRangeSample") or 0)),
                lines=lines, values=values,
            ))
        return NoiseLUT(range_vectors, tuple(blocks))

    def require(self, polarisations: Sequence[str], noise_removal: bool = True) -> None:
        """Check that the files needed to calibrate these polarisations are present.

        Raises:
            ProductError: Naming the missing file and what works instead.
        """
        for pol in polarisations:
            image = self.images[pol]
            for role in ("measurement", "annotation", "calibration", "noise"):
                relative = getattr(image, role)
                if self.files.exists(relative):
                    continue
                if role == "noise" and not noise_removal:
                    continue
                fix = {
                    "noise": "pass --no-noise-removal to calibrate without thermal noise "
                    "removal, or download the product again",
                    "calibration": "download the product again (or unpack the whole zip); "
                    "without it the measurement TIFF can only be read uncalibrated, as "
                    "--input-scale amplitude",
                }.get(role, "download the product again (or unpack the whole zip)")
                raise ProductError(
                    f"{self.path}: the {pol} {_ROLE_WORDS[role]} {relative} listed in "
                    f"{MANIFEST} is missing; {fix}"
                )


def open_product(path: str | os.PathLike[str]) -> Sentinel1Product:
    """Read a Sentinel-1 GRD product's manifest: a ``.SAFE`` folder, its ``manifest.safe``, or
    the ``.zip`` as downloaded (read in place; GDAL reads its TIFFs through ``/vsizip/``).

    Args:
        path: The product.

    Returns:
        The product; :meth:`Sentinel1Product.require` checks its files.

    Raises:
        ProductError: Not a product, a damaged zip, not a GRD product (SLC, OCN, RAW), or a
            manifest without the files of any polarisation.
    """
    path = Path(path)
    files, name = _locate(path)
    if not files.exists(MANIFEST):
        raise ProductError(f"{path}: no {MANIFEST}; download the product again")
    try:
        root = ET.fromstring(files.read(MANIFEST))
    except ET.ParseError as error:
        raise ProductError(f"{path}: {MANIFEST} is not readable XML ({error})") from None
    product_type = (_first_text(root, "productType") or name.split("_")[2][:3]).upper()
    if product_type != "GRD":
        kind = {"SLC": "an SLC product (complex values in slant range)",
                "OCN": "an OCN product (ocean winds and waves)",
                "RAW": "a RAW product (unfocused)"}.get(product_type, f"a {product_type} product")
        raise ProductError(
            f"{path}: {kind}; sarcolor reads Level-1 GRD products: use the GRD product of the "
            "same acquisition (S1?_IW_GRDH_...)"
        )
    mode = (_first_text(root, "mode") or name.split("_")[1]).upper()
    polarisations = []
    for element in root.iter():
        if _local(element.tag) == "transmitterReceiverPolarisation" and element.text:
            polarisations.append(element.text.strip().upper())
    footprint: tuple[tuple[float, float], ...] = ()
    coordinates = _first_text(root, "coordinates")
    if coordinates:
        pairs = [pair.split(",") for pair in coordinates.split()]
        footprint = tuple((float(lon), float(lat)) for lat, lon in pairs)
    hrefs: dict[tuple[str, str], str] = {}
    for element in root.iter():
        if _local(element.tag) != "dataObject":
            continue
        role = _ROLES.get(element.get("repID", ""))
        location = next((e for e in element.iter() if _local(e.tag) == "fileLocation"), None)
        if role is None or location is None:
            continue
        relative = location.get("href", "").removeprefix("./")
        match = _IMAGE_NAME.match(Path(relative).name.removeprefix(f"{role}-"))
        if match is None:
            continue
        hrefs[(match["pol"].upper(), role)] = relative
    images = {}
    for pol in polarisations:
        roles = {role: hrefs.get((pol, role)) for role in _ROLES.values()}
        if all(roles.values()):
            images[pol] = Image(polarisation=pol, **roles)  # type: ignore[arg-type]
    if not images:
        raise ProductError(
            f"{path}: {MANIFEST} lists no complete image (measurement, annotation, calibration "
            "and noise of one polarisation); download the product again"
        )
    return Sentinel1Product(
        path=path,
        name=name,
        mission=name[:3].upper(),
        mode=mode,
        product_type=product_type,
        polarisations=tuple(pol for pol in polarisations if pol in images),
        footprint=footprint,
        images=images,
        files=files,
    )


def calibrate_dn(
    dn: np.ndarray,
    calibration: np.ndarray,
    noise: np.ndarray | None = None,
    nodata: float | None = None,
) -> np.ndarray:
    """Backscatter in linear power from GRD digital numbers of one window.

    ``backscatter = (DN**2 - noise) / A**2`` (ESA, "Radiometric Calibration of S-1 Level-1
    Products" and "Thermal Denoising of Products Generated by the S-1 IPF"). Noise removal
    leaves slightly negative values in dark areas; they are set to 0 (valid, -100 dB after
    :func:`sar_colorizer.sar.radiometry.linear_to_db`). DN 0 is the border-noise fill of GRD
    products (no data), as is the measurement's declared nodata value.

    Args:
        dn: ``(h, w)`` digital numbers (uint16 in products; any real type).
        calibration: ``(h, w)`` calibration LUT ``A`` over the window (:meth:`LineVectors.window`).
        noise: ``(h, w)`` noise power in DN**2 units over the window, or None for no removal.
        nodata: The measurement's nodata value, if it declares one.

    Returns:
        float32 ``(h, w)`` linear backscatter, NaN where there is no data.
    """
    dn64 = np.asarray(dn, dtype=np.float64)
    power = np.square(dn64)
    if noise is not None:
        power -= noise
        np.maximum(power, 0.0, out=power)
    power /= np.square(calibration)
    invalid = dn64 == 0
    if nodata is not None:
        invalid |= dn64 == nodata
    power[invalid] = np.nan
    return power.astype(np.float32)
