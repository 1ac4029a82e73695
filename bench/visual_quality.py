#!/usr/bin/env python3
"""How the colorised image looks, before and after the display changes, on real samples.

For the three Camargue samples (data/samples/spatialist-s1-vv-db, 20 m), the six BigEarthNet
samples (data/samples/bigearthnet-s1-s2, VH, 10 m) and a few Texas test fragments
(../shared/data/s1s2-la-texas, 10 m) it prints, per image and configuration:

* edge fidelity of L and of the colour (a*, b*) of the written sRGB image
  (:func:`sar_colorizer.visual_quality.edge_fidelity`: Sobel-magnitude correlation with the
  3 x 3-median SAR in dB);
* colour-speckle RMS (a*b* of the sRGB image minus their Gaussian blur, sigma 2 px);
* ENL of the intensity L is made from, in the flattest 10 % of 16-px blocks.

Configurations: ``before`` = L from the network's speckle filter (5 x 5 boxcar) through the
quantile-matched tone curve, bilinear colour upsampling, RGB channel clipping, no pixel-size
resampling (the behaviour before these options existed); ``after`` = the defaults ("balanced"
tone, median + guided display filter, guided colour upsampling, chroma limit, tiles resampled
to the training pixel size from the georeference).
With ``--eval`` it also scores AB RMSE on the Texas test split for both (``sarcolor eval``'s
numbers; slow: 24 whole fragments per configuration).

    python bench/visual_quality.py                      # samples + 3 Texas fragments
    python bench/visual_quality.py --texas 6 --eval     # more fragments, and Texas AB RMSE
    python bench/visual_quality.py --quicklook models     # visual_camargue.png, visual_texas.png
    python bench/visual_quality.py --envelope           # chroma-limit envelope radius sweep
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
TEXAS = REPO / ".." / "shared" / "data" / "s1s2-la-texas"

BEFORE = {
    "tone": "matched",
    "display_filter": "network",
    "colour_upsampling": "bilinear",
    "chroma_limit": False,
    "pixel_size": None,
}
AFTER: dict[str, object] = {}  # the defaults; pixel size from the georeference


def images(n_texas: int) -> list[tuple[str, str, Path, str | None]]:
    """(group, name, path, band) of every image measured."""
    found = []
    for path in sorted((SAMPLES / "spatialist-s1-vv-db").glob("*.tif")):
        found.append(("camargue", path.name[:28], path, None))
    for path in sorted((SAMPLES / "bigearthnet-s1-s2" / "S1").glob("*/*_VH.tif")):
        found.append(("bigearthnet", path.parent.name[-12:], path, None))
    if TEXAS.is_dir():
        import csv

        with open(TEXAS / "pairs.csv", newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
        for row in rows[:n_texas]:
            found.append(("texas", row["sar"], TEXAS / row["sar"], None))
    else:
        print(f"# {TEXAS} not found: Texas fragments skipped", file=sys.stderr)
    return found


def measure(bundle, path: Path, options: dict) -> dict[str, float]:
    from skimage.color import rgb2lab

    from sar_colorizer.inference import colorize_array
    from sar_colorizer.io.pixel_size import pixel_size_metres
    from sar_colorizer.io.raster import read_info, read_raster
    from sar_colorizer.visual_quality import (
        colour_speckle_rms,
        edge_fidelity,
        equivalent_number_of_looks,
    )

    info = read_info(path)
    values, valid = read_raster(path, bands=1)
    options = dict(options)
    if "pixel_size" not in options:
        options["pixel_size"] = pixel_size_metres(info.crs, info.transform, info.width, info.height)
    result = colorize_array(bundle, values, valid, **options)
    # The unfiltered SAR (the model input is boxcar-filtered): raw relative intensity.
    from sar_colorizer.inference import InputSpec, scene_statistics
    from sar_colorizer.sar.radiometry import to_linear_power

    stats = scene_statistics(values, valid, InputSpec.from_bundle(bundle))
    linear = np.asarray(to_linear_power(values, stats.input_scale, valid), dtype=np.float32)[0]
    relative = np.where(valid, linear / np.float32(stats.references[0]), 0.0).astype(np.float32)
    lab = rgb2lab(result["rgb"]).astype(np.float32)
    return {
        "edge_L": edge_fidelity(lab[..., 0], relative, valid),
        "edge_ab": edge_fidelity(lab[..., 1:], relative, valid),
        "speckle_ab": colour_speckle_rms(lab[..., 1:], valid),
        "enl": equivalent_number_of_looks(result["display"], relative, valid),
        "chroma": float(np.hypot(lab[..., 1], lab[..., 2])[valid].mean()),
    }


def envelope_sweep(bundle, n_texas: int) -> None:
    """Colour speckle, colour edge fidelity and mean chroma shown, per radius of the L envelope
    that the chroma limit is taken over (0: each pixel's own L)."""
    radii = (0, 1, 2, 3, 4)
    print("| group | image | radius | edge a*b* | colour speckle | mean chroma shown |")
    print("|---|---|---|---|---|---|")
    for group, name, path, _ in images(n_texas):
        for radius in radii:
            m = measure(bundle, path, {"chroma_envelope": radius})
            print(
                f"| {group} | {name} | {radius} | {m['edge_ab']:.3f} | {m['speckle_ab']:.2f} "
                f"| {m['chroma']:.1f} |",
                flush=True,
            )


def quicklook(bundle, folder: Path) -> None:
    """SAR | before | after PNGs: the Camargue quick-start sample (x2) and a Texas crop."""
    import cv2

    from sar_colorizer.inference import colorize_array
    from sar_colorizer.io.pixel_size import pixel_size_metres
    from sar_colorizer.io.raster import read_info, read_raster

    sample = (
        SAMPLES / "spatialist-s1-vv-db" / "S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db.tif"
    )
    for name, path, crop, zoom in [
        ("visual_camargue.png", sample, (slice(8, 208), slice(10, 258)), 2),
        ("visual_texas.png", TEXAS / "sar" / "247.png", (slice(384, 640), slice(384, 640)), 1),
    ]:
        if not path.exists():
            continue
        info = read_info(path)
        values, valid = read_raster(path, bands=1)
        size = pixel_size_metres(info.crs, info.transform, info.width, info.height)
        before = colorize_array(bundle, values, valid, **BEFORE)
        after = colorize_array(bundle, values, valid, **{**AFTER, "pixel_size": size})
        feature = before["feature"]  # the network's input, plainly stretched
        grey = np.clip(feature * 255 + 0.5, 0, 255).astype(np.uint8)
        panels = [np.dstack([grey] * 3), before["rgb"], after["rgb"]]
        panels = [
            cv2.resize(p[crop], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
            for p in panels
        ]
        gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
        image = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
        out = folder / name
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(out), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def texas_ab_rmse(bundle, options: dict) -> float:
    """Mean AB RMSE of the model over the Texas test split, as ``sarcolor eval`` scores it."""
    import tempfile

    from sar_colorizer.data.layouts import find_pairs
    from sar_colorizer.evaluation import evaluate, select_pairs

    pairs = select_pairs(find_pairs(TEXAS), split="test")
    with tempfile.TemporaryDirectory() as report_dir:
        report = evaluate(bundle, pairs, report_dir=report_dir, progress=False, grid_count=0,
                          **options)
    return float(report["model"]["ab_rmse"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--texas", type=int, default=3, help="Texas test fragments (default 3)")
    parser.add_argument("--eval", action="store_true", help="also Texas AB RMSE (slow)")
    parser.add_argument("--quicklook", type=Path, help="write a before / after PNG here and stop")
    parser.add_argument("--envelope", action="store_true", help="sweep the chroma envelope radius")
    args = parser.parse_args()

    from sar_colorizer.bundle import load_bundle

    bundle = load_bundle(args.model)
    if args.quicklook:
        quicklook(bundle, args.quicklook)
        return
    if args.envelope:
        envelope_sweep(bundle, args.texas)
        print("\n" + shlex.join(["python", "bench/visual_quality.py", *sys.argv[1:]]))
        return
    rows = []
    print("| group | image | config | edge L | edge a*b* | colour speckle | ENL |")
    print("|---|---|---|---|---|---|---|")
    for group, name, path, _ in images(args.texas):
        for config, options in (("before", BEFORE), ("after", AFTER)):
            m = measure(bundle, path, options)
            rows.append((group, config, m))
            print(
                f"| {group} | {name} | {config} | {m['edge_L']:.3f} | {m['edge_ab']:.3f} "
                f"| {m['speckle_ab']:.2f} | {m['enl']:.1f} |",
                flush=True,
            )
    print("\nMeans per group:\n")
    print("| group | config | edge L | edge a*b* | colour speckle | ENL |")
    print("|---|---|---|---|---|---|")
    for group in dict.fromkeys(g for g, _, _ in rows):
        for config in ("before", "after"):
            ms = [m for g, c, m in rows if g == group and c == config]
            mean = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
            print(
                f"| {group} | {config} | {mean['edge_L']:.3f} | {mean['edge_ab']:.3f} "
                f"| {mean['speckle_ab']:.2f} | {mean['enl']:.1f} |"
            )
    if args.eval and TEXAS.is_dir():
        print("\nTexas test split, model AB RMSE (CIELAB units):\n")
        for config, options in (("before", BEFORE), ("after", AFTER)):
            print(f"- {config}: {texas_ab_rmse(bundle, options):.3f}", flush=True)
    print("\n" + shlex.join(["python", "bench/visual_quality.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
