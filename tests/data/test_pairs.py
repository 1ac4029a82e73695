"""Finding pairs in the three layouts, reading them onto the SAR grid, splitting by source."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rasterio.transform import from_origin

from sar_colorizer.data.layouts import assign_splits, find_pairs
from sar_colorizer.data.pairs import Pair, read_pair
from sar_colorizer.errors import InputError


def _png_pair(
    sar_path: Path, opt_path: Path, size=(24, 32), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Write an 8-bit grey SAR PNG and an RGB PNG (cv2 writes BGR); return (sar, rgb)."""
    rng = np.random.default_rng(seed)
    sar = rng.integers(1, 256, size, dtype=np.uint8)
    rgb = rng.integers(1, 256, (*size, 3), dtype=np.uint8)
    sar_path.parent.mkdir(parents=True, exist_ok=True)
    opt_path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(sar_path), sar)
    assert cv2.imwrite(str(opt_path), rgb[..., ::-1])
    return sar, rgb


# ------------------------------------------------------------------ layouts


def test_sar_opt_folders_matched_by_stem(tmp_path) -> None:
    for name in ("003", "001", "010"):
        _png_pair(tmp_path / "sar" / f"{name}.png", tmp_path / "opt" / f"{name}.png")
    (tmp_path / "sar" / "001.png.aux.xml").write_text("<PAMDataset/>")  # sidecars are ignored
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["001", "003", "010"]
    assert pairs[1].sar == tmp_path / "sar" / "003.png"
    assert pairs[1].optical == tmp_path / "opt" / "003.png"
    assert all(p.split is None for p in pairs)


def test_sen12_folders_matched_by_sensor_token(tmp_path) -> None:
    season = tmp_path / "ROIs1158_spring"
    for patch in ("p30", "p31"):
        _png_pair(
            season / "s1_1" / f"ROIs1158_spring_s1_1_{patch}.png",
            season / "s2_1" / f"ROIs1158_spring_s2_1_{patch}.png",
        )
    _png_pair(
        season / "s1_7" / "ROIs1158_spring_s1_7_p2.png",
        season / "s2_7" / "ROIs1158_spring_s2_7_p2.png",
    )
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == [
        "ROIs1158_spring_1_p30",
        "ROIs1158_spring_1_p31",
        "ROIs1158_spring_7_p2",
    ]
    assert pairs[0].optical.name == "ROIs1158_spring_s2_1_p30.png"
    assert pairs[0].optical.parent.name == "s2_1"


def test_csv_manifest_relative_paths_and_split(tmp_path) -> None:
    _png_pair(tmp_path / "a" / "x1.png", tmp_path / "b" / "y1.png")
    _png_pair(tmp_path / "a" / "x2.png", tmp_path / "b" / "y2.png")
    manifest = tmp_path / "list.csv"
    manifest.write_text("sar,optical,split\na/x1.png,b/y1.png,train\na/x2.png,b/y2.png,\n")
    pairs = find_pairs(manifest)
    assert pairs == [
        Pair("x1", tmp_path / "a" / "x1.png", tmp_path / "b" / "y1.png", "train"),
        Pair("x2", tmp_path / "a" / "x2.png", tmp_path / "b" / "y2.png", None),
    ]


def test_folder_with_pairs_csv_uses_the_manifest(tmp_path) -> None:
    for name in ("001", "002"):
        _png_pair(tmp_path / "sar" / f"{name}.png", tmp_path / "opt" / f"{name}.png")
    (tmp_path / "pairs.csv").write_text(
        "sar,optical,split,s2_tile\nsar/001.png,opt/001.png,train,T1\nsar/002.png,opt/002.png,test,T2\n"
    )
    pairs = find_pairs(tmp_path)
    assert [(p.name, p.split) for p in pairs] == [("001", "train"), ("002", "test")]


FLAG_CELLS = {"a": "1", "b": "0", "c": "True", "d": "false", "e": " YES ", "f": "no", "g": ""}


def test_manifest_cloud_or_snow_column_flags_pairs(tmp_path, write_pairs) -> None:
    folder = write_pairs(tmp_path / "p", size=8, names=list(FLAG_CELLS), cloud_or_snow=FLAG_CELLS)
    pairs = find_pairs(folder.root)
    assert {p.name: p.cloud_or_snow for p in pairs} == {
        "a": True, "b": False, "c": True, "d": False, "e": True, "f": False, "g": False
    }
    assert all(p.split is None for p in pairs)  # the split column is empty
    # Without the column (or in a folder layout) nothing is flagged.
    (folder.root / "pairs.csv").unlink()
    assert not any(p.cloud_or_snow for p in find_pairs(folder.root))
    plain = write_pairs(tmp_path / "q", n=2, size=8, splits=["train", "test"])
    assert not any(p.cloud_or_snow for p in find_pairs(plain.root / "pairs.csv"))


