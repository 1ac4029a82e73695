"""Sentinel-1 GRD products made by the tests from the real metadata in ../shared/data/s1-grd-safe.

The shared product's pixels are zeros, so :func:`make_product` copies its XML files (a few MB)
into a temporary folder, optionally cuts the product down by an integer ``factor`` (image size,
pixel spacing and every line/pixel coordinate of the geolocation grid, calibration and noise
LUTs divided by it: the same footprint, fewer and larger pixels), and writes measurement TIFFs
made from a known backscatter image through the inverse calibration,

    DN = sqrt(sigma0 * A_sigma**2 + noise)

where ``A_sigma`` and ``noise`` are interpolated here independently of the package
(scipy's bilinear ``RegularGridInterpolator`` on the LUT grid, and a loop over the azimuth
noise blocks). A VH image is a copy of the VV files under the VH names the manifest lists.

``mode="EW"`` makes an Extra Wide dual HH/HV product of the same metadata, named as real EW
GRDM products are: ``S1B_EW_GRDM_1SDH_...``, files ``s1b-ew-grd-hh-...-001`` and
``s1b-ew-grd-hv-...-002``, manifest version ``.../grd/standard/ewdp``, mode and swath ``EW``
in the manifest and every annotation header, sub-swaths ``EW1``... and polarisation fields
``HH``/``HV``; HH is the real VV metadata, HV its twin (the geometry, LUTs and footprint are the
real IW ones: an EW product's layout, not an EW acquisition).
"""

from __future__ import annotations

import math
import shutil
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy.interpolate import RegularGridInterpolator

REPO = Path(__file__).resolve().parents[1]
SAFE_DATA = REPO.parent / "shared" / "data" / "s1-grd-safe"
NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
EW_NAME = NAME.replace("_IW_GRDH_1SDV_", "_EW_GRDM_1SDH_")
FULL_SIZE = (16705, 26102)  # lines, samples
# What each mode's products call the shared product's two images (co-, cross-polarisation).
POLARISATIONS = {"IW": ("VV", "VH"), "EW": ("HH", "HV")}
# IW names -> EW names, in file names and in the manifest's and annotations' text.
_EW_TEXT = (
    ("S1B_IW_GRDH_1SDV", "S1B_EW_GRDM_1SDH"), ("S1B_IW_SL1__1_DV", "S1B_EW_SL1__1_DH"),
    ("S1B_IW_RAW__0SDV", "S1B_EW_RAW__0SDH"), ("-iw-grd-vv-", "-ew-grd-hh-"),
    ("-iw-grd-vh-", "-ew-grd-hv-"), ("s1biwgrdvv", "s1bewgrdhh"), ("s1biwgrdvh", "s1bewgrdhv"),
    ("/iwdp\"", "/ewdp\""), (">IW<", ">EW<"), (">IW1<", ">EW1<"), (">IW2<", ">EW2<"),
    (">IW3<", ">EW3<"), ("IW_Default", "EW_Default"), ("Sentinel-1 IW ", "Sentinel-1 EW "),
)


def source_safe() -> Path:
    """The shared product's .SAFE folder; skips the test when it is absent."""
    safe = SAFE_DATA / f"{NAME}.SAFE"
    if not (safe / "manifest.safe").is_file():
        pytest.skip(f"real Sentinel-1 metadata not found at {safe} (../shared/data/s1-grd-safe)")
    return safe


def _scaled(text: str | None, factor: int) -> str:
    return " ".join(repr(float(v) / factor) for v in (text or "").split())


def _scale_xml(path: Path, factor: int, kind: str) -> None:
    tree = ET.parse(path)
    root = tree.getroot()
    if kind == "annotation":
        info = root.find("imageAnnotation/imageInformation")
        assert info is not None
        for name in ("numberOfSamples", "numberOfLines"):
            element = info.find(name)
            assert element is not None and element.text
            element.text = str(math.ceil(int(element.text) / factor))
        for name in ("rangePixelSpacing", "azimuthPixelSpacing"):
            element = info.find(name)
            assert element is not None and element.text
            element.text = repr(float(element.text) * factor)
        for point in root.iter("geolocationGridPoint"):
            for name in ("line", "pixel"):
                element = point.find(name)
                assert element is not None
                element.text = _scaled(element.text, factor)
    else:
        for tag in ("calibrationVector", "noiseRangeVector", "noiseVector"):
            for vector in root.iter(tag):
                for name in ("line", "pixel"):
                    element = vector.find(name)
                    assert element is not None
                    element.text = _scaled(element.text, factor)
        for vector in root.iter("noiseAzimuthVector"):
            for name, rounding in (("firstAzimuthLine", math.ceil), ("firstRangeSample", math.ceil),
                                   ("lastAzimuthLine", math.floor), ("lastRangeSample", math.floor)):
                element = vector.find(name)
                assert element is not None and element.text
                element.text = str(rounding(int(element.text) / factor))
            element = vector.find("line")
            assert element is not None
            element.text = _scaled(element.text, factor)
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def _vectors(root: ET.Element, tag: str, value: str) -> tuple[np.ndarray, list, list]:
    lines, pixels, values = [], [], []
    for vector in root.iter(tag):
        lines.append(float(vector.findtext("line") or "nan"))
        pixels.append(np.array((vector.findtext("pixel") or "").split(), dtype=float))
        values.append(np.array((vector.findtext(value) or "").split(), dtype=float))
    return np.array(lines), pixels, values


