"""Training pairs from STAC catalogs: Sentinel-1 RTC matched with Sentinel-2 Level-2A.

``sarcolor pairs`` (and :func:`make_pairs`) turns a STAC catalog into a folder that
``sarcolor preprocess`` reads as it is::

    OUT/sar/<tile>.tif   VV, VH backscatter in dB (float32, NaN = nodata), band descriptions
    OUT/opt/<tile>.tif   B04, B03, B02 surface reflectance x 10000 (uint16, 0 = nodata: clouds,
                         cloud shadows, snow and the product's own nodata)
    OUT/pairs.csv        sar, optical, split and the provenance of every tile
    OUT/request.json     what was asked (catalog, bbox, dates, collections, limits)

The steps:

1. **Search** the optical collection (default ``sentinel-2-l2a``) for items over ``bbox`` in the
   date range with ``eo:cloud_cover`` at most ``max_cloud``, and the SAR collection (default
   ``sentinel-1-rtc``) over the same box in the range widened by ``max_days``. CATALOG is a STAC
   API (``/search``), or a static catalog (``catalog.json``, local or remote) whose items are
   filtered here the same way.
2. **Match** each optical item with the SAR item nearest in time among those whose footprint
   overlaps the optical footprint inside ``bbox``, at most ``max_days`` apart.
3. **Read** both onto the optical item's own grid (its 10 m red band), tile by tile, straight
   from the assets through GDAL (``/vsicurl/`` for remote Cloud-Optimised GeoTIFFs: only the
   blocks of each tile are fetched). SAR is resampled bilinearly in linear power, then turned
   into dB. The optical scene classification (``SCL``), where the item has one, masks no data,
   defective pixels, cloud shadows, clouds, cirrus and snow
   (:data:`~sar_colorizer.data.stac_assets.SCL_MASKED`).
4. **Keep** tiles whose share of pixels valid in both images is at least ``min_valid``; write
   them, and assign whole acquisitions (optical acquisition days) to ``train`` or ``val``, so
   tiles of one scene pair never sit on both sides.

Everything is written into a temporary folder beside OUT and published with one rename at the
end: an error or an interruption leaves no OUT behind (see :mod:`sar_colorizer.io.atomic`).

Radiometry: Sentinel-1 RTC assets (Planetary Computer's ``sentinel-1-rtc``) hold terrain-
corrected gamma0 in linear power; values <= 0 and the file's nodata are no data. Sentinel-2
Level-2A assets hold reflectance x 10000, with an additive offset of -1000 from processing
baseline 04.00 (January 2022) on; the offset is taken from the asset's ``raster:bands``
(``scale``, ``offset``) where the catalog gives them, else from ``s2:processing_baseline``
(unless ``earthsearch:boa_offset_applied`` says it is applied already), and applied before
writing, so OUT/opt holds plain reflectance x 10000 for every baseline.

Needs the ``stac`` extra (pystac, pystac-client, shapely); ``planetary-computer`` for items of
Microsoft's Planetary Computer, whose asset URLs must be signed (:func:`sign_items`).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from sar_colorizer.data.stac_assets import (
    OPTICAL_ASSETS,
    SAR_ASSETS,
    AssetReader,
    Grid,
    asset_key,
    gdal_settings,
    one_line,
    read_tile,
    tile_grids,
)
from sar_colorizer.errors import InputError, MissingExtraError, install_command

if TYPE_CHECKING:
    import pystac

logger = logging.getLogger(__name__)

#: Default collections, as the public STAC APIs name them (Planetary Computer; Earth Search
#: names the optical collection the same).
DEFAULT_S1_COLLECTION = "sentinel-1-rtc"
DEFAULT_S2_COLLECTION = "sentinel-2-l2a"


SIGNERS = ("auto", "none", "planetary-computer")
_EXTRA_HINT = install_command("stac")


def require(module: str) -> ModuleType:
    """Import a module of the ``stac`` extra, or raise :class:`MissingExtraError` naming it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"sarcolor pairs needs the stac extra ({error.name} is missing): {_EXTRA_HINT}"
        ) from None