def test_flag_survives_disambiguated_names(tmp_path) -> None:
    _png_pair(tmp_path / "a" / "x.png", tmp_path / "o" / "x1.png")
    _png_pair(tmp_path / "b" / "x.png", tmp_path / "o" / "x2.png")
    (tmp_path / "m.csv").write_text(
        "sar,optical,cloud_or_snow\na/x.png,o/x1.png,0\nb/x.png,o/x2.png,1\n"
    )
    pairs = find_pairs(tmp_path / "m.csv")
    assert [(p.name, p.cloud_or_snow) for p in pairs] == [("a_x", False), ("b_x", True)]


def test_bad_cloud_or_snow_value_names_file_line_and_column(tmp_path, write_pairs) -> None:
    cells = {"a": "1", "b": "maybe", "c": "0"}
    folder = write_pairs(tmp_path / "p", size=8, names=list(cells), splits=["test"] * 3,
                         cloud_or_snow=cells)
    with pytest.raises(InputError) as error:
        find_pairs(folder.root)
    message = str(error.value)
    # The header is line 1, so pair "b" is on line 3.
    assert str(folder.root / "pairs.csv") in message
    assert "line 3" in message and "cloud_or_snow" in message and "'maybe'" in message
    assert "\n" not in message


def test_real_bigearthnet_manifest_flags_six_test_pairs(shared_data) -> None:
    manifest = shared_data / "bigearthnet-configilm" / "pairs.csv"
    if not manifest.is_file():
        pytest.skip(f"{manifest} is absent")
    pairs = find_pairs(manifest)
    flagged = [p for p in pairs if p.cloud_or_snow]
    assert len(flagged) == 6 and {p.split for p in flagged} == {"test"}
    assert sum(p.split == "test" for p in pairs) == 24


def test_missing_partners_are_named(tmp_path) -> None:
    _png_pair(tmp_path / "sar" / "001.png", tmp_path / "opt" / "001.png")
    _png_pair(tmp_path / "sar" / "002.png", tmp_path / "opt" / "002.png")
    (tmp_path / "opt" / "002.png").unlink()
    _png_pair(tmp_path / "x" / "a.png", tmp_path / "opt" / "777.png")
    with pytest.raises(InputError) as error:
        find_pairs(tmp_path)
    message = str(error.value)
    assert "002.png" in message and "no optical partner" in message
    assert "777.png" in message and "no SAR partner" in message
    assert "\n" not in message


def test_sen12_missing_partner_is_named(tmp_path) -> None:
    _png_pair(tmp_path / "s1_1" / "R_s1_1_p1.png", tmp_path / "s2_1" / "R_s2_1_p1.png")
    _png_pair(tmp_path / "s1_1" / "R_s1_1_p2.png", tmp_path / "s2_1" / "R_s2_1_p2.png")
    (tmp_path / "s2_1" / "R_s2_1_p2.png").unlink()
    with pytest.raises(InputError, match="R_s1_1_p2.png"):
        find_pairs(tmp_path)


def test_manifest_missing_file_and_bad_header(tmp_path) -> None:
    _png_pair(tmp_path / "s.png", tmp_path / "o.png")
    (tmp_path / "m.csv").write_text("sar,optical\ns.png,o.png\ngone.png,o.png\n")
    with pytest.raises(InputError, match="gone.png"):
        find_pairs(tmp_path / "m.csv")
    (tmp_path / "bad.csv").write_text("radar,rgb\ns.png,o.png\n")
    with pytest.raises(InputError, match="sar,optical"):
        find_pairs(tmp_path / "bad.csv")


