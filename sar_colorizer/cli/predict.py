"""``sarcolor predict``: colorize SAR rasters with a trained model.

A thin layer over :mod:`sar_colorizer.batch` and :func:`sar_colorizer.inference.colorize_raster`:
it parses options, names the output of one input or plans many with ``--output-dir``, checks
outputs before the model is loaded (so that a refused output costs no TensorFlow start-up), and
prints the batch summary. Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import click

from sar_colorizer.batch import (
    FORMATS,
    Job,
    PredictOptions,
    colour_batch,
    colour_scene,
    expand_inputs,
    plan_inputs,
)
from sar_colorizer.cli.options import (
    band_names_option,
    bands_option,
    creation_options,
    input_scale_option,
    model_option,
    mute_unsure_option,
    overwrite_option,
    product_options,
    progress_enabled,
    resolve_tiles_per_call,
    tile_size_option,
    tiles_per_call_option,
    tone_option,
)
from sar_colorizer.color.upsampling import UPSAMPLINGS
from sar_colorizer.errors import InputError
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.inference.reference import SceneReference
from sar_colorizer.sar.display import DISPLAY_FILTERS


@click.command("predict")
@click.argument("paths", nargs=-1, required=True, metavar="INPUT... OUTPUT", type=click.Path())
@model_option
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Colorize every INPUT (paths or glob patterns) into this folder, named after the "
    "input (stem + --suffix).",
)
@bands_option
@band_names_option
@input_scale_option
@tone_option
@tile_size_option
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=None,
    help="Overlap of neighbouring tiles, blended with raised-cosine weights.  [default: an "
    "eighth of the tile, at most 64]",
)
@tiles_per_call_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help="Output format; default from OUTPUT's extension (.png, .jpg/.jpeg, .tif/.tiff), or "
    "png with --output-dir.",
)
@click.option("--cog", is_flag=True, help="Write a Cloud-Optimised GeoTIFF (same as --format cog).")
@click.option(
    "--suffix",
    default=None,
    help="With --output-dir: output name = input stem + SUFFIX (default: the format's "
    "extension, e.g. '.png'; e.g. '_color.tif').",
)
@click.option(
    "--ab-output",
    type=click.Path(),
    default=None,
    help="Also write the predicted a*, b* (CIELAB) as a float32 2-band GeoTIFF, bands "
    "described a_cielab and b_cielab (with --output-dir: a folder for <stem>_ab.tif files).",
)
@click.option(
    "--quicklook",
    type=click.Path(),
    default=None,
    help="Also write a side-by-side PNG preview, SAR | colorised, at most 2048 px wide (with "
    "--output-dir: a folder for <stem>_quicklook.png files).",
)
@click.option(
    "--display-filter",
    type=click.Choice(DISPLAY_FILTERS),
    default=ColourOptions.display_filter,
    show_default=True,
    help="Edge-preserving despeckling of the SAR that the brightness L is made from; 'network' "
    "uses the model's own speckle filter (blurrier). The network's input never changes.",
)
@click.option(
    "--colour-upsampling",
    type=click.Choice(UPSAMPLINGS),
    default=ColourOptions.colour_upsampling,
    show_default=True,
    help="How the network's low-resolution colour is brought to full resolution: 'guided' "
    "follows the edges of L, so colour does not bleed across field and pond edges.",
)
@click.option(
    "--chroma-limit/--channel-clip",
    default=ColourOptions.chroma_limit,
    show_default=True,
    help="Reduce chroma (keeping hue) where sRGB cannot show a colour at its brightness, "
    "instead of clipping RGB channels (which turns dark or bright pixels teal or red).",
)
@click.option(
    "--pixel-size",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Ground pixel size of the input in metres, for images without georeference; the "
    "network sees the input resampled to its training pixel size (10 m for the shipped "
    "model).  [default: from the georeference, else the training pixel size]",
)
@click.option(
    "--reference",
    metavar="VALUE",
    default=None,
    help="Fix the scene reference, the linear power (sigma0/gamma0 as power, not amplitude) "
    "that becomes full brightness: a number (0.32) or a dB value (-5dB), one for every band "
    "or one per band (-5dB,-12dB); every scene of the run uses it, so mosaics and time "
    "series share one scale. Calibrated inputs only.  [default: each image's own 99th "
    "percentile of linear power]",
)
@click.option(
    "--reference-from",
    metavar="RASTER",
    type=click.Path(),
    default=None,
    help="Take the scene reference and L's tone quantiles from RASTER, as predict computes "
    "them for it (e.g. the whole scene a crop is cut from, or the first date of a time "
    "series); every scene of the run uses them. Calibrated inputs only.",
)
@click.option(
    "--confidence",
    "confidence_output",
    type=click.Path(),
    default=None,
    help="Also write the per-pixel confidence as a float32 GeoTIFF: the predicted standard "
    "deviation of a*, b* in CIELAB units (small = sure; NaN on nodata). Needs a model with a "
    "confidence head (with --output-dir: a folder for <stem>_confidence.tif files).",
)
@mute_unsure_option
@product_options
@overwrite_option
@click.option(
    "--force",
    is_flag=True,
    help="With --overwrite, also replace existing files that sarcolor did not write (never "
    "the run's own inputs).",
)
@click.option(
    "--skip-existing", is_flag=True, help="Skip inputs whose output already exists (batch runs)."
)
@creation_options
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="With --output-dir: colour the scenes on a local Dask cluster of this many worker "
    "processes (needs the dask extra).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="With --output-dir: send one task per scene to a running Dask scheduler, e.g. "
    "tcp://host:8786 (needs the dask extra; workers must be able to read the inputs).",
)
@click.pass_context
def predict(ctx: click.Context, paths: tuple[str, ...], **flags: Any) -> None:
    """Colorize SAR rasters with the shipped model or --model BUNDLE.

    \b
    One file:    sarcolor predict scene_VH.tif scene_color.png
    Many files:  sarcolor predict 'scenes/*.tif' --output-dir colour/ --format gtiff
    A product:   sarcolor predict S1A_IW_GRDH_1SDV_....zip colour.tif   (or its .SAFE folder)

    The output keeps the input's georeference (GeoTIFF tags, or an .aux.xml and world file
    beside a PNG/JPEG); nodata pixels are transparent (alpha 0). Scenes of any size are
    processed in overlapping tiles, streamed strip by strip.
    """
    output_format = _check_flags(flags)
    if flags["reference_from"] is not None:
        if flags["reference"] is not None:
            raise click.UsageError("--reference and --reference-from exclude each other")
        flags["reference"] = SceneReference.from_raster(flags["reference_from"])
    options = PredictOptions(
        driver=FORMATS[output_format][0] if output_format else None,
        overwrite=flags["overwrite"],
        creation_options=flags["creation_options"],
        tiles_per_call=resolve_tiles_per_call(flags["tiles_per_call"],
                                              flags["deprecated_batch_size"]),
        calibration=flags["calibration"],
        noise_removal=flags["noise_removal"],
        **{name: flags[name] for name in ColourOptions.names()
           if name in flags and name != "tiles_per_call"},
    )
    output_dir = flags["output_dir"]
    if output_dir is None and len(paths) >= 2 and Path(paths[-1]).is_dir():
        output_dir, paths = paths[-1], paths[:-1]  # `predict a.tif b.tif outdir/`, as cp does
    if flags["workers"] is not None and flags["scheduler"] is not None:
        raise click.UsageError("--workers and --scheduler exclude each other")
    if output_dir is None and (flags["workers"] is not None or flags["scheduler"] is not None):
        raise click.UsageError("--workers and --scheduler apply to batch runs (--output-dir)")
    if output_dir is None:
        _predict_one(ctx, paths, options, flags)
    else:
        _predict_many(ctx, paths, output_dir, options, output_format, flags)


def _check_flags(flags: dict[str, Any]) -> str | None:
    """Refuse flags that contradict each other; returns the output format (``--cog`` is
    ``--format cog``)."""
    if flags["overwrite"] and flags["skip_existing"]:
        raise click.UsageError("--overwrite and --skip-existing exclude each other")
    if flags["force"] and not flags["overwrite"]:
        raise click.UsageError("--force only applies with --overwrite")
    output_format = flags["output_format"]
    if flags["cog"]:
        if output_format not in (None, "cog"):
            raise click.UsageError(f"--cog contradicts --format {output_format}")
        output_format = "cog"
    return output_format


def _predict_one(
    ctx: click.Context, paths: tuple[str, ...], options: PredictOptions, flags: dict[str, Any]
) -> None:
    """``predict INPUT OUTPUT``: one input, its outputs named on the command line."""
    if len(paths) != 2:
        raise click.UsageError(
            "give one INPUT and an OUTPUT file, or several inputs with --output-dir DIR"
        )
    if flags["suffix"] is not None:
        raise click.UsageError("--suffix only applies with --output-dir")
    inputs, unmatched = expand_inputs([paths[0]])
    if unmatched:
        raise InputError(f"{paths[0]}: no such file (no file matches the pattern)")
    if len(inputs) != 1:
        raise click.UsageError(
            f"{paths[0]} matches {len(inputs)} files; use --output-dir DIR for many inputs"
        )
    def optional_path(flag: str) -> Path | None:
        return Path(flags[flag]) if flags[flag] else None

    job = Job(input=inputs[0], output=Path(paths[1]), ab_output=optional_path("ab_output"),
              quicklook=optional_path("quicklook"), confidence=optional_path("confidence_output"))
    if flags["skip_existing"] and job.output.exists():
        click.echo(f"{job.output} exists; skipped")
        return
    # The batch's task: the same checks (before the model loads), then the colouring.
    colour_scene(flags["model_path"], job, options, flags["force"], progress=progress_enabled(ctx))


def _predict_many(
    ctx: click.Context,
    paths: tuple[str, ...],
    output_dir: str,
    options: PredictOptions,
    output_format: str | None,
    flags: dict[str, Any],
) -> None:
    """``predict INPUT... --output-dir DIR``: a batch, on this machine or a Dask cluster."""
    suffix = flags["suffix"]
    inputs, unmatched = expand_inputs(list(paths))  # once: the files checked are those run
    if not inputs:  # nothing to do: a bad input, not a batch that failed
        raise InputError(f"{', '.join(paths)}: no file matches (nothing was done); check the "
                         "path, or quote a pattern the shell should leave to sarcolor")
    plan = plan_inputs(
        inputs,
        unmatched,
        output_dir,
        suffix=suffix if suffix is not None else FORMATS[output_format or "png"][1],
        ab_dir=flags["ab_output"],
        quicklook_dir=flags["quicklook"],
        confidence_dir=flags["confidence_output"],
        skip_existing=flags["skip_existing"],
    )
    try:
        with _executor(flags["workers"], flags["scheduler"], bool(plan.jobs)) as executor:
            summary = colour_batch(plan, flags["model_path"], options, force=flags["force"],
                                   progress=progress_enabled(ctx), executor=executor)
    except KeyboardInterrupt:  # also Interrupted (SIGTERM, SIGHUP): report what was done
        click.echo(plan.summary.line())
        raise
    click.echo(summary.line())
    if summary.failed:
        ctx.exit(1)


def _executor(
    workers: int | None, scheduler: str | None, work: bool
) -> contextlib.AbstractContextManager[Executor | None]:
    """Where a batch's scenes run: a Dask cluster with ``--workers`` or ``--scheduler`` (started
    only when there is ``work``), else here, one after the other."""
    if not work or (workers is None and scheduler is None):
        return contextlib.nullcontext()
    from sar_colorizer.cluster import cluster_executor

    return cluster_executor(workers, scheduler)
