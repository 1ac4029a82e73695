"""``sarcolor predict``: colorize SAR rasters with a trained model.

A thin layer over :func:`sar_colorizer.inference.colorize_raster`: it parses options, works out
input and output names (one file, or many with ``--output-dir``), checks outputs before the
model is loaded (so that a refused output costs no TensorFlow start-up), and reports a summary
in batch mode. Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from sar_colorizer.cli.options import (
    bands_option,
    creation_options,
    input_scale_option,
    model_option,
    mute_unsure_option,
    overwrite_option,
    progress_enabled,
    tile_size_option,
    tone_option,
)
from sar_colorizer.errors import InputError, SarColorError

logger = logging.getLogger(__name__)

#: ``--format`` choices -> GDAL driver and the extension used in batch mode.
FORMATS = {
    "png": ("PNG", ".png"),
    "jpeg": ("JPEG", ".jpg"),
    "gtiff": ("GTiff", ".tif"),
    "cog": ("COG", ".tif"),
}
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass
class _Job:
    """One input and where its outputs go (``error`` set when it cannot even start)."""

    input: Path | str  # str: a GDAL virtual path or URL, kept as given
    output: Path
    ab_output: Path | None = None
    quicklook: Path | None = None
    error: str | None = None
    confidence: Path | None = None


def expand_inputs(
    patterns: tuple[str, ...] | list[str],
) -> tuple[list[Path | str], list[str]]:
    """Expand glob patterns (also quoted ones the shell left alone) into input files.

    A path that exists is taken literally even if it contains glob characters. GDAL virtual
    paths and URLs (``/vsis3/...``, ``/vsicurl/https://...``, ``scheme://...``) pass through
    untouched, as strings (a ``Path`` would turn ``https://`` into ``https:/``); glob patterns
    match local files only.

    Returns:
        ``(inputs, unmatched)``: the files in order, without duplicates, and the patterns that
        matched nothing.
    """
    from sar_colorizer.io.raster import is_virtual_path

    inputs: list[Path | str] = []
    unmatched: list[str] = []
    seen: set[Path | str] = set()
    for pattern in patterns:
        matches: list[Path | str]
        if is_virtual_path(pattern):
            matches = [pattern]
        elif _GLOB_CHARACTERS.intersection(pattern) and not Path(pattern).exists():
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
            matches = [p for p in matches if Path(p).is_file()]
            if not matches:
                unmatched.append(pattern)
        else:
            matches = [Path(pattern)]
        for path in matches:
            key = path if isinstance(path, str) else path.resolve()
            if key not in seen:
                seen.add(key)
                inputs.append(path)
    return inputs, unmatched


def _batch_jobs(
    inputs: list[Path | str],
    output_dir: Path,
    suffix: str,
    ab_dir: Path | None,
    quicklook_dir: Path | None,
) -> list[_Job]:
    jobs = []
    claimed: dict[Path, Path | str] = {}
    for path in inputs:
        stem = Path(path).stem
        output = output_dir / f"{stem}{suffix}"
        job = _Job(
            input=path,
            output=output,
            ab_output=ab_dir / f"{stem}_ab.tif" if ab_dir is not None else None,
            quicklook=quicklook_dir / f"{stem}_quicklook.png" if quicklook_dir else None,
        )
        if output.resolve() in claimed:
            job.error = (
                f"{path}: output {output} would also be written for {claimed[output.resolve()]}; "
                "rename one of the inputs or run them separately"
            )
        claimed.setdefault(output.resolve(), path)
        jobs.append(job)
    return jobs


def _precheck(
    job: _Job,
    overwrite: bool,
    driver: str | None = None,
    force: bool = False,
    inputs: Sequence[Path | str] | None = None,
) -> None:
    """Fail fast (before loading the model) on a missing input, an output format that cannot
    be written, an existing output, and an output that is one of the run's inputs."""
    from sar_colorizer.io.raster import driver_for_path, read_info

    read_info(job.input)
    driver_for_path(job.output, driver)
    if job.ab_output is not None:
        driver_for_path(job.ab_output, None)
    if job.confidence is not None:
        driver_for_path(job.confidence, None)
    for path in (job.output, job.ab_output, job.quicklook, job.confidence):
        if path is not None:
            check_replaceable(path, overwrite, force, inputs or [job.input])


def check_replaceable(
    path: Path, overwrite: bool, force: bool, inputs: Sequence[Path | str]
) -> None:
    """Refuse to write ``path`` if it is an input of the run (always), if it exists without
    ``overwrite``, or if it is a raster that sarcolor did not write (SAR data, say) without
    ``force`` as well.

    Raises:
        OutputExistsError: with the message that says what to do.
    """
    from sar_colorizer.errors import OutputExistsError
    from sar_colorizer.io.raster import check_output_path, written_by_sarcolor

    for source in inputs:
        if _same_file(path, source):
            raise OutputExistsError(
                f"{path} is an input of this run; it is never replaced (give another output "
                "name, or use --output-dir DIR for many inputs)"
            )
    if not (path.exists() or path.is_symlink()) or path.is_dir():
        check_output_path(path, overwrite)
        return
    if written_by_sarcolor(path) is not False:  # sarcolor's own output, or no raster at all
        check_output_path(path, overwrite)
        return
    if overwrite and force:
        return
    raise OutputExistsError(
        f"{path} exists and sarcolor did not write it (if a shell pattern expanded to several "
        "inputs, use --output-dir DIR); to replace it anyway pass --overwrite --force"
    )


def _same_file(a: Path, b: Path | str) -> bool:
    if not isinstance(b, Path):  # a GDAL virtual path or URL is never a local output
        return False
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


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
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Most tiles per model call; larger batches run faster per pixel and use more "
    "memory.  [default: about a megapixel per call, 16 tiles of 256 px]",
)
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
    help="Also write the predicted a*, b* (CIELAB) as a float32 2-band GeoTIFF (with "
    "--output-dir: a folder for <stem>_ab.tif files).",
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
    type=click.Choice(["median_guided", "bilateral", "network"]),
    default="median_guided",
    show_default=True,
    help="Edge-preserving despeckling of the SAR that the brightness L is made from; 'network' "
    "uses the model's own speckle filter (blurrier). The network's input never changes.",
)
@click.option(
    "--colour-upsampling",
    type=click.Choice(["guided", "bilinear"]),
    default="guided",
    show_default=True,
    help="How the network's low-resolution colour is brought to full resolution: 'guided' "
    "follows the edges of L, so colour does not bleed across field and pond edges.",
)
@click.option(
    "--chroma-limit/--channel-clip",
    default=True,
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
    "--confidence",
    "confidence_output",
    type=click.Path(),
    default=None,
    help="Also write the per-pixel confidence as a float32 GeoTIFF: the predicted standard "
    "deviation of a*, b* in CIELAB units (small = sure; NaN on nodata). Needs a model with a "
    "confidence head (with --output-dir: a folder for <stem>_confidence.tif files).",
)
@mute_unsure_option
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
def predict(
    ctx: click.Context,
    paths: tuple[str, ...],
    model_path: str,
    output_dir: str | None,
    bands: str | None,
    input_scale: str,
    tone: str,
    tile_size: int | None,
    overlap: int | None,
    batch_size: int | None,
    output_format: str | None,
    cog: bool,
    suffix: str | None,
    ab_output: str | None,
    quicklook: str | None,
    confidence_output: str | None,
    shrink: bool | None,
    overwrite: bool,
    force: bool,
    skip_existing: bool,
    creation_options: dict[str, str],
    workers: int | None,
    scheduler: str | None,
    display_filter: str = "median_guided",
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
    pixel_size: float | None = None,
) -> None:
    """Colorize SAR rasters with the shipped model or --model BUNDLE.

    \b
    One file:    sarcolor predict scene_VH.tif scene_color.png
    Many files:  sarcolor predict 'scenes/*.tif' --output-dir colour/ --format gtiff

    The output keeps the input's georeference (GeoTIFF tags, or an .aux.xml and world file
    beside a PNG/JPEG); nodata pixels are transparent (alpha 0). Scenes of any size are
    processed in overlapping tiles, streamed strip by strip.
    """
    if overwrite and skip_existing:
        raise click.UsageError("--overwrite and --skip-existing exclude each other")
    if force and not overwrite:
        raise click.UsageError("--force only applies with --overwrite")
    if cog:
        if output_format not in (None, "cog"):
            raise click.UsageError(f"--cog contradicts --format {output_format}")
        output_format = "cog"
    driver = FORMATS[output_format][0] if output_format else None
    settings: dict[str, Any] = {
        "driver": driver,
        "bands": bands,
        "input_scale": input_scale,
        "tone": tone,
        "tile_size": tile_size,
        "overlap": overlap,
        "batch_size": batch_size,
        "overwrite": overwrite,
        "creation_options": creation_options,
        "display_filter": display_filter,
        "colour_upsampling": colour_upsampling,
        "chroma_limit": chroma_limit,
        "pixel_size": pixel_size,
        "shrink": shrink,
    }

    if output_dir is None and len(paths) >= 2 and Path(paths[-1]).is_dir():
        output_dir, paths = paths[-1], paths[:-1]  # `predict a.tif b.tif outdir/`, as cp does
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler exclude each other")
    if output_dir is None and (workers is not None or scheduler is not None):
        raise click.UsageError("--workers and --scheduler apply to batch runs (--output-dir)")
    if output_dir is None:
        if len(paths) != 2:
            raise click.UsageError(
                "give one INPUT and an OUTPUT file, or several inputs with --output-dir DIR"
            )
        if suffix is not None:
            raise click.UsageError("--suffix only applies with --output-dir")
        inputs, unmatched = expand_inputs([paths[0]])
        if unmatched:
            raise InputError(f"{paths[0]}: no such file (no file matches the pattern)")
        if len(inputs) != 1:
            raise click.UsageError(
                f"{paths[0]} matches {len(inputs)} files; use --output-dir DIR for many inputs"
            )
        job = _Job(
            input=inputs[0],
            output=Path(paths[1]),
            ab_output=Path(ab_output) if ab_output else None,
            quicklook=Path(quicklook) if quicklook else None,
            confidence=Path(confidence_output) if confidence_output else None,
        )
        if skip_existing and job.output.exists():
            click.echo(f"{job.output} exists; skipped")
            return
        _precheck(job, overwrite, driver, force)
        _run(ctx, _load_bundle(model_path), job, **settings)
        return

    inputs, unmatched = expand_inputs(list(paths))
    extension = FORMATS[output_format or "png"][1]
    jobs = _batch_jobs(
        inputs,
        Path(output_dir),
        suffix if suffix is not None else extension,
        Path(ab_output) if ab_output else None,
        Path(quicklook) if quicklook else None,
    )
    if confidence_output:
        for job in jobs:
            job.confidence = Path(confidence_output) / f"{Path(job.input).stem}_confidence.tif"
    failed = len(unmatched)
    for pattern in unmatched:
        logger.error("%s: no such file (no file matches the pattern)", pattern)
    runnable = []
    skipped = 0
    for job in jobs:
        if job.error is not None:
            logger.error("%s", job.error)
            failed += 1
        elif skip_existing and job.output.exists():
            logger.info("%s exists; skipped", job.output)
            skipped += 1
        else:
            runnable.append(job)
    if workers is not None or scheduler is not None:
        from sar_colorizer.cli.distributed import run_on_cluster

        done, failures = run_on_cluster(
            runnable, model_path, settings, workers, scheduler, progress_enabled(ctx)
        )
        failed += failures
        click.echo(f"{done} done, {skipped} skipped, {failed} failed")
        if failed:
            ctx.exit(1)
        return
    done = 0
    # The model loads once, and only when there is work; a model that does not load stops
    # the whole run (it would fail every file).
    bundle = _load_bundle(model_path) if runnable else None
    for index, job in enumerate(runnable):
        try:
            _precheck(job, overwrite, driver, force, inputs)
            _run(ctx, bundle, job, **settings)
            done += 1
        except SarColorError as error:
            message = str(error)
            logger.error("%s", message if str(job.input) in message else f"{job.input}: {message}")
            failed += 1
        except Exception as error:  # one broken file must not stop the batch
            logger.error("%s: failed (%s: %s)", job.input, type(error).__name__, error)
            logger.debug("traceback", exc_info=True)
            failed += 1
        except KeyboardInterrupt:  # also Interrupted (SIGTERM, SIGHUP): report what was done
            left = len(runnable) - index
            click.echo(f"{done} done, {skipped} skipped, {failed} failed, {left} not done "
                       "(interrupted)")
            raise
    click.echo(f"{done} done, {skipped} skipped, {failed} failed")
    if failed:
        ctx.exit(1)


def _load_bundle(model_path: str) -> Any:
    from sar_colorizer.bundle import load_bundle

    return load_bundle(model_path)


def _run(
    ctx: click.Context,
    bundle: Any,
    job: _Job,
    driver: str | None,
    bands: str | None,
    input_scale: str,
    tone: str,
    tile_size: int | None,
    overlap: int | None,
    batch_size: int | None,
    overwrite: bool,
    creation_options: dict[str, str],
    display_filter: str = "median_guided",
    colour_upsampling: str = "guided",
    chroma_limit: bool = True,
    pixel_size: float | None = None,
    shrink: bool | None = None,
) -> None:
    from sar_colorizer.inference import colorize_raster

    colorize_raster(
        bundle,
        job.input,
        job.output,
        bands=bands,
        input_scale=input_scale,
        tone=tone,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        driver=driver,
        ab_path=job.ab_output,
        quicklook_path=job.quicklook,
        overwrite=overwrite,
        progress=progress_enabled(ctx),
        creation_options=creation_options or None,
        display_filter=display_filter,
        colour_upsampling=colour_upsampling,
        chroma_limit=chroma_limit,
        pixel_size=pixel_size,
        confidence_path=job.confidence,
        shrink=shrink,
    )
