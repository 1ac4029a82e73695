"""Score a colorization model against the optical truth and the three baselines.

For every image and every method (the model, ``no_colour``, ``mean_colour``,
``linear_regression``) the output is ``LAB(L from the SAR, AB of the method) -> sRGB`` with the
*same* L (the model's tone-mapped SAR lightness), and the reference is ``LAB(same L, AB of the
optical image) -> sRGB``. Only colour differs between methods, so the comparison is fair and a
model that does not beat the baselines has not learned colour.
See ``docs/METRICS.md``, "The reference" and "Baselines", for every definition.

The baselines' parameters come from the bundle (``bundle.json`` ``"baselines"``), fitted on the
training data at training time; they are never refitted on the evaluation images.

Outputs in ``report_dir`` (each written atomically):

* ``report.json``: ``{"n_images": N, "model": {...}, "baselines": {"no_colour": {...},
  "mean_colour": {...}, "linear_regression": {...}}}``; each method holds the mean of every
  metric of :data:`sar_colorizer.metrics.METRIC_NAMES`, plus ``"std"`` and ``"per_image"``;
  the model also holds ``"advantage"`` over each baseline. Non-finite numbers (PSNR of an exact
  match) are written as ``null``. ``"settings"`` records how the images were coloured: the
  tile side the network actually ran on (``tile_size``: the requested or trained tile rounded
  to the model's multiple and shrunk for images smaller than a tile; ``tile_sizes`` lists
  them when images of different sizes used different tiles), the overlap, tone and optical
  convention.
* ``report.json`` per-image rows carry ``"cloud_or_snow"``: the manifest flags the pair's optical
  image as covered by cloud or seasonal snow (:attr:`sar_colorizer.data.pairs.Pair.cloud_or_snow`),
  so it does not show the surface colour. When some scored pair is flagged, ``"clear"`` holds
  the same summary (``"n_images"``, ``"model"``, ``"baselines"``) over the unflagged pairs only,
  and ``"left_out"``, the flagged names. With ``flagged="exclude"`` the flagged pairs are not
  scored at all; ``"left_out"`` then names them at the top level.
* ``report.md``: the table and one line per baseline with the model's advantage; when some pair
  is flagged, a second table over the clear references only; the confidence deciles; one row
  per image (``report.html`` shows the same, with pictures).
* ``grid.png``: a few images, columns SAR | model | best baseline | reference | optical.

The model also holds ``"beats_no_colour"``: on how many images (count, of, fraction) its AB
RMSE is below that of no colour. For a model with a confidence head, ``report.json`` has
``"confidence"``: AB error by decile of the predicted sigma
(:func:`sar_colorizer.confidence.error_by_decile`), plotted in ``confidence_deciles.png``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sar_colorizer.baselines import BASELINE_NAMES, Baselines
from sar_colorizer.data.pairs import FLAGGED_CHOICES, check_pairs, is_flagged
from sar_colorizer.errors import InputError, OutputExistsError
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.io.writer import atomic_path
from sar_colorizer.metrics import (
    image_metrics,
    lab_to_rgb_u8,
    reference_lab,
)
from sar_colorizer.progress import progress_bar
from sar_colorizer.report import (
    MODEL_KEY,
    REPORT_JSON,
    ImageOutputs,
    best_baseline,
    build_report,
    write_report,
)

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.data.pairs import Pair

logger = logging.getLogger(__name__)

GRID_PNG = "grid.png"
CONFIDENCE_PNG = "confidence_deciles.png"
#: Largest side of an image thumbnail in the grid, in pixels.
GRID_THUMBNAIL = 256

# --------------------------------------------------------------------------------------------
# selecting pairs


def select_pairs(
    pairs: Sequence[Pair],
    split: str | None = None,
    limit: int | None = None,
    flagged: str = "include",
) -> list[Pair]:
    """Keep the pairs of one split (e.g. ``"test"`` rows of a manifest), then the first ``limit``,
    then, with ``flagged="exclude"``, those whose optical reference is not flagged.

    Args:
        pairs: The pairs.
        split: keep only pairs whose ``split`` equals this; None keeps all.
        limit: keep at most this many (after the split filter); None keeps all.
        flagged: ``"include"`` keeps pairs flagged ``cloud_or_snow``; ``"exclude"`` drops them
            (after ``limit``, so that the pairs left are those an ``"include"`` run scores in
            its clear summary).

    Returns:
        The selected pairs, in their given order.

    Raises:
        ValueError: ``flagged`` is not one of :data:`FLAGGED_CHOICES`.
        InputError: no pair is left, or ``limit`` is not positive.
    """
    if flagged not in FLAGGED_CHOICES:
        raise ValueError(f"flagged must be one of {', '.join(FLAGGED_CHOICES)}, not {flagged!r}")
    selected = list(pairs)
    if split is not None:
        available = sorted({str(pair.split) for pair in selected if pair.split})
        selected = [pair for pair in selected if pair.split == split]
        if not selected:
            where = f"splits present: {', '.join(available)}" if available else "no split column"
            raise InputError(
                f"no pairs with split {split!r} ({where}); drop --split or give a manifest "
                "with a split column"
            )
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be a positive number of images, got {limit}")
        selected = selected[:limit]
    if not selected:
        raise InputError("no image pairs to evaluate; check INPUT")
    if flagged == "exclude":
        clear = [pair for pair in selected if not is_flagged(pair)]
        if not clear:
            raise InputError(
                f"all {len(selected)} selected pair(s) are flagged cloud_or_snow; "
                "use --flagged include to score them"
            )
        selected = clear
    return selected


# --------------------------------------------------------------------------------------------
# one image


def optical_to_lab(optical_rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (H, W, 3) -> CIELAB (D65), float64 (scikit-image's ``rgb2lab``)."""
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(np.asarray(optical_rgb, dtype=np.float64), 0.0, 1.0))