def test_empty_folder_and_missing_path(tmp_path) -> None:
    with pytest.raises(InputError, match="no pairs found"):
        find_pairs(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        find_pairs(tmp_path / "nope")


# ------------------------------------------------------------------ reading


def test_read_png_pair_same_size(tmp_path) -> None:
    sar, rgb = _png_pair(tmp_path / "sar" / "1.png", tmp_path / "opt" / "1.png")
    arrays = read_pair(find_pairs(tmp_path)[0], band_names=["VH"])
    assert arrays.sar.shape == (1, 24, 32) and arrays.sar.dtype == np.float32
    np.testing.assert_array_equal(arrays.sar[0], sar)
    # RGB order (cv2 wrote BGR), scaled to [0, 1]
    np.testing.assert_allclose(arrays.optical_rgb, rgb / 255.0, atol=1e-6)
    assert arrays.valid.all()
    assert arrays.input_scale == "display"  # 8-bit SAR is a display-stretched image
    assert arrays.band_names == ("VH",)
    assert not arrays.reprojected


def test_optical_zeros_are_nodata(tmp_path) -> None:
    _, rgb = _png_pair(tmp_path / "sar" / "1.png", tmp_path / "opt" / "1.png")
    rgb[:5] = 0
    cv2.imwrite(str(tmp_path / "opt" / "1.png"), rgb[..., ::-1])
    arrays = read_pair(find_pairs(tmp_path)[0])
    assert not arrays.valid[:5].any() and arrays.valid[5:].all()
    assert arrays.band_names == ("band1",)


def test_size_mismatch_without_georeference_is_refused(tmp_path) -> None:
    _png_pair(tmp_path / "sar" / "1.png", tmp_path / "opt" / "1.png")
    _png_pair(tmp_path / "tmp" / "s.png", tmp_path / "tmp" / "o.png", size=(20, 20))
    (tmp_path / "tmp" / "o.png").replace(tmp_path / "opt" / "1.png")
    with pytest.raises(InputError, match="24 px.*20x20 px|no georeference"):
        read_pair(find_pairs(tmp_path)[0])


def test_band_name_count_must_match(tmp_path) -> None:
    _png_pair(tmp_path / "sar" / "1.png", tmp_path / "opt" / "1.png")
    with pytest.raises(InputError, match="one name per band"):
        read_pair(find_pairs(tmp_path)[0], band_names=["VV", "VH"])


def _ramp_optical(make_geotiff, path, transform, shape, crs="EPSG:32631"):
    """RGB uint8 GeoTIFF whose red band is a linear function of easting (exact under bilinear)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    easting = transform.c + (cols + 0.5) * transform.a
    red = np.clip((easting - 600000.0) / 2.0, 0, 255)
    green = np.full(shape, 100.0)
    blue = np.full(shape, 50.0) + (rows % 2)
    array = np.stack([red, green, blue]).round().astype(np.uint8)
    return make_geotiff(path, array, "uint8", crs=crs, transform=transform)


def test_optical_on_another_grid_is_reprojected_onto_the_sar_grid(tmp_path, make_geotiff) -> None:
    rng = np.random.default_rng(3)
    sar_transform = from_origin(600000, 4800000, 10, 10)  # 10 m, 40 x 40 px
    sar_path = make_geotiff(
        tmp_path / "s" / "a.tif",
        rng.uniform(0.01, 1.0, (40, 40)).astype(np.float32),
        "float32",
        transform=sar_transform,
    )
    # optical: 5 m pixels, starting 100 m east of the SAR and covering its east part only
    opt_transform = from_origin(600100, 4800000, 5, 5)
    opt_path = _ramp_optical(make_geotiff, tmp_path / "o" / "a.tif", opt_transform, (80, 120))
    arrays = read_pair(Pair("a", sar_path, opt_path))
    assert arrays.reprojected
    assert arrays.optical_rgb.shape == (40, 40, 3) and arrays.valid.shape == (40, 40)
    # only the overlap (SAR columns 10.. ; optical covers 600100-600700 m east) is valid
    assert not arrays.valid[:, :10].any()
    assert arrays.valid[:, 11:].all()
    assert arrays.sar_valid.all()
    cols = np.arange(40)
    expected_red = np.clip((600000 + (cols + 0.5) * 10 - 600000) / 2.0, 0, 255) / 255.0
    inner = arrays.valid[20]
    np.testing.assert_allclose(
        arrays.optical_rgb[20, inner, 0], expected_red[inner], atol=1.5 / 255
    )
    np.testing.assert_allclose(arrays.optical_rgb[arrays.valid][:, 1], 100 / 255, atol=1e-5)
    assert arrays.input_scale == "linear"
    assert (arrays.optical_rgb[~arrays.valid] == 0).all()


def test_optical_in_another_crs_is_reprojected(tmp_path, make_geotiff) -> None:
    from rasterio.warp import transform_bounds

    sar_transform = from_origin(600000, 4800000, 10, 10)
    sar_path = make_geotiff(
        tmp_path / "s.tif",
        np.full((30, 30), 0.1, dtype=np.float32),
        "float32",
        transform=sar_transform,
    )
    # the same area in EPSG:32632 (neighbouring UTM zone): a rotated, different grid
    west, south, east, north = transform_bounds(
        "EPSG:32631", "EPSG:32632", 600000, 4799700, 600300, 4800000
    )
    opt_transform = from_origin(west - 50, north + 50, 8, 8)
    shape = (int((north - south + 100) / 8) + 1, int((east - west + 100) / 8) + 1)
    array = np.stack([np.full(shape, 200), np.full(shape, 120), np.full(shape, 40)]).astype(
        np.uint8
    )
    opt_path = make_geotiff(
        tmp_path / "o.tif", array, "uint8", crs="EPSG:32632", transform=opt_transform
    )
    arrays = read_pair(Pair("p", sar_path, opt_path))
    assert arrays.reprojected and arrays.valid.mean() > 0.9
    expected = np.array([200, 120, 40]) / 255.0
    assert np.abs(arrays.optical_rgb[arrays.valid] - expected).max() < 1e-5


def test_georeferenced_pair_without_overlap_is_refused(tmp_path, make_geotiff) -> None:
    sar_path = make_geotiff(tmp_path / "s.tif", np.ones((10, 10), dtype=np.float32), "float32")
    opt = np.full((3, 10, 10), 90, dtype=np.uint8)
    opt_path = make_geotiff(
        tmp_path / "o.tif", opt, "uint8", transform=from_origin(700000, 4800000, 10, 10)
    )
    with pytest.raises(InputError, match="do not overlap"):
        read_pair(Pair("p", sar_path, opt_path))


def test_band_names_from_descriptions_and_file_name(tmp_path, make_geotiff) -> None:
    opt_path = make_geotiff(tmp_path / "o.tif", np.full((3, 8, 8), 90, dtype=np.uint8), "uint8")
    two = make_geotiff(
        tmp_path / "two.tif",
        np.full((2, 8, 8), -12.0, dtype=np.float32),
        "float32",
        descriptions=("VV", "VH"),
    )
    arrays = read_pair(Pair("two", two, opt_path))
    assert arrays.band_names == ("VV", "VH") and arrays.input_scale == "db"
    arrays = read_pair(Pair("two", two, opt_path), bands="VH")
    assert arrays.band_names == ("VH",) and arrays.sar.shape[0] == 1
    named = make_geotiff(
        tmp_path / "S1A_X_VH.tif", np.full((8, 8), 0.2, dtype=np.float32), "float32"
    )
    assert read_pair(Pair("n", named, opt_path)).band_names == ("VH",)


# ------------------------------------------------------------------ split by source image


def _pairs(names, splits=None):
    splits = splits or [None] * len(names)
    return [
        Pair(n, Path(f"{n}.png"), Path(f"{n}_o.png"), s) for n, s in zip(names, splits, strict=True)
    ]


def test_split_without_labels_is_by_whole_image_and_seeded() -> None:
    pairs = _pairs([f"img{i:02d}" for i in range(20)])
    splits = assign_splits(pairs, val_fraction=0.15, seed=1)
    assert set(splits) == {p.name for p in pairs}  # every image on exactly one side
    assert sum(s == "val" for s in splits.values()) == 3
    assert sum(s == "train" for s in splits.values()) == 17
    assert assign_splits(list(reversed(pairs)), 0.15, seed=1) == splits  # order-independent
    assert assign_splits(pairs, 0.15, seed=2) != splits


def test_split_carves_val_out_of_train_rows_and_excludes_test() -> None:
    names = [f"f{i:02d}" for i in range(10)]
    labels = ["train"] * 7 + ["test"] * 3
    splits = assign_splits(_pairs(names, labels), val_fraction=0.3, seed=0)
    assert [splits[n] for n in names[7:]] == [None, None, None]
    assert sum(splits[n] == "val" for n in names[:7]) == 2
    assert sum(splits[n] == "train" for n in names[:7]) == 5
    with_test = assign_splits(_pairs(names, labels), val_fraction=0.3, seed=0, include_test=True)
    assert [with_test[n] for n in names[7:]] == ["test"] * 3


def test_split_honours_explicit_val_labels() -> None:
    names = ["a", "b", "c", "d"]
    splits = assign_splits(_pairs(names, ["train", "validation", "VAL", "train"]), 0.5, seed=0)
    assert splits == {"a": "train", "b": "val", "c": "val", "d": "train"}


def test_split_at_least_one_val_image_and_bad_label() -> None:
    splits = assign_splits(_pairs(["a", "b", "c"]), val_fraction=0.05)
    assert sum(s == "val" for s in splits.values()) == 1
    assert set(assign_splits(_pairs(["a", "b"]), val_fraction=0.0).values()) == {"train"}
    with pytest.raises(InputError, match="unknown split"):
        assign_splits(_pairs(["a"], ["holdout"]))