# --------------------------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairsRequest:
    """What ``sarcolor pairs`` is asked for.

    Attributes:
        catalog: A STAC API URL, or a static catalog (``catalog.json``: path or URL).
        bbox: ``(west, south, east, north)`` in degrees (WGS 84).
        start: First instant of the optical acquisitions (UTC).
        end: Last instant of the optical acquisitions (UTC).
        s1_collection: Collection of the SAR items (assets ``vv``, ``vh``: linear power).
        s2_collection: Collection of the optical items (assets ``B04``, ``B03``, ``B02``, or
            ``red``, ``green``, ``blue``; ``SCL``/``scl`` where present).
        max_cloud: Largest ``eo:cloud_cover`` (percent) of an optical item.
        max_days: Largest time between the SAR and the optical acquisition, in days.
        size: Side of the square pair tiles in pixels of the optical grid (10 m).
        limit: Most optical acquisitions used (least cloudy first); None: all.
        min_valid: Smallest share of a tile's pixels valid in both images.
        val_fraction: Share of the acquisitions labelled ``val``.
        seed: Seed of the validation draw.
        signer: ``"auto"`` (sign Planetary Computer URLs), ``"none"`` or
            ``"planetary-computer"``.
    """

    catalog: str
    bbox: tuple[float, float, float, float]
    start: datetime
    end: datetime
    s1_collection: str = DEFAULT_S1_COLLECTION
    s2_collection: str = DEFAULT_S2_COLLECTION
    max_cloud: float = 20.0
    max_days: float = 3.0
    size: int = 1024
    limit: int | None = None
    min_valid: float = 0.5
    val_fraction: float = 0.2
    seed: int = 0
    signer: str = "auto"

    def __post_init__(self) -> None:
        west, south, east, north = self.bbox
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise InputError(
                f"--bbox {','.join(f'{v:g}' for v in self.bbox)} is not west,south,east,north "
                "in degrees with west < east and south < north (e.g. 4.5,43.3,4.9,43.6)"
            )
        if self.end < self.start:
            raise InputError(f"--dates: the end {self.end:%Y-%m-%d} is before the start "
                             f"{self.start:%Y-%m-%d}; give START/END")
        if self.size < 16:
            raise InputError(f"--size {self.size} is too small; give at least 16 px (e.g. 1024)")
        if self.signer not in SIGNERS:
            raise InputError(f"unknown signer {self.signer!r}; choose one of {', '.join(SIGNERS)}")

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["start"], record["end"] = _iso(self.start), _iso(self.end)
        record["bbox"] = list(self.bbox)
        return record


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` -> four floats.

    Raises:
        InputError: Not four comma-separated numbers.
    """
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InputError(f"--bbox {text!r} is not W,S,E,N (four numbers in degrees, e.g. "
                         "4.5,43.3,4.9,43.6)")
    west, south, east, north = values
    return west, south, east, north


def parse_dates(text: str) -> tuple[datetime, datetime]:
    """``"START/END"`` (ISO dates or date-times, UTC) -> the first and last instant.

    A plain date as END means the whole day. A single date means that day.

    Raises:
        InputError: Not ISO dates.
    """
    parts = text.split("/")
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise InputError(f"--dates {text!r} is not START/END (e.g. 2023-06-01/2023-08-31)")
    try:
        start = _parse_instant(parts[0].strip())
        end = _parse_instant(parts[1].strip())
    except ValueError:
        raise InputError(f"--dates {text!r}: give ISO dates START/END "
                         "(e.g. 2023-06-01/2023-08-31)") from None
    if len(parts[1].strip()) <= 10:  # a date: to the end of that day
        end = end + timedelta(days=1) - timedelta(microseconds=1)
    return start, end


def _parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Searching
# --------------------------------------------------------------------------------------------


def is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https")



def item_datetime(item: pystac.Item) -> datetime:
    """The acquisition instant of an item (``datetime``, else the middle of its range)."""
    value = item.datetime
    if value is None:
        start = item.common_metadata.start_datetime
        end = item.common_metadata.end_datetime
        if start is None or end is None:
            raise InputError(f"item {item.id} has no datetime; the catalog is not valid STAC")
        value = start + (end - start) / 2
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cloud_cover(item: pystac.Item) -> float | None:
    value = item.properties.get("eo:cloud_cover")
    return None if value is None else float(value)


class Catalog:
    """A STAC catalog to search: an API with ``/search``, or a static catalog walked here."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._api: Any = None
        self._static: Any = None
        self._items: list[pystac.Item] | None = None
        self._open()

    def _open(self) -> None:
        pystac = require("pystac")
        require("shapely")
        location = self.location
        if not is_url(location):
            path = Path(location)
            if path.is_dir():
                path = path / "catalog.json"
            if not path.is_file():
                raise InputError(f"{location}: no such catalog; give a STAC API URL or a static "
                                 "catalog.json (path or URL)")
            try:
                self._static = pystac.Catalog.from_file(str(path))
            except Exception as error:  # pystac raises many kinds for a broken file
                raise InputError(f"{path}: not a STAC catalog ({one_line(error)})") from None
            return
        pystac_client = require("pystac_client")
        try:
            client = pystac_client.Client.open(location)
        except Exception as error:  # connection refused, DNS, HTTP status, not JSON
            raise InputError(f"{location}: cannot reach the catalog ({one_line(error)}); check "
                             "the URL and the connection") from None
        if client.conforms_to(pystac_client.ConformanceClasses.ITEM_SEARCH):
            self._api = client
        else:  # a static catalog.json served over HTTP
            self._static = client

    def search(self, collection: str, bbox: Sequence[float], start: datetime, end: datetime,
               max_cloud: float | None = None) -> list[pystac.Item]:
        """Items of ``collection`` intersecting ``bbox`` and acquired in ``[start, end]``,
        with ``eo:cloud_cover <= max_cloud`` where given (items without it are kept)."""
        if self._api is not None:
            items = self._search_api(collection, bbox, start, end)
        else:
            items = self._search_static(collection, bbox)
        chosen = []
        for item in items:
            when = item_datetime(item)
            if not start <= when <= end:
                continue
            cover = cloud_cover(item)
            if max_cloud is not None and cover is not None and cover > max_cloud:
                continue
            chosen.append(item)
        return sorted(chosen, key=lambda i: (item_datetime(i), i.id))

    def _search_api(self, collection: str, bbox: Sequence[float], start: datetime,
                    end: datetime) -> list[pystac.Item]:
        try:
            search = self._api.search(collections=[collection], bbox=list(bbox),
                                      datetime=f"{_iso(start)}/{_iso(end)}")
            return list(search.items())
        except Exception as error:
            raise InputError(f"{self.location}: the search in {collection} failed "
                             f"({one_line(error)}); check the URL, the collection name and the "
                             "connection") from None

    def _search_static(self, collection: str, bbox: Sequence[float]) -> list[pystac.Item]:
        from shapely.geometry import box, shape

        if self._items is None:
            try:
                self._items = list(self._static.get_items(recursive=True))
            except Exception as error:
                raise InputError(f"{self.location}: cannot read the catalog's items "
                                 f"({one_line(error)})") from None
        area = box(*bbox)
        return [item for item in self._items
                if item.collection_id == collection
                and item.geometry is not None and shape(item.geometry).intersects(area)]


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenePair:
    """An optical item and the SAR item nearest to it in time whose footprint overlaps it."""

    optical: pystac.Item
    sar: pystac.Item
    days_apart: float


@dataclass
class MatchReport:
    """Why optical items found no partner (for the error message)."""

    no_overlap: list[str] = field(default_factory=list)
    too_far: list[tuple[str, float]] = field(default_factory=list)


def footprint(item: pystac.Item, bbox: Sequence[float] | None = None) -> Any:
    """The item's footprint (shapely, degrees), clipped to ``bbox`` where given."""
    from shapely.geometry import box, shape

    if item.geometry is not None:
        geometry = shape(item.geometry)
    elif item.bbox is not None:
        geometry = box(*item.bbox[:2], *item.bbox[-2:])  # 2D or 3D bbox
    else:
        raise InputError(f"item {item.id} has neither geometry nor bbox; the catalog is not "
                         "valid STAC")
    return geometry.intersection(box(*bbox)) if bbox is not None else geometry


def match_scenes(optical: Sequence[pystac.Item], sar: Sequence[pystac.Item], max_days: float,
                 bbox: Sequence[float] | None = None) -> tuple[list[ScenePair], MatchReport]:
    """Match every optical item with the overlapping SAR item nearest in time.

    Overlap is between footprints (clipped to ``bbox``): an area, not a shared edge. Ties in
    time go to the larger overlap.

    Returns:
        The pairs (in the order of ``optical``) and what failed for the others.
    """
    report = MatchReport()
    pairs: list[ScenePair] = []
    sar_shapes = [(item, footprint(item)) for item in sar]
    for item in optical:
        area = footprint(item, bbox)
        when = item_datetime(item)
        best: tuple[float, float, pystac.Item] | None = None
        for candidate, shape_ in sar_shapes:
            overlap = area.intersection(shape_).area
            if overlap <= 0:
                continue
            days = abs((item_datetime(candidate) - when).total_seconds()) / 86400.0
            key = (days, -overlap, candidate)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is None:
            report.no_overlap.append(item.id)
        elif best[0] > max_days:
            report.too_far.append((item.id, best[0]))
        else:
            pairs.append(ScenePair(item, best[2], best[0]))
    return pairs, report


# --------------------------------------------------------------------------------------------
# Signing and assets
# --------------------------------------------------------------------------------------------


def _needs_planetary_computer(catalog: str, items: Sequence[pystac.Item]) -> bool:
    if "planetarycomputer" in catalog:
        return True
    for item in items[:5]:
        for asset in item.assets.values():
            if urlparse(asset.href).netloc.endswith(".blob.core.windows.net"):
                return True
    return False


def sign_items(items: list[pystac.Item], signer: str, catalog: str) -> list[pystac.Item]:
    """Sign the items' asset URLs where the provider needs it.

    Planetary Computer serves its assets from Azure storage that needs a short-lived token
    in the URL (the ``planetary-computer`` package fetches it); ``auto`` signs when the catalog
    or the asset URLs are Planetary Computer's.

    Raises:
        MissingExtraError: Signing is needed and ``planetary-computer`` is not installed.
    """
    if signer == "none" or (signer == "auto"
                            and not _needs_planetary_computer(catalog, items)):
        return items
    try:
        import planetary_computer
    except ImportError:
        raise MissingExtraError(
            "the catalog's assets need signing (Planetary Computer): pip install "
            "planetary-computer, or pass --sign none"
        ) from None
    try:
        return [planetary_computer.sign(item) for item in items]
    except Exception as error:
        raise InputError(f"cannot sign the asset URLs ({one_line(error)}); check the "
                         "connection") from None




# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

PAIRS_COLUMNS = (
    "sar", "optical", "split", "s1_item", "s2_item", "s1_datetime", "s2_datetime",
    "days_apart", "cloud_cover", "valid_fraction", "masked_fraction", "crs", "x_min", "y_max",
    "width", "height",
)


def _write_geotiff(path: Path, array: np.ndarray, grid: Grid, descriptions: Sequence[str],
                   nodata: float, tags: dict[str, str]) -> None:
    import rasterio

    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": array.shape[0],
        "dtype": array.dtype.name, "crs": grid.crs, "transform": grid.transform,
        "nodata": nodata, "compress": "deflate",
        "predictor": 3 if array.dtype.kind == "f" else 2,
    }
    if grid.width % 16 == 0 and grid.height % 16 == 0 and min(grid.width, grid.height) >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        dst.descriptions = tuple(descriptions)
        dst.update_tags(**tags)


def split_by_acquisition(keys: Sequence[str], val_fraction: float, seed: int) -> dict[str, str]:
    """Label acquisitions ``train`` or ``val`` (a seeded draw of ``val_fraction`` of them, at
    least one when there are two or more and ``val_fraction > 0``)."""
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"--val-fraction {val_fraction} is not in [0, 1); e.g. 0.2")
    unique = sorted(set(keys))
    n_val = int(round(val_fraction * len(unique)))
    if val_fraction > 0 and n_val == 0 and len(unique) >= 2:
        n_val = 1
    order = np.random.default_rng(seed).permutation(len(unique))
    chosen = {unique[i] for i in order[:n_val]}
    return {key: "val" if key in chosen else "train" for key in unique}


def acquisition_key(item: pystac.Item) -> str:
    """Tiles of one optical acquisition day (one satellite pass: neighbouring granules overlap)
    share a split."""
    platform = str(item.properties.get("platform", "")).lower()
    return f"{item_datetime(item):%Y-%m-%d}_{platform}"


@dataclass
class PairsSummary:
    out_dir: Path
    n_tiles: int
    n_scene_pairs: int
    n_train: int
    n_val: int
    skipped_tiles: int


def find_scene_pairs(request: PairsRequest) -> list[ScenePair]:
    """Search the catalog and match optical with SAR items (:func:`match_scenes`).

    Raises:
        InputError: An unreachable catalog, no optical items, or no SAR for any of them; the
            message says what to change.
    """
    catalog = Catalog(request.catalog)
    optical = catalog.search(request.s2_collection, request.bbox, request.start, request.end,
                             request.max_cloud)
    window = f"{request.start:%Y-%m-%d}/{request.end:%Y-%m-%d}"
    if not optical:
        raise InputError(
            f"no {request.s2_collection} items over {_bbox_text(request.bbox)} in {window} with "
            f"cloud cover <= {request.max_cloud:g}%; widen --bbox or --dates, raise --max-cloud, "
            "or check --s2-collection"
        )
    optical.sort(key=lambda item: (cloud_cover(item) or 0.0, item_datetime(item), item.id))
    margin = timedelta(days=request.max_days)
    sar = catalog.search(request.s1_collection, request.bbox, request.start - margin,
                         request.end + margin)
    logger.info("found %d %s and %d %s items", len(optical), request.s2_collection, len(sar),
                request.s1_collection)
    dual = [item for item in sar if all(any(key in item.assets for key in candidates)
                                         for candidates in SAR_ASSETS.values())]
    if len(dual) < len(sar):  # HH/HV scenes (polar regions), or single polarisation
        logger.info("%d %s item(s) without both vv and vh assets left out", len(sar) - len(dual),
                    request.s1_collection)
    sar = dual
    pairs, report = match_scenes(optical, sar, request.max_days, request.bbox)
    if not pairs:
        if report.too_far:
            nearest = min(days for _, days in report.too_far)
            raise InputError(
                f"no {request.s1_collection} item within {request.max_days:g} days of any of the "
                f"{len(optical)} {request.s2_collection} item(s) (nearest {nearest:.1f} days); "
                "raise --max-days or widen --dates"
            )
        raise InputError(
            f"no {request.s1_collection} item overlaps any of the {len(optical)} "
            f"{request.s2_collection} item(s) over {_bbox_text(request.bbox)} in {window} "
            f"(+- {request.max_days:g} days); widen --dates or --bbox, or check --s1-collection"
        )
    for item_id in report.no_overlap:
        logger.info("%s: no overlapping SAR item; skipped", item_id)
    for item_id, days in report.too_far:
        logger.info("%s: nearest overlapping SAR item %.1f days apart; skipped", item_id, days)
    if request.limit is not None:
        pairs = pairs[:request.limit]
    return pairs


def _bbox_text(bbox: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in bbox)


def make_pairs(request: PairsRequest, out_dir: str | Path, overwrite: bool = False,
               progress: Callable[[str], None] | None = None) -> PairsSummary:
    """Search, match, read and write the pairs folder ``out_dir`` (see the module docs).

    Raises:
        OutputExistsError: ``out_dir`` exists and ``overwrite`` is False (checked first).
        InputError: Nothing to pair (named), every tile too cloudy, an asset that cannot be read.
        MissingExtraError: The ``stac`` extra (or ``planetary-computer``, where needed) is
            missing.
    """
    import rasterio

    from sar_colorizer.io.atomic import atomic_folder, check_target

    out_dir = check_target(out_dir, overwrite)
    require("pystac")
    with rasterio.Env(**gdal_settings()):
        scenes = find_scene_pairs(request)
        optical_items = sign_items([p.optical for p in scenes], request.signer, request.catalog)
        sar_items = sign_items([p.sar for p in scenes], request.signer, request.catalog)
        scenes = [ScenePair(o, s, p.days_apart)
                  for o, s, p in zip(optical_items, sar_items, scenes, strict=True)]
        splits = split_by_acquisition([acquisition_key(p.optical) for p in scenes],
                                      request.val_fraction, request.seed)
        rows: list[dict[str, Any]] = []
        skipped = 0
        with atomic_folder(out_dir, overwrite=overwrite) as folder:
            (folder / "sar").mkdir()
            (folder / "opt").mkdir()
            for number, scene in enumerate(scenes, start=1):
                written, dropped = _write_scene(scene, request, folder, splits, rows)
                skipped += dropped
                message = (f"scene pair {number}/{len(scenes)}: {scene.optical.id} with "
                           f"{scene.sar.id} ({scene.days_apart:.1f} days apart): {written} "
                           f"tile(s) kept, {dropped} too cloudy or empty")
                logger.info("%s", message)
                if progress is not None:
                    progress(message)
            if not rows:
                raise InputError(
                    f"none of the {skipped} tile(s) of {len(scenes)} scene pair(s) has "
                    f"{request.min_valid:.0%} of its pixels clear and covered by both images; "
                    "lower --max-cloud, widen --dates, or lower --min-valid"
                )
            _write_manifest(folder / "pairs.csv", rows)
            (folder / "request.json").write_text(json.dumps(request.to_dict(), indent=2) + "\n")
    counts = [row["split"] for row in rows]
    return PairsSummary(out_dir, len(rows), len({(r["s2_item"], r["s1_item"]) for r in rows}),
                        counts.count("train"), counts.count("val"), skipped)


def _write_scene(scene: ScenePair, request: PairsRequest, folder: Path,
                 splits: dict[str, str], rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Write the kept tiles of one scene pair; returns (kept, dropped)."""
    reader = AssetReader()
    try:
        red = asset_key(scene.optical, OPTICAL_ASSETS["B04"], "B04")
        src = reader.dataset(scene.optical, red)
        grid = Grid(src.crs, src.transform, src.height, src.width)
        tiles = tile_grids(grid, request.bbox, request.size)
        kept = dropped = 0
        split = splits[acquisition_key(scene.optical)]
        for row, col, tile_grid in tiles:
            tile = read_tile(reader, scene, tile_grid)
            if tile.valid_fraction < max(request.min_valid, 1e-9):
                dropped += 1
                continue
            name = f"{scene.optical.id}_{row:03d}_{col:03d}"
            provenance = {"S1_ITEM": scene.sar.id, "S2_ITEM": scene.optical.id,
                          "S1_DATETIME": _iso(item_datetime(scene.sar)),
                          "S2_DATETIME": _iso(item_datetime(scene.optical))}
            _write_geotiff(folder / "sar" / f"{name}.tif", tile.sar_db, tile_grid, ("VV", "VH"),
                           float("nan"), {**provenance, "UNITS": "dB",
                                          "QUANTITY": "backscatter (10 log10 of linear power)"})
            _write_geotiff(folder / "opt" / f"{name}.tif", tile.reflectance, tile_grid,
                           ("B04", "B03", "B02"), 0,
                           {**provenance, "QUANTITY": "surface reflectance x 10000",
                            "BOA_ADD_OFFSET": "0"})
            cover = cloud_cover(scene.optical)
            rows.append({
                "sar": f"sar/{name}.tif", "optical": f"opt/{name}.tif", "split": split,
                "s1_item": scene.sar.id, "s2_item": scene.optical.id,
                "s1_datetime": _iso(item_datetime(scene.sar)),
                "s2_datetime": _iso(item_datetime(scene.optical)),
                "days_apart": f"{scene.days_apart:.3f}",
                "cloud_cover": "" if cover is None else f"{cover:g}",
                "valid_fraction": f"{tile.valid_fraction:.4f}",
                "masked_fraction": f"{tile.masked_fraction:.4f}",
                "crs": tile_grid.crs.to_string(), "x_min": f"{tile_grid.transform.c:.2f}",
                "y_max": f"{tile_grid.transform.f:.2f}", "width": tile_grid.width,
                "height": tile_grid.height,
            })
            kept += 1
        return kept, dropped
    finally:
        reader.close()


def _write_manifest(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PAIRS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
