"""Finding co-registered SAR / optical pairs and reading them onto one pixel grid.

Three layouts are understood (see :func:`find_pairs`):

* a folder with ``sar/`` and ``opt/`` sub-folders whose files share a stem (``sar/003.png`` with
  ``opt/003.png``), as in the s1s2-la-texas data;
* SEN1-2 style folders ``s1_<n>/`` and ``s2_<n>/`` whose files differ only in the sensor token
  (``ROIs1158_spring_s1_1_p30.png`` with ``ROIs1158_spring_s2_1_p30.png``);
* a CSV manifest with columns ``sar,optical[,split][,cloud_or_snow]`` whose paths are relative to
  the CSV's folder. A folder holding a ``pairs.csv`` (or ``manifest.csv``) is read through that
  manifest, so its ``split`` and ``cloud_or_snow`` columns are honoured.

:func:`read_pair` reads one pair as arrays on the SAR grid. When both rasters are georeferenced and
their grids differ, the optical image is reprojected onto the SAR grid (bilinear); only the overlap
is valid. Plain images without georeference must have the same size.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

    from sar_colorizer.io.dataset import RasterInfo

logger = logging.getLogger(__name__)

#: File name suffixes taken as rasters when scanning folders (auxiliary files are skipped).
RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".img", ".vrt"})
#: Manifest file names looked for inside an input folder, in this order.
MANIFEST_NAMES = ("pairs.csv", "manifest.csv")
#: Accepted names of the SAR and optical sub-folders of the two-folder layout.
SAR_FOLDER_NAMES = ("sar", "s1", "SAR", "S1")
OPTICAL_FOLDER_NAMES = ("opt", "optical", "s2", "OPT", "S2")
#: The ``_<row>_<col>`` ending that BigEarthNet's S1 and S2 patch folders of one place share.
_PATCH_SUFFIX = re.compile(r"_(\d+_\d+)$")

#: Split labels accepted in a manifest's ``split`` column.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
#: Manifest column flagging a pair whose optical reference is covered by cloud or seasonal snow.
FLAG_COLUMN = "cloud_or_snow"
#: What ``preprocess`` and ``eval`` do with pairs flagged in :data:`FLAG_COLUMN`: use them like
#: the rest, or leave them out.
FLAGGED_CHOICES = ("include", "exclude")
#: Accepted cells of the flag column (lower case); an empty cell is unflagged.
FLAG_VALUES = {"": False, "0": False, "1": True, "false": False, "true": True,
               "no": False, "yes": True}
_SEN12_FOLDER = re.compile(r"^s1_")
_SEN12_TOKEN = "_s1_"
_MAX_NAMED = 5


@dataclass(frozen=True)
class Pair:
    """One SAR image and the optical image co-registered with it.

    Attributes:
        name: Unique, file-name-like identifier of the pair (the SAR file's stem, sensor token
            removed for SEN1-2 names); used to split by source image and recorded in every chip.
        sar: Path of the SAR raster.
        optical: Path of the optical (RGB) raster.
        split: ``"train"``, ``"val"``, ``"test"`` as given by a manifest, or None.
        cloud_or_snow: The manifest flags the optical image as covered by cloud or seasonal
            snow: the SAR sees the ground through clouds, so such a reference does not show
            the surface colour (BigEarthNet recommends leaving these patches out). False
            where the manifest has no such column, or for folder layouts.
    """

    name: str
    sar: Path
    optical: Path
    split: str | None = None
    cloud_or_snow: bool = False


def is_flagged(pair: object) -> bool:
    """Whether a pair's optical image is flagged :data:`FLAG_COLUMN` (pairs made by hand
    without the attribute are not)."""
    return bool(getattr(pair, FLAG_COLUMN, False))


@dataclass
class PairArrays:
    """A pair read onto the SAR grid.

    Attributes:
        name: The pair's name.
        sar: Raw SAR values, (C, H, W) float32, in the file's own scale (see ``input_scale``);
            NaN or anything at invalid pixels.
        valid: (H, W) bool, True where both the SAR and the (reprojected) optical are valid.
        sar_valid: (H, W) bool, True where the SAR alone is valid (the whole image, on which the
            per-image normalisation reference is computed, as at inference).
        optical_rgb: (H, W, 3) float32 sRGB in [0, 1]; 0 where not valid.
        profile: The SAR raster's rasterio profile (the grid everything is on).
        band_names: One name per SAR channel (e.g. ``("VH",)``).
        input_scale: Scale of ``sar``: ``"linear"``, ``"db"``, ``"amplitude"`` or ``"display"``
            (resolved when ``"auto"`` was asked for).
        reprojected: Whether the optical image was resampled onto the SAR grid.
    """

    name: str
    sar: np.ndarray
    valid: np.ndarray
    optical_rgb: np.ndarray
    profile: dict[str, Any]
    sar_valid: np.ndarray | None = None
    band_names: tuple[str, ...] = ()
    input_scale: str = "display"
    reprojected: bool = False


# --------------------------------------------------------------------------------------------
# Finding pairs
# --------------------------------------------------------------------------------------------


def find_pairs(input_path: str | Path) -> list[Pair]:
    """Find the SAR / optical pairs of a folder or CSV manifest.

    Args:
        input_path: A folder (``sar/`` + ``opt/``, SEN1-2 ``s1_*/`` + ``s2_*/``, or holding a
            ``pairs.csv`` manifest) or a CSV manifest with columns ``sar,optical[,split]``.

    Returns:
        The pairs, sorted by name. Names are unique.

    Raises:
        InputError: The path does not exist, holds no pairs, a file named by the manifest is
            missing, or a SAR / optical file has no partner (the message names them).
    """
    path = Path(input_path)
    if not path.exists():
        raise InputError(
            f"{path}: no such file or folder; give a folder of pairs or a CSV manifest"
        )
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise InputError(
                f"{path}: not a CSV manifest; give a folder of pairs or a CSV with columns sar,optical[,split]"
            )
        return read_manifest(path)
    for manifest_name in MANIFEST_NAMES:
        if (path / manifest_name).is_file():
            logger.info("Using the manifest %s", path / manifest_name)
            return read_manifest(path / manifest_name)
    sar_dir = _first_dir(path, SAR_FOLDER_NAMES)
    opt_dir = _first_dir(path, OPTICAL_FOLDER_NAMES)
    if sar_dir is not None and opt_dir is not None:
        return match_folders(sar_dir, opt_dir)
    pairs = _find_sen12_pairs(path)
    if pairs:
        return pairs
    raise InputError(
        f"{path}: no pairs found; expected sar/ and opt/ folders, SEN1-2 s1_*/ and s2_*/ folders, "
        "or a pairs.csv manifest (sar,optical[,split])"
    )


def read_manifest(csv_path: str | Path) -> list[Pair]:
    """Read a CSV manifest of pairs.

    Args:
        csv_path: CSV with a header naming at least ``sar`` and ``optical`` (or ``opt``) columns and
            optionally ``split`` and ``cloud_or_snow``; relative paths are taken from the CSV's
            folder.

    Returns:
        The pairs in file order; an empty ``split`` cell gives ``split=None``. A
        ``cloud_or_snow`` cell of ``1``, ``true`` or ``yes`` flags the pair; ``0``, ``false``,
        ``no`` or empty (or no such column) leaves it unflagged.

    Raises:
        InputError: Missing columns, no rows, files that do not exist (named), or a
            ``cloud_or_snow`` cell that is none of those values (file, line and column named).
    """
    csv_path = Path(csv_path)
    base = csv_path.parent
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
        sar_key = header.get("sar")
        opt_key = header.get("optical") or header.get("opt")
        split_key = header.get("split")
        flag_key = header.get(FLAG_COLUMN)
        if sar_key is None or opt_key is None:
            raise InputError(
                f"{csv_path}: the manifest needs a header with columns sar,optical[,split] "
                f"(found {', '.join(reader.fieldnames or []) or 'none'})"
            )
        # With the line each row ends on, for messages.
        rows = [
            (reader.line_num, row)
            for row in reader
            if any((value or "").strip() for value in row.values())
        ]
    if not rows:
        raise InputError(f"{csv_path}: the manifest lists no pairs")

    pairs: list[Pair] = []
    missing: list[str] = []
    for line, row in rows:
        sar = _resolve(base, row[sar_key])
        optical = _resolve(base, row[opt_key])
        for file in (sar, optical):
            if not (file.is_file() or file.is_dir()):  # a folder: one file per band
                missing.append(str(file))
        split = (row.get(split_key) or "").strip().lower() if split_key else ""
        flagged = _read_flag(row.get(flag_key), csv_path, line) if flag_key else False
        pairs.append(Pair(name=sar.stem, sar=sar, optical=optical, split=split or None,
                          cloud_or_snow=flagged))
    if missing:
        raise InputError(
            f"{csv_path}: {len(missing)} listed file(s) do not exist: {_name_some(missing)}"
        )
    return _unique_names(pairs, base)


def _read_flag(cell: str | None, csv_path: Path, line: int) -> bool:
    """A ``cloud_or_snow`` cell as a bool (see :data:`FLAG_VALUES`)."""
    text = (cell or "").strip()
    value = FLAG_VALUES.get(text.lower())
    if value is None:
        raise InputError(
            f"{csv_path}: line {line}, column {FLAG_COLUMN}: {text!r} is not a flag; "
            "use 1/0, true/false, yes/no or leave it empty"
        )
    return value


def match_folders(sar_dir: str | Path, opt_dir: str | Path) -> list[Pair]:
    """Pair the rasters of two folders by file stem (extensions may differ).

    Raises:
        InputError: Files without a partner (named), or no rasters at all.
    """
    sar_dir, opt_dir = Path(sar_dir), Path(opt_dir)
    if not _rasters(sar_dir) and _subfolders(sar_dir):
        return _match_subfolders(sar_dir, opt_dir)
    sar_files = _images_by_name(sar_dir, "sar")
    opt_files = _images_by_name(opt_dir, "optical")
    _check_partners(sar_files, opt_files, sar_dir, opt_dir)
    if not sar_files:
        raise InputError(
            f"{sar_dir}: no rasters found (looked for {', '.join(sorted(RASTER_SUFFIXES))})"
        )
    return [Pair(stem, sar_files[stem], opt_files[stem]) for stem in sorted(sar_files)]


def _images_by_name(folder: Path, kind: str) -> dict[str, Path]:
    """The images of a folder by name: a file's stem, or for one file per band (``NAME_B04``,
    ``NAME_VH``) the common ``NAME``, represented by its first band file."""
    from sar_colorizer.data.bandfiles import band_token

    images: dict[str, Path] = {}
    for file in _rasters(folder):
        token = band_token(file, kind)
        key = token[0] if token else file.stem
        images.setdefault(key, file)
    return images


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _match_subfolders(sar_dir: Path, opt_dir: Path) -> list[Pair]:
    """One folder per image on each side (BigEarthNet: ``S1/<id>/<id>_VV.tif, _VH.tif`` and
    ``S2/<id>/<id>_B04.tif, _B03.tif, _B02.tif``), matched by the ``_<row>_<col>`` ending of the
    folder names (else by the whole name)."""

    def key(folder: Path) -> str:
        match = _PATCH_SUFFIX.search(folder.name)
        return match[1] if match else folder.name

    sar_folders = {key(folder): folder for folder in _subfolders(sar_dir)}
    opt_folders = {key(folder): folder for folder in _subfolders(opt_dir)}
    _check_partners(sar_folders, opt_folders, sar_dir, opt_dir)
    return [
        Pair(sar_folders[k].name, sar_folders[k], opt_folders[k])
        for k in sorted(sar_folders, key=lambda k: sar_folders[k].name)
    ]


def _find_sen12_pairs(root: Path) -> list[Pair]:
    """SEN1-2 layout: ``s1_<n>/<...>_s1_<...>`` matched with ``s2_<n>/<...>_s2_<...>``."""
    sar_dirs = sorted(
        d for d in [root, *root.rglob("*")] if d.is_dir() and _SEN12_FOLDER.match(d.name)
    )
    pairs: list[Pair] = []
    for sar_dir in sar_dirs:
        opt_dir = sar_dir.with_name("s2_" + sar_dir.name[3:])
        sar_files = {}
        for file in _rasters(sar_dir):
            if _SEN12_TOKEN not in file.name:
                raise InputError(
                    f"{file}: SEN1-2 SAR file names must contain '{_SEN12_TOKEN}' "
                    "(e.g. ROIs1158_spring_s1_1_p30.png)"
                )
            sar_files[file.name.replace(_SEN12_TOKEN, "_s2_")] = file
        if not opt_dir.is_dir():
            raise InputError(f"{sar_dir}: no matching optical folder {opt_dir.name}/ beside it")
        opt_files = {file.name: file for file in _rasters(opt_dir)}
        _check_partners(sar_files, opt_files, sar_dir, opt_dir)
        for key in sorted(sar_files):
            sar = sar_files[key]
            name = sar.stem.replace(_SEN12_TOKEN, "_")
            pairs.append(Pair(name, sar, opt_files[key]))
    return _unique_names(sorted(pairs, key=lambda p: p.name), root)


def _check_partners(
    sar_files: dict[str, Path], opt_files: dict[str, Path], sar_dir: Path, opt_dir: Path
) -> None:
    no_optical = sorted(sar_files[key].name for key in sar_files.keys() - opt_files.keys())
    no_sar = sorted(opt_files[key].name for key in opt_files.keys() - sar_files.keys())
    problems = []
    if no_optical:
        problems.append(
            f"{len(no_optical)} SAR file(s) in {sar_dir} have no optical partner in {opt_dir}: "
            f"{_name_some(no_optical)}"
        )
    if no_sar:
        problems.append(
            f"{len(no_sar)} optical file(s) in {opt_dir} have no SAR partner in {sar_dir}: "
            f"{_name_some(no_sar)}"
        )
    if problems:
        raise InputError("; ".join(problems) + "; add the partners or remove these files")


def _rasters(folder: Path) -> list[Path]:
    return sorted(
        file
        for file in folder.iterdir()
        if file.is_file()
        and not file.name.startswith(".")
        and file.suffix.lower() in RASTER_SUFFIXES
    )


def _first_dir(root: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def _resolve(base: Path, value: str | None) -> Path:
    text = (value or "").strip()
    if not text:
        raise InputError(f"{base}: a manifest row has an empty sar or optical path")
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _unique_names(pairs: list[Pair], base: Path) -> list[Pair]:
    """Stems can repeat across folders; disambiguate with the path relative to ``base``."""
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.name] = counts.get(pair.name, 0) + 1
    out = []
    for pair in pairs:
        if counts[pair.name] > 1:
            try:
                relative = pair.sar.relative_to(base).with_suffix("")
                name = "_".join(relative.parts)
            except ValueError:
                name = "_".join(pair.sar.with_suffix("").parts[-3:])
            pair = dataclasses.replace(pair, name=name)
        out.append(pair)
    names = [pair.name for pair in out]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise InputError(
            f"{base}: pairs listed twice: {_name_some(duplicates)}; list each pair once"
        )
    return out


def _name_some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    return shown + (f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


# --------------------------------------------------------------------------------------------
# Split by source image
# --------------------------------------------------------------------------------------------


def assign_splits(
    pairs: Sequence[Pair],
    val_fraction: float = 0.15,
    seed: int = 0,
    include_test: bool = False,
) -> dict[str, str | None]:
    """Assign every source pair to ``"train"``, ``"val"``, ``"test"`` or None (excluded).

    Whole images go to one side, never chips of one image to both.

    * Manifest labels are honoured: ``train``; ``val``/``validation``; ``test`` (excluded, with a
      log line, unless ``include_test``, when they form a ``test`` split of their own).
    * When no pair is labelled ``val``, a seeded ``val_fraction`` of the pairs labelled ``train``
      or unlabelled becomes the validation set (as s1s2-la-texas needs: its ``pairs.csv`` has only
      ``train`` and ``test``, and validation must be carved out of ``train`` by fragment).
    * When some pairs are labelled ``val``, unlabelled pairs are split with ``val_fraction``;
      labelled ``train`` pairs stay in train.

    The draw is a permutation of the sorted pair names by ``numpy.random.default_rng(seed)``:
    reproducible and independent of the file order. At least one validation image is drawn when
    ``val_fraction > 0`` and two or more images are available.

    Raises:
        InputError: An unknown split label, or ``val_fraction`` outside [0, 1).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"validation fraction {val_fraction} is not in [0, 1); e.g. 0.15")
    labels: dict[str, str | None] = {}
    for pair in pairs:
        if pair.split is None:
            labels[pair.name] = None
            continue
        label = SPLIT_ALIASES.get(pair.split.strip().lower())
        if label is None:
            raise InputError(
                f"pair {pair.name}: unknown split '{pair.split}'; use train, val or test"
            )
        labels[pair.name] = label

    has_val = any(label == "val" for label in labels.values())
    if has_val:
        pool = sorted(name for name, label in labels.items() if label is None)
    else:
        pool = sorted(name for name, label in labels.items() if label in (None, "train"))
    n_val = int(round(val_fraction * len(pool)))
    if val_fraction > 0 and n_val == 0 and len(pool) >= 2:
        n_val = 1
    order = np.random.default_rng(seed).permutation(len(pool))
    chosen_val = {pool[i] for i in order[:n_val]}

    splits: dict[str, str | None] = {}
    for name, label in labels.items():
        if name in chosen_val:
            splits[name] = "val"
        elif label is None:
            splits[name] = "train"
        elif label == "test":
            splits[name] = "test" if include_test else None
        else:
            splits[name] = label
    excluded = sorted(name for name, split in splits.items() if split is None)
    if excluded:
        logger.info(
            "Excluding %d pair(s) labelled test (pass --include-test to write them): %s",
            len(excluded),
            ", ".join(excluded[:10]) + (" ..." if len(excluded) > 10 else ""),
        )
    return splits


