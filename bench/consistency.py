#!/usr/bin/env python3
"""Does a place keep its colour when the tile grid or the crop moves? Shift, crop and seam tests.

For each input, colour it with ``predict``'s defaults (through :func:`sar_colorizer.colorize_file`,
the code ``sarcolor predict`` runs), then colour copies of it cut by ``(rows, cols)`` pixels at
the top left (1, 8, 37/53 and 64 px: the tile grid moves, the land does not) and its central
60 % (the scene statistics change too), and compare the a*b* of the shown colours (the output
RGB converted to CIELAB) over the pixels both cover: RMSE and 95th percentile of the per-pixel
a*b* distance (:func:`sar_colorizer.consistency.shift_agreement`). "net" columns compare the
network's a*b* (``--ab`` output, before the chroma limit) the same way. The seam score is the
mean a*b* step across the tile grid's overlap bands over the same step elsewhere
(:func:`sar_colorizer.consistency.seam_score`; about 1 without seams).

Inputs:

* the committed Camargue sample of the quick start (20 m VV dB);
* one Texas test fragment of ``s1s2-la-texas`` (10 m, 8-bit display VH);
* a window of the T14RNT scene in dB (10 m; built with ``../shared/tools/make_scene.py T14RNT
  DIR --kind sar --db`` into ``--scene-dir`` when absent).

    python bench/consistency.py                          # shipped model, all inputs
    python bench/consistency.py --model runs/default --inputs camargue
    python bench/consistency.py --overlap 48             # any predict option
    python bench/consistency.py --reference raster       # cuts use the whole image's reference

``--reference`` says what each cut is normalised with: ``own`` (``predict``'s default: the
cut's own 99th percentile and brightness quantiles), ``value`` (``predict --reference`` with the
whole image's reference value: the network sees the same input, L follows each cut's
quantiles) or ``raster`` (``predict --reference-from`` the whole image: its reference and tone
quantiles). Display (8-bit) inputs keep their own reference whatever is asked.

Prints a markdown table and the command that made it.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO / ".." / "shared"
CAMARGUE = REPO / "data" / "samples" / "spatialist-s1-vv-db" / (
    "S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db.tif"
)
TEXAS_FRAGMENT = SHARED / "data" / "s1s2-la-texas" / "sar" / "247.png"
MAKE_SCENE = SHARED / "tools" / "make_scene.py"
SCENE_NAME = "T14RNT_sar_db.tif"
OFFSETS = ((1, 1), (8, 8), (37, 53), (64, 64))
INPUTS = ("camargue", "texas", "t14rnt")


@dataclass
class Colouring:
    """What one run of the colouring gives."""

    ab: np.ndarray  # shown a*b* (output RGB -> CIELAB)
    net_ab: np.ndarray  # network a*b* (--ab)
    valid: np.ndarray
    seconds: float


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="model bundle (default: shipped)")
    parser.add_argument("--inputs", default=",".join(INPUTS),
                        help=f"comma-separated subset of {', '.join(INPUTS)}")
    parser.add_argument("--scene-dir", type=Path, default=None,
                        help="where the T14RNT dB scene is (built there when absent; default: "
                        "a temporary folder)")
    parser.add_argument("--scene-window", type=int, default=2048,
                        help="side of the window of the T14RNT scene used (default 2048 px, "
                        "from its centre)")
    parser.add_argument("--crop", type=float, default=0.6,
                        help="fraction of each side kept by the centre crop (default 0.6)")
    parser.add_argument("--tile-size", type=int, default=None)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--reference", choices=("own", "value", "raster"), default="own",
                        help="what every cut is normalised with: its own statistics (default), "
                        "the whole image's reference value (--reference), or the whole "
                        "image's reference and tone quantiles (--reference-from)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the outputs")
    return parser.parse_args()


def write_window(source: Path, target: Path, row: int, col: int, height: int, width: int) -> Path:
    """Copy a window of a raster with its georeference (a cut as a user would make one)."""
    import rasterio
    from rasterio.windows import Window

    window = Window(col, row, width, height)
    with rasterio.open(source) as src:
        data = src.read(window=window)
        profile = src.profile.copy()
        profile.update(
            driver="GTiff", height=height, width=width, tiled=False, compress="deflate"
        )
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        if src.transform is not None and not src.transform.is_identity:
            profile["transform"] = src.window_transform(window)
        descriptions = src.descriptions
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data)
        for index, description in enumerate(descriptions, start=1):
            if description:
                dst.set_band_description(index, description)
    return target


def reference_options(whole_output: Path, image: Path, how: str) -> dict:
    """The options that give a cut of ``image`` the reference ``how`` asks for, read from the
    whole image's output (``SARCOLOR_INPUT_*`` tags); none for a display image."""
    import rasterio

    with rasterio.open(whole_output) as src:
        tags = src.tags()
    if how == "own" or tags.get("SARCOLOR_INPUT_SCALE", "").startswith("display"):
        return {}
    if how == "value":
        return {"reference": tags["SARCOLOR_INPUT_REFERENCE"]}
    return {"reference_from": image}


def colour(path: Path, work: Path, model: object, options: dict) -> Colouring:
    import rasterio
    from skimage.color import rgb2lab

    import sar_colorizer as sc

    out = work / f"{path.stem}_colour.tif"
    ab_path = work / f"{path.stem}_ab.tif"
    start = time.perf_counter()
    sc.colorize_file(path, out, model, ab_path=ab_path, overwrite=True, **options)
    seconds = time.perf_counter() - start
    with rasterio.open(out) as src:
        rgba = src.read()
    with rasterio.open(ab_path) as src:
        net_ab = src.read().transpose(1, 2, 0).astype(np.float64)
    valid = rgba[3] > 0
    ab = rgb2lab(rgba[:3].transpose(1, 2, 0))[..., 1:3]
    return Colouring(ab, net_ab, valid, seconds)


