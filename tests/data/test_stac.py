"""``sarcolor pairs``: training pairs from a STAC catalog, without the internet.

The catalog is built here from the committed BigEarthNet samples (``data/samples/
bigearthnet-s1-s2``): six places in Europe, each a Sentinel-1 patch (VV, VH) and the Sentinel-2
Level-2A patch of the same 120 x 120 px, 10 m grid. The SAR items get ``vv``/``vh`` Cloud-
Optimised GeoTIFF assets in linear power (the samples' dB turned back into power), the optical
items ``B04``/``B03``/``B02`` in reflectance x 10000; both carry the patches' real acquisition
times and footprints (from each patch's metadata: UTM corners and zone). The STAC API path runs
against a small HTTP server on 127.0.0.1 that answers ``/search`` from the same items and serves
the assets with range requests, as a cloud store does.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from sar_colorizer.cli import cli

pystac = pytest.importorskip("pystac", reason="needs the stac extra")
pytest.importorskip("pystac_client", reason="needs the stac extra")
pytest.importorskip("shapely", reason="needs the stac extra")

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "bigearthnet-s1-s2"
#: Covers all six sample places (Portugal, Ireland, Austria, Finland).
EUROPE = "-15,35,35,70"
ALL_DATES = "2017-06-01/2018-03-01"
#: The place whose S2 patch gets a scene classification with its left half cloudy.
CLOUDY_HALF = "87_48"
#: Places whose S2 item records the Level-2A offset of baseline 04.00 (DNs stored + 1000):
#: one through ``s2:processing_baseline``, one through the asset's ``raster:bands``.
BASELINE_04 = "57_38"
RASTER_BANDS_OFFSET = "69_24"
#: A decoy SAR item over this place, 2 days after its real one (with other values), and one
#: acquired at the place's exact optical time but elsewhere: neither may be matched.
DECOY_PLACE = "4_55"


def _place(name: str) -> str:
    return "_".join(name.split("_")[-2:])


def _patch_grid(metadata: dict[str, Any]) -> tuple[str, Any]:
    crs = rasterio.crs.CRS.from_wkt(metadata["projection"])
    corners = metadata["coordinates"]
    return crs, from_origin(corners["ulx"], corners["uly"], 10, 10)


def _read_sample(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read(1)


def _write_cog(path: Path, array: np.ndarray, crs: Any, transform: Any,
               nodata: float | None) -> None:
    """A Cloud-Optimised GeoTIFF (GDAL's COG driver copies a plain GeoTIFF written first)."""
    from rasterio.shutil import copy

    path.parent.mkdir(parents=True, exist_ok=True)
    plain = path.with_suffix(".plain.tif")
    with rasterio.open(plain, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype=array.dtype.name, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(array, 1)
    copy(plain, path, driver="COG", BLOCKSIZE="128", COMPRESS="DEFLATE")
    plain.unlink()


def _footprint(crs: Any, transform: Any, size: int) -> dict[str, Any]:
    from rasterio.warp import transform_geom

    west, north = transform.c, transform.f
    east, south = west + size * transform.a, north + size * transform.e
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return transform_geom(crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)


#: Earth Search's optical asset keys, for ``build_catalog(earth_search_names=True)``.
EARTH_SEARCH_KEYS = {"B04": "red", "B03": "green", "B02": "blue", "SCL": "scl"}


def build_catalog(root: Path, *, all_cloudy: bool = False, drop_sar: tuple[str, ...] = (),
                  earth_search_names: bool = False) -> Path:
    """Write the static catalog of the six sample places under ``root``; returns catalog.json.

    Args:
        all_cloudy: Every optical item gets a scene classification that is all cloud.
        drop_sar: Places left without their SAR item.
        earth_search_names: Optical assets named as Earth Search names them (``red``, ...,
            ``scl``) instead of Planetary Computer's (``B04``, ..., ``SCL``).
    """
    from shapely.geometry import shape

    catalog = pystac.Catalog("samples", "BigEarthNet samples as STAC items")
    collections = {}
    for name in ("sentinel-1-rtc", "sentinel-2-l2a"):
        extent = pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                               pystac.TemporalExtent([[datetime(2017, 1, 1, tzinfo=UTC), None]]))
        collections[name] = pystac.Collection(name, name, extent)
        catalog.add_child(collections[name])
    data = root / "assets"

    def add(collection: str, item_id: str, geometry: dict[str, Any], when: datetime,
            properties: dict[str, Any], assets: dict[str, tuple[Path, dict[str, Any]]]) -> None:
        item = pystac.Item(item_id, geometry, list(shape(geometry).bounds), when, properties)
        for key, (path, extra) in assets.items():
            item.add_asset(key, pystac.Asset(str(path), media_type=pystac.MediaType.COG,
                                             roles=["data"], extra_fields=extra))
        collections[collection].add_item(item)

    for folder in sorted((SAMPLES / "S1").iterdir()):
        place = _place(folder.name)
        if place in drop_sar:
            continue
        metadata = json.loads(next(folder.glob("*_labels_metadata.json")).read_text())
        crs, transform = _patch_grid(metadata)
        when = _when(metadata["acquisition_time"])
        power = {pol: (10.0 ** (_read_sample(folder / f"{folder.name}_{pol.upper()}.tif") / 10.0)
                       ).astype(np.float32) for pol in ("vv", "vh")}
        geometry = _footprint(crs, transform, 120)
        versions = [(folder.name, when, 1.0)]
        if place == DECOY_PLACE:
            versions.append((folder.name + "_decoy_later", when.replace(day=when.day + 2), 2.0))
        for item_id, item_when, gain in versions:
            assets = {}
            for pol, values in power.items():
                path = data / item_id / f"{pol}.tif"
                _write_cog(path, values * np.float32(gain), crs, transform, -32768.0)
                assets[pol] = (path, {})
            add("sentinel-1-rtc", item_id, geometry, item_when,
                {"platform": "sentinel-1a", "sar:polarizations": ["VV", "VH"]}, assets)

    decoy_time = None
    for folder in sorted((SAMPLES / "S2").iterdir()):
        place = _place(folder.name)
        metadata = json.loads(next(folder.glob("*_labels_metadata.json")).read_text())
        crs, transform = _patch_grid(metadata)
        when = _when(metadata["acquisition_date"])
        if place == DECOY_PLACE:
            decoy_time = when
        properties: dict[str, Any] = {"platform": folder.name[:3].lower().replace(
            "s2a", "sentinel-2a").replace("s2b", "sentinel-2b"), "eo:cloud_cover": 5.0,
            "s2:processing_baseline": "02.05"}
        shift = 0
        if place == BASELINE_04:
            properties["s2:processing_baseline"] = "04.00"
            shift = 1000
        assets = {}
        for band in ("B04", "B03", "B02"):
            values = _read_sample(folder / f"{folder.name}_{band}.tif").astype(np.uint16)
            if place == RASTER_BANDS_OFFSET:
                shift = 1000
            path = data / folder.name / f"{band}.tif"
            _write_cog(path, np.where(values > 0, values + shift, 0).astype(np.uint16), crs,
                       transform, 0)
            extra = ({"raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
                     if place == RASTER_BANDS_OFFSET else {})
            assets[band] = (path, extra)
        if all_cloudy or place == CLOUDY_HALF:
            scl = np.full((60, 60), 9 if all_cloudy else 4, dtype=np.uint8)
            if not all_cloudy:
                scl[:, :30] = 9  # left half: cloud, high probability
            path = data / folder.name / "SCL.tif"
            _write_cog(path, scl, crs, from_origin(transform.c, transform.f, 20, 20), 0)
            assets["SCL"] = (path, {})
        if earth_search_names:
            assets = {EARTH_SEARCH_KEYS[key]: value for key, value in assets.items()}
        add("sentinel-2-l2a", folder.name, _footprint(crs, transform, 120), when, properties,
            assets)

    # Closer in time than any real SAR item of DECOY_PLACE, but 5 km east of it, over nothing.
    assert decoy_time is not None
    other = next(f for f in (SAMPLES / "S1").iterdir() if _place(f.name) == DECOY_PLACE)
    meta = json.loads(next(other.glob("*_labels_metadata.json")).read_text())
    crs, transform = _patch_grid(meta)
    transform = from_origin(transform.c + 5000, transform.f, 10, 10)
    assets = {}
    for pol in ("vv", "vh"):
        path = data / "elsewhere" / f"{pol}.tif"
        _write_cog(path, np.full((120, 120), 0.05, np.float32), crs, transform, -32768.0)
        assets[pol] = (path, {})
    add("sentinel-1-rtc", "S1_elsewhere_at_optical_time", _footprint(crs, transform, 120),
        decoy_time, {"platform": "sentinel-1b"}, assets)

    # A polar-mode scene (HH, HV) over DECOY_PLACE at its optical time: no vv/vh, never matched.
    crs, transform = _patch_grid(json.loads(next(other.glob("*_labels_metadata.json")).read_text()))
    assets = {}
    for pol in ("hh", "hv"):
        path = data / "polar" / f"{pol}.tif"
        _write_cog(path, np.full((120, 120), 0.05, np.float32), crs, transform, -32768.0)
        assets[pol] = (path, {})
    add("sentinel-1-rtc", "S1_polar_hh_hv", _footprint(crs, transform, 120), decoy_time,
        {"platform": "sentinel-1b"}, assets)

    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


@pytest.fixture(scope="module")
def catalog_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("stac"))


def _pairs(*args: str) -> Any:
    return CliRunner().invoke(cli, ["pairs", *args])


def _sample_db(place: str, pol: str) -> np.ndarray:
    folder = next(f for f in (SAMPLES / "S1").iterdir() if _place(f.name) == place)
    return _read_sample(folder / f"{folder.name}_{pol}.tif")


def _sample_reflectance(place: str) -> np.ndarray:
    folder = next(f for f in (SAMPLES / "S2").iterdir() if _place(f.name) == place)
    return np.stack([_read_sample(folder / f"{folder.name}_{b}.tif") for b in ("B04", "B03", "B02")])


def _rows(out: Path) -> list[dict[str, str]]:
    import csv

    with open(out / "pairs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _check_folder(out: Path, size: int) -> list[dict[str, str]]:
    """Every pair co-registered, SAR = the sample's dB, optical = the sample's reflectance."""
    rows = _rows(out)
    assert rows
    for row in rows:
        with rasterio.open(out / row["sar"]) as sar, rasterio.open(out / row["optical"]) as opt:
            assert (sar.crs, sar.transform, sar.shape) == (opt.crs, opt.transform, opt.shape)
            assert sar.shape == (size, size)
            assert sar.descriptions == ("VV", "VH") and sar.dtypes == ("float32", "float32")
            assert opt.descriptions == ("B04", "B03", "B02") and opt.dtypes[0] == "uint16"
            sar_db, reflectance = sar.read(), opt.read()
            assert sar.tags()["S2_ITEM"] == row["s2_item"] == Path(row["optical"]).stem[:-8]
        place = _place(row["s2_item"])
        # The SAR partner is the real one of that place, nearest in time (not a decoy).
        assert _place(row["s1_item"]) == place, row
        assert float(row["days_apart"]) <= 1.0
        # Tiles are windows of the 120 px patches, which share the optical grid: the values
        # come back exactly (dB -> power -> dB; the L2A offset removed where recorded).
        if size == 120:
            np.testing.assert_allclose(sar_db[0], _sample_db(place, "VV"), atol=1e-4)
            np.testing.assert_allclose(sar_db[1], _sample_db(place, "VH"), atol=1e-4)
            expected = _sample_reflectance(place)
            if place == CLOUDY_HALF:
                assert (reflectance[:, :, :60] == 0).all()
                np.testing.assert_array_equal(reflectance[:, :, 60:], expected[:, :, 60:])
                assert float(row["masked_fraction"]) == pytest.approx(0.5)
            else:
                np.testing.assert_array_equal(reflectance, expected)
    return rows


def test_static_catalog_gives_coregistered_pairs_that_preprocess_reads(catalog_json, tmp_path):
    out = tmp_path / "pairs"
    result = _pairs(str(catalog_json), str(out), "--bbox", EUROPE, "--dates", ALL_DATES,
                    "--size", "120", "--min-valid", "0.4")
    assert result.exit_code == 0, result.output
    rows = _check_folder(out, 120)
    assert sorted(_place(r["s2_item"]) for r in rows) == sorted(
        _place(f.name) for f in (SAMPLES / "S2").iterdir())
    # Split by acquisition: five optical acquisition days, one of them val; every tile of a day
    # on one side.
    by_day: dict[str, set[str]] = {}
    for row in rows:
        by_day.setdefault(row["s2_datetime"][:10], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in by_day.values())
    assert sorted(s for splits in by_day.values() for s in splits).count("val") == 1
    assert json.loads((out / "request.json").read_text())["bbox"] == [-15, 35, 35, 70]

    chips = tmp_path / "chips"
    result = CliRunner().invoke(cli, ["-q", "preprocess", str(out), str(chips), "--bands", "VH",
                                      "--chip-size", "64"])
    assert result.exit_code == 0, result.output
    stats = json.loads((chips / "stats.json").read_text())
    assert stats["n_images"]["train"] >= 4 and stats["n_images"]["val"] >= 1


def test_earth_search_asset_names_give_the_same_pairs(tmp_path):
    catalog = build_catalog(tmp_path / "cat", earth_search_names=True)
    out = tmp_path / "pairs"
    result = _pairs(str(catalog), str(out), "--bbox", EUROPE, "--dates", ALL_DATES, "--size",
                    "120", "--min-valid", "0.4")
    assert result.exit_code == 0, result.output
    assert len(_check_folder(out, 120)) == 6  # the cloud mask from "scl" included


def test_tiles_cover_the_bbox_part_of_the_optical_grid(catalog_json, tmp_path):
    out = tmp_path / "pairs"
    # Around the Irish place 36_85 only (about 52.3 N, 6.9 W).
    result = _pairs(str(catalog_json), str(out), "--bbox", "-6.95,52.25,-6.85,52.35", "--dates",
                    ALL_DATES, "--size", "64")
    assert result.exit_code == 0, result.output
    rows = _check_folder(out, 64)
    assert {r["s2_item"] for r in rows} == {"S2A_MSIL2A_20170617T113321_36_85"}
    # 120 px in tiles of 64: two per axis, the second shifted back to end at the edge.
    assert sorted((float(r["x_min"]), float(r["y_max"])) for r in rows) == [
        (643200.0, 5797480.0), (643200.0, 5798040.0), (643760.0, 5797480.0),
        (643760.0, 5798040.0)]


def test_api_search_over_http_gives_the_same_pairs(catalog_json, tmp_path):
    with stac_api(catalog_json.parent) as url:
        out = tmp_path / "pairs"
        result = _pairs(url, str(out), "--bbox", EUROPE, "--dates", ALL_DATES, "--size", "120",
                        "--min-valid", "0.4")
        assert result.exit_code == 0, result.output
        assert "search" in SERVED[url]  # the API was asked, not a static walk
        assert any(path.endswith("/vv.tif") for path in SERVED[url])  # assets over HTTP
    rows = _check_folder(out, 120)
    assert len(rows) == 6


def test_static_catalog_over_http_is_walked(catalog_json, tmp_path):
    with stac_api(catalog_json.parent) as url:
        out = tmp_path / "pairs"
        result = _pairs(url + "catalog.json", str(out), "--bbox", EUROPE, "--dates", ALL_DATES,
                        "--size", "120", "--min-valid", "0.4")
        assert result.exit_code == 0, result.output
        assert "search" not in SERVED[url]
        assert "/catalog.json" in SERVED[url]
    assert len(_check_folder(out, 120)) == 6


@pytest.mark.parametrize("case", ["no items", "no overlapping SAR", "SAR too far in time",
                                  "all cloudy", "unreachable", "missing asset", "bad bbox"])
def test_bad_cases_are_one_line_errors_and_leave_no_output(case, catalog_json, tmp_path):
    catalog, dates, extra = str(catalog_json), ALL_DATES, []
    finland = "30,62.5,31,63"  # the two 35VPK places
    expected = {
        "no items": "no sentinel-2-l2a items",
        "no overlapping SAR": "no sentinel-1-rtc item overlaps",
        "SAR too far in time": "within 0.1 days",
        "all cloudy": "none of the 6 tile(s)",
        "unreachable": "cannot reach the catalog",
        "missing asset": "asset vh",
        "bad bbox": "--bbox",
    }[case]
    bbox = EUROPE
    if case == "no items":
        dates = "2019-01-01/2019-02-01"
    elif case == "no overlapping SAR":
        catalog = str(build_catalog(tmp_path / "cat", drop_sar=("69_24", "57_38")))
        bbox = finland
    elif case == "SAR too far in time":
        bbox, extra = finland, ["--max-days", "0.1"]
        dates = "2017-09-20/2017-09-30"  # S2 24 September, S1 25 September
    elif case == "all cloudy":
        catalog = str(build_catalog(tmp_path / "cat", all_cloudy=True))
    elif case == "unreachable":
        catalog = f"http://127.0.0.1:{_free_port()}/"
    elif case == "missing asset":
        catalog = str(build_catalog(tmp_path / "cat"))
        next((tmp_path / "cat" / "assets").glob("S1A_*_87_48/vh.tif")).unlink()
    elif case == "bad bbox":
        bbox = "10,50,5,40"
    out = tmp_path / "out"
    result = _pairs(catalog, str(out), "--bbox", bbox, "--dates", dates, "--size", "120", *extra)
    assert result.exit_code not in (0, 1), result.output  # a typed error, not a crash
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_an_asset_that_fails_to_download_is_one_line_and_leaves_nothing(tmp_path):
    catalog = build_catalog(tmp_path / "cat")
    next((tmp_path / "cat" / "assets").glob("S1A_*_87_48/vh.tif")).unlink()  # the server: 404
    out = tmp_path / "out"
    with stac_api(catalog.parent) as url:
        result = _pairs(url, str(out), "--bbox", EUROPE, "--dates", ALL_DATES, "--size", "120")
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "asset vh (http://127.0.0.1:" in errors[0], result.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_an_interrupted_run_leaves_nothing(catalog_json, tmp_path, monkeypatch):
    from sar_colorizer.data import stac

    calls = []
    real = stac.read_tile

    def interrupted_on_the_third(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(stac, "read_tile", interrupted_on_the_third)
    out = tmp_path / "out"
    result = _pairs(str(catalog_json), str(out), "--bbox", EUROPE, "--dates", ALL_DATES,
                    "--size", "120")
    assert result.exit_code == 130, result.output
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_before_any_search(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = _pairs("http://127.0.0.1:9/", str(out), "--bbox", EUROPE, "--dates", ALL_DATES)
    assert result.exit_code == 4 and "--overwrite" in result.output


def test_without_the_extra_the_error_names_it(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pystac", None)
    result = _pairs("catalog.json", str(tmp_path / "out"), "--bbox", EUROPE, "--dates", ALL_DATES)
    assert result.exit_code == 6
    assert 'pip install ".[stac]"' in result.output
    assert not (tmp_path / "out").exists()


def test_matching_takes_the_nearest_overlapping_sar_item():
    from sar_colorizer.data.stac import match_scenes

    def item(item_id: str, x: float, day: int) -> Any:
        ring = [[x, 0], [x + 1, 0], [x + 1, 1], [x, 1], [x, 0]]
        return pystac.Item(item_id, {"type": "Polygon", "coordinates": [ring]},
                           [x, 0, x + 1, 1], datetime(2020, 1, day, tzinfo=UTC), {})

    optical = [item("opt", 0, 10)]
    sar = [item("elsewhere", 5, 10), item("later", 0.5, 13), item("earlier", 0.5, 8),
           item("touching", 1, 10)]  # shares only an edge: no overlap
    pairs, _ = match_scenes(optical, sar, max_days=3)
    assert [(p.sar.id, p.days_apart) for p in pairs] == [("earlier", 2.0)]
    pairs, report = match_scenes(optical, sar, max_days=1)
    assert pairs == [] and report.too_far == [("opt", 2.0)]


def test_tiles_of_a_bbox_that_cuts_the_item():
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    from sar_colorizer.data.stac_assets import Grid, tile_grids

    grid = Grid(CRS.from_epsg(32631), from_origin(600000, 4800000, 10, 10), 300, 300)
    # The UTM rectangle x 601000..603500, y 4797500..4799000 as a box in degrees: its
    # envelope back in UTM is a little larger, and is clipped by the item's edge on the right.
    bbox = transform_bounds("EPSG:32631", "EPSG:4326", 601000, 4797500, 603500, 4799000)
    tiles = tile_grids(grid, bbox, 64)
    assert tiles
    xs = [t.transform.c for _, _, t in tiles]
    ys = [t.transform.f for _, _, t in tiles]
    assert all(t.width == 64 and t.height == 64 for _, _, t in tiles)
    assert min(xs) <= 601000 and max(xs) + 640 >= 603000  # spans the box (east edge: the item's)
    assert max(ys) >= 4799000 and min(ys) - 640 <= 4797500
    assert max(xs) + 640 <= 603000 and min(ys) - 640 >= 4797000  # inside the item
    assert tile_grids(grid, (10.0, 10.0, 11.0, 11.0), 64) == []  # elsewhere: no tile


def test_reflectance_offset_from_metadata():
    from sar_colorizer.data.stac_assets import reflectance_transform

    def item(properties: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
        made = pystac.Item("x", None, None, datetime(2023, 1, 1, tzinfo=UTC), properties)
        made.add_asset("B04", pystac.Asset("B04.tif", extra_fields=extra or {}))
        return made

    assert reflectance_transform(item({"s2:processing_baseline": "05.09"}), "B04") == (1e-4, -0.1)
    assert reflectance_transform(item({"s2:processing_baseline": "03.01"}), "B04") == (1e-4, 0.0)
    assert reflectance_transform(item({"s2:processing_baseline": "05.09",
                                       "earthsearch:boa_offset_applied": True}), "B04") == (1e-4, 0)
    assert reflectance_transform(item({}, {"raster:bands": [{"scale": 2e-4, "offset": -0.2}]}),
                                 "B04") == (2e-4, -0.2)


# --------------------------------------------------------------------------------------------
# A STAC API on 127.0.0.1: /search over the catalog's items, assets with range requests
# --------------------------------------------------------------------------------------------

SERVED: dict[str, list[str]] = {}
#: The server stops by itself after this many seconds or requests, whatever the test does.
SERVER_SECONDS = 120
SERVER_REQUESTS = 2000


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    items: list[dict[str, Any]]
    log: list[str]
    budget: list[int]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, document: dict[str, Any]) -> None:
        self._send(200, json.dumps(document).encode(), "application/json")

    def _base(self) -> str:
        return f"http://{self.headers['Host']}"

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self.budget[0] -= 1
        path = self.path.split("?")[0]
        self.log.append(path)
        if path in ("/", ""):
            base = self._base()
            self._json({"type": "Catalog", "id": "local", "description": "test API",
                        "stac_version": "1.0.0",
                        "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                       "https://api.stacspec.org/v1.0.0/item-search"],
                        "links": [{"rel": "self", "href": base + "/"},
                                  {"rel": "root", "href": base + "/"},
                                  {"rel": "search", "href": base + "/search",
                                   "type": "application/geo+json", "method": "POST"}]})
        elif path == "/search":
            self._json(self._search({}))
        else:  # assets, and the static catalog's own files
            self._file(self.root / path.lstrip("/"))

    def do_POST(self) -> None:  # noqa: N802
        self.budget[0] -= 1
        self.log.append("search")
        length = int(self.headers.get("Content-Length", 0))
        self._json(self._search(json.loads(self.rfile.read(length) or b"{}")))

    def _search(self, query: dict[str, Any]) -> dict[str, Any]:
        from shapely.geometry import box, shape

        collections = query.get("collections")
        area = box(*query["bbox"]) if query.get("bbox") else None
        start = end = None
        if query.get("datetime"):
            first, _, last = query["datetime"].partition("/")
            start = _when(first.replace("Z", "")) if first not in ("", "..") else None
            end = _when(last.replace("Z", "")) if last not in ("", "..") else None
        features = []
        for item in self.items:
            when = _when(item["properties"]["datetime"].replace("Z", "").split("+")[0])
            if collections and item["collection"] not in collections:
                continue
            if area is not None and not shape(item["geometry"]).intersects(area):
                continue
            if (start and when < start) or (end and when > end):
                continue
            features.append(self._absolute(item))
        return {"type": "FeatureCollection", "features": features, "links": []}

    def _absolute(self, item: dict[str, Any]) -> dict[str, Any]:
        item = json.loads(json.dumps(item))
        for asset in item["assets"].values():
            asset["href"] = self._base() + "/" + asset["href"]
        item["links"] = []
        return item

    def _file(self, path: Path) -> None:
        if not path.is_file():
            self._send(404, b"not found", "text/plain")
            return
        data = path.read_bytes()
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not match:
            self._send(200, data, "image/tiff", {"Accept-Ranges": "bytes"})
            return
        first = int(match[1])
        last = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
        self._send(206, data[first:last + 1], "image/tiff",
                   {"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{len(data)}"})


def _items_for_api(root: Path) -> list[dict[str, Any]]:
    """The catalog's items as JSON, asset hrefs relative to ``root`` (served under /assets)."""
    items = []
    for item in pystac.Catalog.from_file(str(root / "catalog.json")).get_items(recursive=True):
        record = item.to_dict(include_self_link=False, transform_hrefs=False)
        record["collection"] = item.collection_id
        for key, asset in item.assets.items():
            href = Path(asset.get_absolute_href() or asset.href)
            record["assets"][key]["href"] = href.relative_to(root).as_posix()
        items.append(record)
    return items


class stac_api:  # noqa: N801 (used as a context manager, like a function)
    """``with stac_api(root) as url:`` a STAC API over ``root/catalog.json`` on 127.0.0.1; the
    catalog's files and assets are served too (``url + "catalog.json"`` is the static catalog).

    Bounded: the server thread stops when the block ends, after :data:`SERVER_SECONDS`, or
    after :data:`SERVER_REQUESTS` requests, whichever comes first.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> str:
        handler = type("Handler", (_Handler,), {
            "root": self.root, "items": _items_for_api(self.root), "log": [], "budget": [
                SERVER_REQUESTS]})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.timeout = 1
        url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        SERVED[url] = handler.log
        deadline = datetime.now(UTC).timestamp() + SERVER_SECONDS
        self.stop = threading.Event()

        def serve() -> None:
            while (not self.stop.is_set() and handler.budget[0] > 0
                   and datetime.now(UTC).timestamp() < deadline):
                self.server.handle_request()
            self.server.server_close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        return url

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