# --------------------------------------------------------------------------------------------
# Reading pairs
# --------------------------------------------------------------------------------------------


def is_georeferenced(info: RasterInfo) -> bool:
    """A raster is georeferenced when it has a CRS (plain PNGs get an identity transform, no CRS)."""
    return info.crs is not None


def check_pair(pair: Pair) -> tuple[int, int]:
    """Check, from the headers only, that a pair can be brought onto one grid.

    Cheap (no pixels are read), so every pair can be checked before any output is written.

    Returns:
        ``(height, width)`` of the SAR grid, on which the pair will be read.

    Raises:
        InputError: Different sizes without georeference on both sides, or georeferenced rasters
            that do not overlap or whose CRS cannot be transformed.
    """
    from sar_colorizer.data.bandfiles import stack_info

    sar_info = stack_info(pair.sar, "sar")
    opt_info = stack_info(pair.optical, "optical")
    _check_grids(pair, sar_info, opt_info)
    if opt_info.count < 3:
        raise InputError(
            f"{pair.optical}: the optical image has {opt_info.count} band(s); give an RGB image "
            "(3 bands: red, green, blue)"
        )
    return sar_info.height, sar_info.width


def check_pairs(pairs: Sequence[Pair]) -> None:
    """:func:`check_pair` on every pair, from the headers: all problems in one error, before
    any work (a run that scores or cuts the others first would fail after minutes).

    Raises:
        InputError: ``"2 of 24 pairs cannot be used (nothing was done): 001: ...; 007: ...;
            fix or remove them"``.
    """
    problems = []
    for pair in pairs:
        try:
            check_pair(pair)
        except InputError as error:
            problems.append(str(error) if pair.name in str(error) else f"{pair.name}: {error}")
    if problems:
        raise InputError(f"{len(problems)} of {len(pairs)} pair(s) cannot be used (nothing was "
                         f"done): {'; '.join(problems)}; fix or remove them")