def score_methods(
    lightness: np.ndarray,
    method_ab: dict[str, np.ndarray],
    optical_lab: np.ndarray,
    valid: np.ndarray | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], np.ndarray]:
    """Score several colourings of one image against the same reference.

    Args:
        lightness: (H, W) L* of the output, shared by all methods.
        method_ab: ``{method: (H, W, 2) a*, b*}`` in CIELAB units.
        optical_lab: (H, W, 3) LAB of the optical image (its AB is the reference colour).
        valid: optional (H, W) mask of pixels to score.

    Returns:
        ``(metrics, rgb, reference_rgb)``: ``{method: {metric: value}}``, ``{method: uint8 RGB}``
        and the uint8 reference RGB.
    """
    lightness = np.nan_to_num(np.asarray(lightness, dtype=np.float64))
    ref_lab = reference_lab(lightness, optical_lab[..., 1:])
    ref_rgb = lab_to_rgb_u8(ref_lab)
    scores: dict[str, dict[str, float]] = {}
    rgbs: dict[str, np.ndarray] = {}
    for method, ab in method_ab.items():
        # NaN colour can only sit at nodata pixels (left out of every metric); zero it so the
        # RGB conversion stays quiet.
        pred_lab = reference_lab(lightness, np.nan_to_num(np.asarray(ab, dtype=np.float64)))
        rgbs[method] = lab_to_rgb_u8(pred_lab)
        scores[method] = image_metrics(rgbs[method], ref_rgb, pred_lab, ref_lab, optical_lab, valid)
    return scores, rgbs, ref_rgb


def _thumbnail_step(shape: tuple[int, ...]) -> int:
    return max(1, int(np.ceil(max(shape[:2]) / GRID_THUMBNAIL)))


