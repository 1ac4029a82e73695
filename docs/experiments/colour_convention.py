"""Mean colour of each dataset's optical images, as stored and in each optical convention.

The Los Angeles / Texas optics are Level-1C 8-bit display images with haze; BigEarthNet's are
Level-2A surface reflectance. As stored, their colours disagree mostly through haze and display
stretch; in the ``dos`` convention they should agree on what land looks like. Prints one
markdown table: per dataset and split, the mean over images of each image's mean a*, b*
(CIELAB, valid pixels only), and the spread of those means between images.

    python docs/experiments/colour_convention.py                     # ../shared/data, every dataset
    python docs/experiments/colour_convention.py --data ../shared/data --limit 10
    python docs/experiments/colour_convention.py --haze   # also: synthetic haze on the committed samples

``--haze`` adds a second table: on the six committed BigEarthNet Level-2A samples, a
Level-1C-like rendering (surface reflectance x gain 0.9 x transmittance per channel + a blue
path radiance of 0.03 / 0.05 / 0.09, then an 8-bit display stretch) against the Level-2A
reflectance, mean |delta a*b*| in CIELAB units, as stored and in ``dos``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from skimage.color import rgb2lab

from sar_colorizer.color.convention import OPTICAL_CONVENTIONS
from sar_colorizer.data.layouts import find_pairs
from sar_colorizer.data.pairs import read_pair

COLUMNS = tuple(reversed(OPTICAL_CONVENTIONS))  # as stored first, then dos

REPO = Path(__file__).resolve().parents[2]
DATASETS = (
    ("s1s2-la-texas", "train", "Los Angeles, Level-1C display PNG"),
    ("s1s2-la-texas", "test", "Texas, Level-1C display PNG"),
    ("bigearthnet-configilm", "train", "Europe, Level-2A reflectance"),
    ("bigearthnet-configilm", "test", "Europe, Level-2A reflectance"),
)
SAMPLES = ("samples/bigearthnet-s1-s2", None, "Europe, Level-2A, one file per band")


def image_mean_ab(pair, convention: str) -> np.ndarray:
    arrays = read_pair(pair, optical_convention=convention)
    lab = rgb2lab(arrays.optical_rgb.astype(np.float64))
    return lab[arrays.valid][:, 1:].mean(axis=0)


def measure(folder: Path, split: str | None, limit: int | None) -> dict[str, np.ndarray]:
    pairs = [p for p in find_pairs(folder) if split is None or p.split == split]
    if limit:
        pairs = pairs[:limit]
    return {
        convention: np.array([image_mean_ab(pair, convention) for pair in pairs])
        for convention in OPTICAL_CONVENTIONS
    }


PATH_RADIANCE = np.array([0.03, 0.05, 0.09])[:, None, None]
TRANSMITTANCES = {"haze only": (1.0, 1.0, 1.0), "haze, blue dimmed": (0.95, 0.92, 0.87)}


def haze_table() -> None:
    import rasterio

    from sar_colorizer.color.convention import to_convention

    def ab(rgb: np.ndarray) -> np.ndarray:
        return rgb2lab(np.moveaxis(rgb, 0, -1).astype(np.float64))[..., 1:]

    folders = sorted(p for p in (REPO / "data/samples/bigearthnet-s1-s2/S2").iterdir()
                     if p.is_dir())
    print("\n| sample | " + " | ".join(f"{k}: as stored, dos" for k in TRANSMITTANCES) + " |")
    print("|---|" + "---|" * len(TRANSMITTANCES))
    for folder in folders:
        bands = []
        for band in ("B04", "B03", "B02"):
            with rasterio.open(folder / f"{folder.name}_{band}.tif") as src:
                bands.append(src.read(1))
        surface = np.stack(bands)
        valid = np.ones(surface.shape[1:], bool)
        cells = []
        for transmittance in TRANSMITTANCES.values():
            toa = 0.9 * np.asarray(transmittance)[:, None, None] * surface / 10000 + PATH_RADIANCE
            png = np.clip(np.round(toa / np.percentile(toa, 99.5) * 255), 0, 255).astype(np.uint8)
            errors = []
            for convention in ("as-is", "dos"):
                hazy = to_convention(png, valid, "uint8", convention)
                clear = to_convention(surface, valid, "uint16", convention)
                errors.append(float(np.linalg.norm(ab(hazy) - ab(clear), axis=-1).mean()))
            cells.append(f"{errors[0]:.2f}, {errors[1]:.2f}")
        print(f"| {folder.name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images each")
    parser.add_argument("--haze", action="store_true", help="also the synthetic haze table")
    args = parser.parse_args(argv)
    header = "| data | split | images | " + " | ".join(
        f"{c}: mean a*, b* (spread)" for c in COLUMNS
    ) + " |"
    print(header)
    print("|" + "---|" * (3 + len(COLUMNS)))
    for name, split, label in (*DATASETS, SAMPLES):
        folder = args.data / name
        if not folder.exists():
            print(f"| {name} ({label}) | {split} | absent | |", file=sys.stderr)
            continue
        result = measure(folder, split, args.limit)
        cells = []
        for convention in COLUMNS:
            means = result[convention]
            mean, spread = means.mean(axis=0), means.std(axis=0)
            cells.append(f"{mean[0]:.1f}, {mean[1]:.1f} ({spread[0]:.1f}, {spread[1]:.1f})")
        n = len(next(iter(result.values())))
        print(f"| {name} ({label}) | {split or 'all'} | {n} | " + " | ".join(cells) + " |")
    command = "python docs/experiments/colour_convention.py" + (f" --limit {args.limit}" if args.limit else "")
    if args.haze:
        command += " --haze"
    print(
        "\nMean over images of each image's mean a*, b* over its valid pixels; spread: standard "
        f"deviation of those means between images. `as-is`: as stored. Command: {command}"
    )
    if args.haze:
        haze_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