def _check_grids(pair: Pair, sar_info: RasterInfo, opt_info: RasterInfo) -> bool:
    """Return whether the optical image must be reprojected; raise when it cannot be used."""
    same_size = (sar_info.width, sar_info.height) == (opt_info.width, opt_info.height)
    if is_georeferenced(sar_info) and is_georeferenced(opt_info):
        same_grid = (
            same_size
            and sar_info.crs == opt_info.crs
            and sar_info.transform.almost_equals(opt_info.transform)
        )
        if same_grid:
            return False
        _check_overlap(pair, sar_info, opt_info)
        return True
    if same_size:
        if is_georeferenced(sar_info) != is_georeferenced(opt_info):
            logger.warning(
                "%s: only one image of the pair is georeferenced; same size, so used pixel for pixel",
                pair.name,
            )
        return False
    missing = [
        label
        for label, info in (("SAR", sar_info), ("optical", opt_info))
        if not is_georeferenced(info)
    ]
    raise InputError(
        f"pair {pair.name}: SAR {pair.sar.name} is {sar_info.width}x{sar_info.height} px but optical "
        f"{pair.optical.name} is {opt_info.width}x{opt_info.height} px and the {' and '.join(missing)} "
        "image has no georeference; give co-registered images of one size or georeferenced GeoTIFFs"
    )