def calibration_lut(path: Path, shape: tuple[int, int], name: str = "sigmaNought",
                    rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """``A`` over the image (or a part of it): scipy's bilinear interpolation on the LUT grid
    (every calibration vector has the same pixels), held constant beyond its ends."""
    lines, pixels, values = _vectors(ET.parse(path).getroot(), "calibrationVector", name)
    grid = RegularGridInterpolator((lines, pixels[0]), np.stack(values), method="linear")
    r = np.arange(shape[0])[rows].astype(float)
    c = np.arange(shape[1])[cols].astype(float)
    rr, cc = np.meshgrid(np.clip(r, lines[0], lines[-1]),
                         np.clip(c, pixels[0][0], pixels[0][-1]), indexing="ij")
    return grid((rr, cc))


def noise_lut(path: Path, shape: tuple[int, int],
              rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """Noise power over the image (or a part): range vectors interpolated line by line (their
    pixel positions differ), times the azimuth vector of the block each pixel lies in."""
    root = ET.parse(path).getroot()
    lines, pixels, values = _vectors(root, "noiseRangeVector", "noiseRangeLut")
    r = np.arange(shape[0])[rows]
    c = np.arange(shape[1])[cols]
    along = np.stack([np.interp(c, p, v) for p, v in zip(pixels, values, strict=True)])
    noise = np.empty((r.size, c.size))
    for i, line in enumerate(r):
        k = int(np.clip(np.searchsorted(lines, line, side="right") - 1, 0, len(lines) - 2))
        t = float(np.clip((line - lines[k]) / (lines[k + 1] - lines[k]), 0, 1))
        noise[i] = (1 - t) * along[k] + t * along[k + 1]
    for vector in root.iter("noiseAzimuthVector"):
        l0, l1 = int(vector.findtext("firstAzimuthLine")), int(vector.findtext("lastAzimuthLine"))
        s0, s1 = int(vector.findtext("firstRangeSample")), int(vector.findtext("lastRangeSample"))
        az_lines = np.array(vector.findtext("line").split(), dtype=float)
        az_values = np.array(vector.findtext("noiseAzimuthLut").split(), dtype=float)
        row_in = (r >= l0) & (r <= l1)
        col_in = (c >= s0) & (c <= s1)
        scale = np.interp(r[row_in], az_lines, az_values)
        noise[np.ix_(row_in, col_in)] *= scale[:, None]
    return noise


@dataclass
class Product:
    """A product made by :func:`make_product`."""

    safe: Path
    shape: tuple[int, int]  # lines, samples
    backscatter: dict[str, np.ndarray]  # sigma0 (linear) per polarisation, NaN = no data
    factor: int
    co_pol: str = "vv"  # the polarisation whose files hold the real metadata

    def file(self, pattern: str, pol: str | None = None) -> Path:
        return next(self.safe.glob(pattern.replace("{pol}", pol or self.co_pol)))

    @property
    def calibration(self) -> Path:
        return self.file("annotation/calibration/calibration-*-{pol}-*.xml")

    @property
    def noise(self) -> Path:
        return self.file("annotation/calibration/noise-*-{pol}-*.xml")

    @property
    def annotation(self) -> Path:
        return self.file("annotation/s1?-*-{pol}-*.xml")

    def gcps(self) -> np.ndarray:
        """(line, pixel, lat, lon) of the geolocation grid, in this product's pixels."""
        root = ET.parse(self.annotation).getroot()
        return np.array([[float(p.findtext(k)) for k in ("line", "pixel", "latitude", "longitude")]
                         for p in root.iter("geolocationGridPoint")])

    def zip(self, path: Path | None = None) -> Path:
        """The product as downloaded: NAME.zip holding NAME.SAFE/."""
        path = path or self.safe.with_suffix(".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for file in sorted(self.safe.rglob("*")):
                if file.is_file():
                    archive.write(file, f"{self.safe.name}/{file.relative_to(self.safe)}")
        return path


def _as_ew(safe: Path) -> Path:
    """Rename the IW product at ``safe`` (measurement not yet written) as an EW GRDM dual HH/HV
    product; returns its new .SAFE folder."""
    for path in sorted(safe.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for old, new in _EW_TEXT:
            text = text.replace(old, new)
        if path.name == "manifest.safe":
            text = text.replace(">VV<", ">HH<").replace(">VH<", ">HV<")
        else:  # the VH twin's headers still say VV
            text = text.replace(">VV<", ">HV<" if "-vh-" in path.name else ">HH<")
        path.write_text(text, encoding="utf-8")
        name = path.name
        for old, new in _EW_TEXT:
            name = name.replace(old, new)
        path.rename(path.with_name(name))
    return safe.rename(safe.with_name(safe.name.replace(NAME, EW_NAME)))


Backscatter = Callable[[tuple[int, int], str], np.ndarray]


def make_product(
    folder: Path,
    backscatter: Backscatter,
    factor: int = 16,
    polarisations: Sequence[str] | None = None,
    dn_dtype: str = "uint16",
    with_noise: bool = True,
    mode: str = "IW",
) -> Product:
    """Copy the shared product's metadata into ``folder``, cut down by ``factor``, and write
    measurement TIFFs from ``backscatter(shape, pol)`` (sigma0, linear; NaN or 0 -> DN 0, the
    border-noise fill).

    Args:
        folder: Where NAME.SAFE is made.
        backscatter: Known sigma0 per polarisation over the (cut-down) image.
        factor: Integer reduction of the image size (1 keeps the full 26102 x 16705 px).
        polarisations: VV, and VH as a copy of VV's metadata under the VH names (HH and HV
            for ``mode="EW"``); both by default.
        dn_dtype: ``"uint16"`` as in real products (DN rounded), or ``"float32"`` (exact).
        with_noise: Add the thermal noise LUT's power to DN**2 (what noise removal subtracts).
        mode: ``"IW"`` (the shared product as it is) or ``"EW"`` (renamed as an EW GRDM dual
            HH/HV product).
    """
    co_pol, cross_pol = POLARISATIONS[mode]
    polarisations = polarisations or (co_pol, cross_pol)
    source = source_safe()
    safe = folder / f"{NAME}.SAFE"
    for file in source.rglob("*"):
        if file.is_file() and file.parent.name != "measurement":
            target = safe / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    (safe / "measurement").mkdir()
    for pattern in ("annotation/s1?-*.xml", "annotation/calibration/*.xml"):
        for path in safe.glob(pattern):
            if factor != 1:
                kind = "annotation" if path.parent.name == "annotation" else "lut"
                _scale_xml(path, factor, kind)
    if cross_pol in polarisations:  # the VV files under the VH names of the manifest (002)
        for path in list(safe.rglob("*-vv-*-001.xml")):
            twin = path.with_name(path.name.replace("-vv-", "-vh-").replace("-001.", "-002."))
            shutil.copyfile(path, twin)
    if mode == "EW":
        safe = _as_ew(safe)
    shape = (math.ceil(FULL_SIZE[0] / factor), math.ceil(FULL_SIZE[1] / factor))
    product = Product(safe, shape, {}, factor, co_pol.lower())
    for pol in polarisations:
        sigma0 = np.asarray(backscatter(shape, pol), dtype=np.float64)
        power = sigma0 * calibration_lut(product.calibration, shape) ** 2
        if with_noise:
            power += noise_lut(product.noise, shape)
        dn = np.sqrt(power)
        empty = ~np.isfinite(sigma0) | (sigma0 <= 0)
        if dn_dtype == "uint16":
            dn = np.clip(np.round(dn), 1, 65534)
        dn[empty] = 0
        number = "001" if pol == co_pol else "002"
        name = (f"s1b-{mode.lower()}-grd-{pol.lower()}-20211223t051122-20211223t051147-030148-"
                f"039993-{number}.tiff")
        with rasterio.open(safe / "measurement" / name, "w", driver="GTiff", width=shape[1],
                           height=shape[0], count=1, dtype=dn_dtype) as dst:
            dst.write(dn.astype(dn_dtype), 1)
        product.backscatter[pol] = np.where(empty, np.nan, sigma0)
    return product