def evaluate_pair(
    bundle: Bundle,
    baselines: Baselines,
    pair: Pair,
    options: ColourOptions | None = None,
    *,
    keep_thumbnails: bool = False,
    optical_convention: str | None = None,
    optical_offset: float | None = None,
    **settings: Any,
) -> ImageOutputs:
    """Colorize one pair with the model and every baseline and score them.

    The model's colours are those ``predict`` writes: the same options and defaults
    (:class:`~sar_colorizer.inference.options.ColourOptions`), the pixel size of the SAR's
    georeference (the network sees tiles resampled to its training pixel size, as in
    ``predict``), and a*, b* after the chroma limit.

    Args:
        bundle: loaded :class:`sar_colorizer.bundle.Bundle`.
        baselines: the bundle's fitted baselines.
        pair: a :class:`sar_colorizer.data.pairs.Pair`.
        options: how the SAR is coloured (``predict``'s defaults); the tone is shared by every
            method and the reference.
        keep_thumbnails: keep small images of every column for the grid.
        optical_convention: how the optical image is rendered for the reference (``"dos"`` or
            ``"as-is"``); None: the convention the model was trained in (its bundle's).
        optical_offset: added to integer reflectance before dividing by 10000 (-1000 for
            Level-2A from processing baseline 04.00); None: from the file's metadata, else 0.
        settings: options by name, over ``options`` (``tone``, ``tile_size``, ``bands``, ...).

    Returns:
        The :class:`ImageOutputs`.

    Raises:
        InputError: the pair cannot be read or has no valid pixels.
    """
    from sar_colorizer.data.pairs import read_pair
    from sar_colorizer.inference import colorize_array

    options = ColourOptions.of(options, **settings)
    arrays = read_pair(
        pair,
        bands=options.bands if options.bands is not None else model_bands_for(bundle, pair.sar),
        input_scale=options.input_scale,
        band_names=options.band_names,
        optical_convention=optical_convention or bundle.optical_convention,
        optical_offset=optical_offset,
    )
    # read_pair resolves "auto" from the file's own dtype (integer files are display images);
    # the pixel size comes from the SAR's georeference, as in predict.
    options = ColourOptions.of(
        options, input_scale=getattr(arrays, "input_scale", None) or options.input_scale,
        pixel_size=options.pixel_size or _pixel_size(arrays.profile),
    )
    result = colorize_array(bundle, arrays.sar, arrays.valid, options,
                            band_names=arrays.band_names or None)
    valid = np.asarray(arrays.valid, dtype=bool) & np.asarray(result["valid"], dtype=bool)
    if not valid.any():
        raise InputError(f"pair {pair.name}: no pixel is valid in both images; check the pair")
    lab = np.asarray(result["lab"], dtype=np.float64)
    # The model's own input on the dB feature scale: the baselines see what the model sees.
    feature = np.where(valid, np.asarray(result["feature"], dtype=np.float32), np.nan)
    method_ab = {MODEL_KEY: np.asarray(result["ab_shown"], dtype=np.float64)}
    for name in BASELINE_NAMES:
        method_ab[name] = baselines.predict_ab(name, np.nan_to_num(feature))
    optical_lab = optical_to_lab(arrays.optical_rgb)
    scores, rgbs, ref_rgb = score_methods(lab[..., 0], method_ab, optical_lab, valid)
    confidence = None
    if "sigma" in result:
        import zlib

        from sar_colorizer.confidence import sample_errors

        confidence = sample_errors(result["sigma"], lab[..., 1:], result["ab_mean"],
                                   optical_lab[..., 1:], valid,
                                   seed=zlib.crc32(str(pair.name).encode()))
    thumbnails: dict[str, np.ndarray] = {}
    if keep_thumbnails:
        thumbnails = _thumbnails(rgbs, ref_rgb, feature, valid, arrays.optical_rgb)
    logger.debug("%s: model AB RMSE %.2f, PSNR %.2f dB", pair.name,
                 scores[MODEL_KEY]["ab_rmse"], scores[MODEL_KEY]["psnr"])
    return ImageOutputs(name=pair.name, metrics=scores, thumbnails=thumbnails,
                        confidence=confidence, tile_size=_tile_used(bundle, options, valid.shape),
                        cloud_or_snow=is_flagged(pair))