def _check_overlap(pair: Pair, sar_info: RasterInfo, opt_info: RasterInfo) -> None:
    from rasterio.errors import CRSError
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    sar_bounds = array_bounds(sar_info.height, sar_info.width, sar_info.transform)
    opt_bounds = array_bounds(opt_info.height, opt_info.width, opt_info.transform)
    try:
        opt_in_sar = transform_bounds(opt_info.crs, sar_info.crs, *opt_bounds, densify_pts=21)
    except (CRSError, ValueError, RuntimeError) as error:
        raise InputError(
            f"pair {pair.name}: cannot reproject optical CRS {opt_info.crs} onto SAR CRS "
            f"{sar_info.crs} ({error}); give rasters in compatible CRSs"
        ) from error
    # array_bounds returns (west, south, east, north)
    overlap_x = min(sar_bounds[2], opt_in_sar[2]) - max(sar_bounds[0], opt_in_sar[0])
    overlap_y = min(sar_bounds[3], opt_in_sar[3]) - max(sar_bounds[1], opt_in_sar[1])
    if not (np.isfinite(overlap_x) and np.isfinite(overlap_y)) or overlap_x <= 0 or overlap_y <= 0:
        raise InputError(
            f"pair {pair.name}: SAR {pair.sar.name} ({sar_info.crs}) and optical {pair.optical.name} "
            f"({opt_info.crs}) do not overlap; check that they show the same place"
        )