def grid_bands(model: object, path: Path, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """Step indices of the overlap bands of the grid ``predict`` lays on ``path``."""
    import rasterio

    from sar_colorizer.consistency import band_positions
    from sar_colorizer.inference.tiles import tile_settings, tiling_plan
    from sar_colorizer.io.pixel_size import resample_factor

    with rasterio.open(path) as src:
        height, width = src.height, src.width
        georeferenced = src.crs is not None and not src.transform.is_identity
        pixel = abs(src.transform.a) if georeferenced else None
    tile, overlap = tile_settings(model, options.get("tile_size"), options.get("overlap"))
    factor = resample_factor(pixel, model.pixel_size) if pixel else 1.0
    _, grid = tiling_plan(model.tile_multiple, height, width, tile, overlap, factor)
    return (
        band_positions(grid.row_origins, grid.overlap, height),
        band_positions(grid.col_origins, grid.overlap, width),
    )


def prepare_inputs(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    import rasterio

    chosen = [name.strip() for name in args.inputs.split(",") if name.strip()]
    inputs: dict[str, Path] = {}
    for name in chosen:
        if name == "camargue":
            inputs["Camargue sample (20 m, VV dB)"] = CAMARGUE
        elif name == "texas":
            if not TEXAS_FRAGMENT.is_file():
                print(f"skipping the Texas fragment: {TEXAS_FRAGMENT} not found", file=sys.stderr)
                continue
            inputs["Texas fragment 247 (10 m, 8-bit VH)"] = TEXAS_FRAGMENT
        elif name == "t14rnt":
            scene_dir = args.scene_dir or work
            scene = scene_dir / SCENE_NAME
            if not scene.is_file():
                if not MAKE_SCENE.is_file():
                    print(f"skipping T14RNT: {MAKE_SCENE} not found", file=sys.stderr)
                    continue
                scene_dir.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    [sys.executable, str(MAKE_SCENE), "T14RNT", str(scene_dir), "--kind", "sar",
                     "--db"], check=True, stdout=subprocess.DEVNULL,
                )
            with rasterio.open(scene) as src:
                side = min(args.scene_window, src.height, src.width)
                row, col = (src.height - side) // 2, (src.width - side) // 2
            window = work / f"T14RNT_VH_db_{side}.tif"  # the polarisation in the name
            inputs[f"T14RNT window {side} px (10 m, VH dB)"] = write_window(
                scene, window, row, col, side, side
            )
        else:
            raise SystemExit(f"unknown input {name!r}; choose from {', '.join(INPUTS)}")
    return inputs


def main() -> None:
    args = parse_args()
    import rasterio

    import sar_colorizer as sc
    from sar_colorizer.consistency import seam_score, shift_agreement

    model = sc.load_model(args.model)
    options = {}
    if args.tile_size is not None:
        options["tile_size"] = args.tile_size
    if args.overlap is not None:
        options["overlap"] = args.overlap
    work = args.work or Path(tempfile.mkdtemp(prefix="sarcolor-consistency-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = prepare_inputs(args, work)

    rows = []
    for label, path in inputs.items():
        case = work / path.stem
        case.mkdir(exist_ok=True)
        whole = colour(path, case, model, options)
        cut_options = {**options, **reference_options(
            case / f"{path.stem}_colour.tif", path, args.reference)}
        row_bands, col_bands = grid_bands(model, path, options)
        seams = seam_score(whole.ab, row_bands, col_bands, whole.valid)
        net_seams = seam_score(whole.net_ab, row_bands, col_bands, whole.valid)
        with rasterio.open(path) as src:
            height, width = src.height, src.width
        keep_h, keep_w = round(height * args.crop), round(width * args.crop)
        cuts = [(f"{r}, {c}", r, c, height - r, width - c) for r, c in OFFSETS]
        cuts.append((f"central {args.crop:.0%} crop", (height - keep_h) // 2,
                     (width - keep_w) // 2, keep_h, keep_w))
        first = True
        for name, r, c, h, w in cuts:
            cut_dir = case / f"cut_{r}_{c}_{h}_{w}"
            cut_dir.mkdir(exist_ok=True)
            cut_path = write_window(path, cut_dir / f"{path.stem}.tif", r, c, h, w)
            cut = colour(cut_path, cut_dir, model, cut_options)
            shown = shift_agreement(whole.ab, cut.ab, (r, c), whole.valid, cut.valid)
            net = shift_agreement(whole.net_ab, cut.net_ab, (r, c), whole.valid, cut.valid)
            rows.append((
                label if first else "", f"{height} x {width}" if first else "", name,
                f"{shown.rmse:.2f}", f"{shown.p95:.1f}", f"{net.rmse:.2f}", f"{net.p95:.1f}",
                f"{seams:.2f} / {net_seams:.2f}" if first else "",
                f"{whole.seconds:.1f}" if first else "",
            ))
            first = False

    header = ("input", "size", "cut (rows, cols)", "a*b* RMSE", "p95", "net a*b* RMSE",
              "net p95", "seam score (shown / net)", "whole s")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    settings = ", ".join(f"{k} {v}" for k, v in options.items()) or "predict's defaults"
    settings += {"own": "; each cut its own reference",
                 "value": "; cuts with the whole image's reference value (--reference)",
                 "raster": "; cuts with the whole image's reference and tone "
                           "(--reference-from)"}[args.reference]
    print(f"\nmodel: {args.model} ({settings}); outputs in {work}")
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))


if __name__ == "__main__":
    main()
