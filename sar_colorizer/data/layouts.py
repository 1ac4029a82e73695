"""Finding co-registered SAR / optical pairs in a folder or a CSV manifest, and their splits.

Three layouts are understood (see :func:`find_pairs`):

* a folder with ``sar/`` and ``opt/`` sub-folders whose files share a stem (``sar/003.png`` with
  ``opt/003.png``), as in the s1s2-la-texas data;
* SEN1-2 style folders ``s1_<n>/`` and ``s2_<n>/`` whose files differ only in the sensor token
  (``ROIs1158_spring_s1_1_p30.png`` with ``ROIs1158_spring_s2_1_p30.png``);
* a CSV manifest with columns ``sar,optical[,split][,cloud_or_snow]`` whose paths are relative to
  the CSV's folder. A folder holding a ``pairs.csv`` (or ``manifest.csv``) is read through that
  manifest, so its ``split`` and ``cloud_or_snow`` columns are honoured.

:func:`assign_splits` gives each pair its split (the manifest's, else by source image). Reading a
pair onto one pixel grid is :mod:`sar_colorizer.data.pairs`.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sar_colorizer.data.pairs import FLAG_COLUMN, Pair
from sar_colorizer.errors import InputError

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
#: Accepted cells of the flag column (lower case); an empty cell is unflagged.
FLAG_VALUES = {"": False, "0": False, "1": True, "false": False, "true": True,
               "no": False, "yes": True}
_SEN12_FOLDER = re.compile(r"^s1_")
_SEN12_TOKEN = "_s1_"
_MAX_NAMED = 5


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