def optical_band_indexes(info: RasterInfo) -> list[int]:
    """Red, green, blue of an optical raster: bands described B04, B03, B02 (also B4, red, ...)
    where the file names them, else bands 1, 2, 3."""
    names = {"B04": ("b04", "b4", "red"), "B03": ("b03", "b3", "green"), "B02": ("b02", "b2", "blue")}
    descriptions = [(d or "").strip().lower() for d in (info.descriptions or ())]
    indexes = []
    for spellings in names.values():
        found = [i for i, d in enumerate(descriptions, start=1) if d in spellings]
        if len(found) != 1:
            return [1, 2, 3]
        indexes.append(found[0])
    return indexes


def render_optical(
    path: Path,
    values: np.ndarray,
    valid: np.ndarray,
    dtype: str,
    convention: str,
    offset: float | None = None,
) -> np.ndarray:
    """The optical image (3, H, W) in a colour convention (see :mod:`sar_colorizer.color.convention`)."""
    from sar_colorizer.color.convention import offset_from_tags, to_convention

    if offset is None:
        offset = offset_from_tags(_raster_tags(path)) or 0.0
    return to_convention(values, valid, dtype, convention, offset=offset)


def _raster_tags(path: Path) -> dict[str, str]:
    """Dataset-level metadata of a raster (empty when it cannot be read)."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=_not_georeferenced_warning())
            with rasterio.open(path) as src:
                return dict(src.tags())
    except rasterio.errors.RasterioError:
        return {}


def read_pair(
    pair: Pair,
    bands: str | Sequence[str | int] | None = None,
    input_scale: str = "auto",
    band_names: Sequence[str] | None = None,
    optical_convention: str = "as-is",
    optical_offset: float | None = None,
) -> PairArrays:
    """Read a pair onto the SAR grid.

    The SAR may be a Sentinel-1 GRD product (``.SAFE``, ``manifest.safe``, ``.zip``): it is
    calibrated to sigma0, freed of thermal noise and geocoded first
    (:func:`sar_colorizer.io.sar_input.open_sar_input`; the whole geocoded product is then read,
    which for a full-size product takes a few GB), and analysis-ready RTC GeoTIFFs are read in
    the scale their metadata or name gives.

    Args:
        pair: The pair.
        bands: SAR bands to read (``"VV,VH"`` by description or file-name suffix, ``"1,2"``, or a
            sequence); None reads all bands.
        input_scale: Scale of the SAR values: ``"auto"`` (detected by
            :func:`sar_colorizer.sar.radiometry.detect_input_scale`), ``"linear"``, ``"db"``,
            ``"amplitude"`` or ``"display"``. The values are returned unchanged; the resolved scale
            is recorded in the result.
        band_names: Names to give the selected bands (overrides descriptions); one per band.
        optical_convention: How the optical image is rendered as RGB: ``"dos"`` (haze removed,
            one display stretch) or ``"as-is"`` (earlier versions' rendering); see
            :func:`sar_colorizer.color.convention.to_convention`.
        optical_offset: Offset added to integer reflectance before dividing by 10000 (-1000 for
            Sentinel-2 Level-2A from processing baseline 04.00 on); None takes it from the file's
            ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` metadata, else 0.

    Returns:
        :class:`PairArrays` with the optical image in sRGB [0, 1] on the SAR grid. When both rasters
        are georeferenced on different grids, the optical image is reprojected
        (``rasterio.warp.reproject``, bilinear) and only the overlap is valid.

    Raises:
        InputError: Different sizes without georeference, no overlap, an optical image with fewer
            than 3 bands, a wrong number of band names, or no valid pixels.
        RasterError: A file cannot be read.
    """
    from sar_colorizer.io.sar_input import open_sar_input

    if isinstance(pair.sar, Path) and pair.sar.exists():
        with open_sar_input(pair.sar, progress=False) as sar:
            return _read_pair(
                dataclasses.replace(pair, sar=Path(sar.path)), bands, sar.input_scale(input_scale),
                band_names, optical_convention, optical_offset,
            )
    return _read_pair(pair, bands, input_scale, band_names, optical_convention, optical_offset)


def _read_pair(
    pair: Pair,
    bands: str | Sequence[str | int] | None,
    input_scale: str,
    band_names: Sequence[str] | None,
    optical_convention: str,
    optical_offset: float | None,
) -> PairArrays:
    from sar_colorizer.data.bandfiles import read_stack, stack_info
    from sar_colorizer.io.bands import resolve_bands
    from sar_colorizer.sar.polarisation import sar_band_names
    from sar_colorizer.sar.radiometry import detect_input_scale

    sar_info = stack_info(pair.sar, "sar")
    opt_info = stack_info(pair.optical, "optical")
    reproject_needed = _check_grids(pair, sar_info, opt_info)

    band_indexes = resolve_bands(sar_info, bands)
    names = sar_band_names(sar_info, band_indexes)
    if band_names is not None:
        if len(band_names) != len(band_indexes):
            raise InputError(
                f"{len(band_names)} band name(s) ({', '.join(band_names)}) given for "
                f"{len(band_indexes)} SAR band(s) of {pair.sar.name}; give one name per band"
            )
        names = tuple(band_names)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=_not_georeferenced_warning())
        sar_values, sar_valid = read_stack(pair.sar, "sar", bands=band_indexes)
        if opt_info.count < 3:
            raise InputError(
                f"{pair.optical}: the optical image has {opt_info.count} band(s); give an RGB image "
                "(3 bands: red, green, blue)"
            )
        opt_values, opt_valid = read_stack(
            pair.optical, "optical", bands=optical_band_indexes(opt_info), zero_is_nodata=True
        )

    sar_valid = np.asarray(sar_valid, dtype=bool)
    scale = input_scale
    if scale == "auto":
        # Detection looks at the file's own dtype (integer files are display images).
        scale = detect_input_scale(_native(np.asarray(sar_values), sar_info.dtype), sar_valid)
    sar_values = np.asarray(sar_values, dtype=np.float32)
    rgb = render_optical(
        pair.optical,
        np.asarray(opt_values),
        np.asarray(opt_valid, dtype=bool),
        opt_info.dtype,
        optical_convention,
        optical_offset,
    )
    opt_valid = np.asarray(opt_valid, dtype=bool)
    if reproject_needed:
        rgb, opt_valid = reproject_to_grid(
            rgb,
            opt_valid,
            opt_info.transform,
            opt_info.crs,
            sar_info.transform,
            sar_info.crs,
            (sar_info.height, sar_info.width),
        )
        if not opt_valid.any():
            raise InputError(
                f"pair {pair.name}: the optical image {pair.optical.name} does not overlap the SAR "
                f"image {pair.sar.name} once reprojected; check that they show the same place"
            )
        logger.debug("%s: optical reprojected onto the SAR grid", pair.name)

    valid = sar_valid & opt_valid
    rgb_hwc = np.moveaxis(rgb, 0, -1) * valid[..., None]
    return PairArrays(
        name=pair.name,
        sar=sar_values,
        valid=valid,
        optical_rgb=rgb_hwc.astype(np.float32),
        profile=dict(sar_info.profile),
        sar_valid=sar_valid,
        band_names=names,
        input_scale=scale,
        reprojected=reproject_needed,
    )


def _native(values: np.ndarray, dtype: str) -> np.ndarray:
    """The values in the file's own dtype (a reader may have returned them as float)."""
    native = np.dtype(dtype)
    if values.dtype == native or not np.issubdtype(native, np.integer):
        return values
    return np.nan_to_num(values).astype(native)


def _not_georeferenced_warning() -> type[Warning]:
    from rasterio.errors import NotGeoreferencedWarning

    return NotGeoreferencedWarning


def reproject_to_grid(
    rgb: np.ndarray,
    valid: np.ndarray,
    src_transform: Affine,
    src_crs: CRS,
    dst_transform: Affine,
    dst_crs: CRS,
    dst_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Resample an image (C, h, w) onto another grid, bilinear, NaN-aware.

    Invalid source pixels are set to NaN and passed as nodata, so they never blend into valid
    ones; destination pixels outside the source (or whose neighbourhood is nodata) stay invalid.

    Returns:
        ``(image (C, H, W) float32 with 0 where invalid, valid (H, W) bool)``.
    """
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    source = np.where(valid[None], rgb, np.nan).astype(np.float32)
    destination = np.full((rgb.shape[0], *dst_shape), np.nan, dtype=np.float32)
    reproject(
        source=source,
        destination=destination,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    dst_valid = np.all(np.isfinite(destination), axis=0)
    return np.where(dst_valid[None], destination, 0.0).astype(np.float32), dst_valid