def _pixel_size(profile: dict[str, Any]) -> float | None:
    """Ground pixel size of a pair's SAR from the profile it was read with (its georeference);
    None without one."""
    from sar_colorizer.io.pixel_size import pixel_size_metres

    return pixel_size_metres(profile.get("crs"), profile["transform"], profile["width"],
                             profile["height"])


def _tile_used(bundle: Bundle, options: ColourOptions, shape: tuple[int, ...]) -> int:
    """The tile side the network ran on: the requested one, rounded to the model's multiple,
    resampled to the training pixel size and shrunk to fit a small image."""
    from sar_colorizer.inference.tiles import tile_settings, tiling_plan
    from sar_colorizer.io.pixel_size import resample_factor

    tile, overlap = tile_settings(bundle, options.tile_size, options.overlap)
    factor = resample_factor(options.pixel_size, bundle.pixel_size)
    return tiling_plan(bundle.tile_multiple, shape[0], shape[1], tile, overlap, factor)[0]


def _thumbnails(
    rgbs: dict[str, np.ndarray],
    ref_rgb: np.ndarray,
    feature: np.ndarray,
    valid: np.ndarray,
    optical_rgb: np.ndarray,
) -> dict[str, np.ndarray]:
    """Small images of every column of the grid."""
    step = _thumbnail_step(valid.shape)
    thumbnails = {method: rgb[::step, ::step].copy() for method, rgb in rgbs.items()}
    thumbnails["sar"] = _display_stretch(feature, valid)[::step, ::step]
    thumbnails["reference"] = ref_rgb[::step, ::step].copy()
    optical_u8 = np.round(np.clip(optical_rgb, 0, 1) * 255).astype(np.uint8)
    thumbnails["optical"] = optical_u8[::step, ::step].copy()
    return thumbnails


def write_grid(
    images: Sequence[ImageOutputs], path: str | os.PathLike[str], baseline: str
) -> Path | None:
    """Save a PNG grid: one row per image, columns SAR | model | baseline | reference | optical.

    Args:
        images: outputs holding thumbnails (others are skipped).
        path: PNG path (written atomically).
        baseline: which baseline's output to show.

    Returns:
        The path, or None when no image carries thumbnails.
    """
    rows = [image for image in images if image.thumbnails]
    if not rows:
        return None
    from matplotlib.figure import Figure  # Agg canvas; no pyplot, no global state

    columns: list[tuple[str, str]] = [
        ("sar", "SAR (dB)"),
        (MODEL_KEY, "model"),
        (baseline, baseline.replace("_", " ")),
        ("reference", "reference (SAR L, optical colour)"),
        ("optical", "optical"),
    ]
    figure = Figure(figsize=(2.6 * len(columns), 2.6 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    for row, image in enumerate(rows):
        for column, (key, title) in enumerate(columns):
            axis = axes[row, column]
            picture = image.thumbnails[key]
            if picture.ndim == 2:
                axis.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            else:
                axis.imshow(picture, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
            if column == 0:
                axis.set_ylabel(grid_label(image.name), fontsize=8)
    destination = Path(path)
    with atomic_path(destination, overwrite=True) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure.savefig(temporary, format="png", dpi=100)
    return destination


def grid_label(name: str, width: int = 26) -> str:
    """A grid row label that fits beside a thumbnail: at most two lines of ``width``
    characters, shortened with an ellipsis in the middle beyond that."""
    from sar_colorizer.report_html import shorten

    if len(name) <= width:
        return name
    if len(name) <= 2 * width:
        return f"{name[:width]}\n{name[width:]}"
    short = shorten(name, 2 * width)
    return f"{short[:width]}\n{short[width:]}"


def _grid_indices(n_images: int, grid_count: int) -> set[int]:
    if grid_count <= 0 or n_images == 0:
        return set()
    count = min(grid_count, n_images)
    return {int(index) for index in np.round(np.linspace(0, n_images - 1, count))}


def bundle_baselines(bundle: Bundle) -> Baselines:
    """The baselines stored in the bundle's metadata.

    Raises:
        InputError: the bundle has no ``"baselines"`` entry.
    """
    metadata = bundle.metadata
    if "baselines" not in metadata:
        where = bundle.path or "the bundle"
        raise InputError(
            f"{where}: bundle.json has no 'baselines' entry; retrain with 'sarcolor train' "
            "(it stores the baselines fitted on the training data)"
        )
    return Baselines.from_dict(metadata["baselines"])


def model_bands_for(bundle: Bundle, sar_path: str | Path) -> list[str] | None:
    """The model's bands, by name, when a SAR file has more bands than the model takes and
    names them (a VV + VH file for a VH model); None (every band) otherwise, and for a model
    of optional bands (which uses those of the file's bands it takes)."""
    from sar_colorizer.data.bandfiles import stack_info
    from sar_colorizer.errors import SarColorError
    from sar_colorizer.io.bands import resolve_bands

    names = bundle.bands
    if bundle.optional_bands:
        return None  # every band; the model takes those of its polarisations
    try:
        info = stack_info(sar_path, "sar")
        if len(info.data_bands) <= bundle.input_channels:
            return None
        resolve_bands(info, names)
    except SarColorError:
        return None
    return names


def evaluate(
    bundle: Bundle,
    pairs: Sequence[Any],
    options: ColourOptions | None = None,
    *,
    report_dir: str | os.PathLike[str],
    grid_count: int = 4,
    progress: bool = True,
    split: str | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    on_image: Callable[[ImageOutputs], None] | None = None,
    optical_convention: str | None = None,
    optical_offset: float | None = None,
    html: bool = True,
    flagged: str = "include",
    **settings: Any,
) -> dict[str, Any]:
    """Evaluate a model and the three baselines on the same image pairs and write a report.

    Args:
        bundle: loaded :class:`sar_colorizer.bundle.Bundle` (its metadata holds the baselines).
        pairs: :class:`sar_colorizer.data.pairs.Pair` objects (from ``find_pairs``).
        options: how the SAR is coloured (:class:`~sar_colorizer.inference.options.
            ColourOptions`, ``predict``'s defaults, so that ``sarcolor eval`` and
            :func:`sar_colorizer.evaluate` score what ``predict`` writes).
        report_dir: folder for ``report.json``, ``report.md`` and ``grid.png`` (created).
        grid_count: number of images (rows) in ``grid.png``, spread over the list; 0: no grid.
        progress: show progress over images on stderr (a bar on a terminal, a line now and
            then elsewhere).
        split: evaluate only pairs of this split (e.g. ``"test"``).
        limit: evaluate at most this many pairs.
        overwrite: replace an existing ``report.json``.
        on_image: called with each image's outputs as it is scored (for callers that log).
        optical_convention: how optical images are rendered for the references (``"dos"`` or
            ``"as-is"``); None: the convention the model was trained in (its bundle's).
        optical_offset: see :func:`evaluate_pair`.
        html: also write ``report.html`` (:mod:`sar_colorizer.report_html`), which shows every
            image.
        flagged: pairs whose optical reference is flagged ``cloud_or_snow``: ``"include"``
            scores them with the rest and adds ``"clear"``, the scores without them;
            ``"exclude"`` leaves them out (named in ``"left_out"``).
        settings: options by name, over ``options`` (``tone``, ``tile_size``, ``bands``,
            ``input_scale``, ``shrink``, ...).

    Returns:
        The report (the content of ``report.json``).

    Raises:
        OutputExistsError: ``report.json`` exists and ``overwrite`` is False.
        InputError: no pairs are selected, the bundle has no baselines, or a pair is unusable.
        ValueError: ``flagged`` is not one of :data:`FLAGGED_CHOICES`.
    """
    folder = Path(report_dir)
    if (folder / REPORT_JSON).exists() and not overwrite:
        raise OutputExistsError(f"{folder / REPORT_JSON} exists; pass --overwrite to replace it")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: the report path exists and is not a folder; give a folder")
    options = ColourOptions.of(options, **settings)
    baselines = bundle_baselines(bundle)
    convention = optical_convention or bundle.optical_convention
    chosen = select_pairs(pairs, split=split, limit=limit)
    selected = select_pairs(chosen, flagged=flagged)
    check_pairs(selected)  # every header, before the first image is scored
    in_grid = _grid_indices(len(selected), grid_count)

    from sar_colorizer.report_html import REPORT_HTML, HtmlCollector

    page = HtmlCollector() if html else None
    images: list[ImageOutputs] = []
    for index, pair in enumerate(
        progress_bar(selected, desc="evaluate", unit="images", enabled=progress)
    ):
        outputs = evaluate_pair(
            bundle, baselines, pair, options,
            keep_thumbnails=index in in_grid or page is not None,
            optical_convention=convention, optical_offset=optical_offset,
        )
        if page is not None:
            page.add(outputs)  # small PNGs; the arrays are kept only for the grid
            if index not in in_grid:
                outputs.thumbnails = {}
        images.append(outputs)
        if on_image is not None:
            on_image(outputs)

    report = build_report(images)
    left_out = [pair.name for pair in chosen if is_flagged(pair)] if flagged == "exclude" else []
    if left_out:
        report["left_out"] = left_out
    report["settings"] = _settings(bundle, options, images, convention, flagged)
    write_report(report, folder)
    if "confidence" in report:
        from sar_colorizer.confidence import plot_error_by_decile

        plot_error_by_decile(report["confidence"], folder / CONFIDENCE_PNG)
    if in_grid:
        write_grid(images, folder / GRID_PNG, best_baseline(report))
    if page is not None:
        from sar_colorizer.report_html import write_html

        write_html(report, page.entries, folder / REPORT_HTML)
    logger.info("wrote %s (%d images)", folder / REPORT_JSON, len(images))
    return report


def _settings(
    bundle: Bundle,
    options: ColourOptions,
    images: Sequence[ImageOutputs],
    convention: str,
    flagged: str,
) -> dict[str, Any]:
    """``report.json``'s ``"settings"``: how the images were coloured."""
    from sar_colorizer.inference import tile_settings

    tile, overlap = tile_settings(bundle, options.tile_size, options.overlap)
    used = sorted({image.tile_size for image in images if image.tile_size is not None})
    settings: dict[str, Any] = {
        # The tile the network ran on (the largest, if images small enough for one smaller
        # tile used that); requested sizes are rounded and shrunk to fit small images.
        "tile_size": used[-1] if used else tile,
        "overlap": overlap,
        "tone": options.tone,
        "optical_convention": convention,
    }
    if len(used) > 1:
        settings["tile_sizes"] = used
    if flagged == "exclude":
        settings["flagged"] = flagged
    if getattr(bundle, "has_confidence", False):
        from sar_colorizer.confidence import resolve_shrink

        shrink_k = resolve_shrink(bundle, options.shrink)
        settings["mute_unsure"] = shrink_k is not None
        settings["shrink_k"] = shrink_k
    return settings


def _display_stretch(feature: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The SAR dB feature stretched between its 2nd and 98th percentiles for display."""
    values = feature[valid & np.isfinite(feature)]
    if values.size == 0:
        return np.zeros(feature.shape, dtype=np.float32)
    low, high = np.percentile(values, [2, 98])
    stretched = (np.nan_to_num(feature) - low) / max(float(high - low), 1e-6)
    return np.where(valid, np.clip(stretched, 0.0, 1.0), 0.0).astype(np.float32)
