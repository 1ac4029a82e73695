"""Colour many SAR rasters in one run: inputs to outputs, what is skipped or refused, counts.

``sarcolor predict`` is a thin layer over this module; notebooks and scripts use it the same
way. A run has two steps:

1. :func:`plan_batch` expands the inputs (paths, glob patterns, GDAL virtual paths), names an
   output for each in one folder, and sorts them before any model is loaded: patterns that
   match nothing and two inputs that would write the same output count as failures, inputs
   whose output exists are skipped with ``skip_existing``.
2. :func:`colour_batch` loads the model once (only if there is work) and colours the planned
   jobs one by one, or on a Dask cluster (:mod:`sar_colorizer.cluster`). Each job is checked
   first (:func:`check_job`: readable input, writable format, outputs that may be replaced); a
   job that fails is logged in one line and the others go on.

The :class:`BatchSummary` holds the counts (``"3 done, 1 skipped, 0 failed"``) and is kept up
to date while the run goes, so that an interrupted run can still report what it did.

Example:
    >>> from sar_colorizer.batch import PredictOptions, colour_batch, plan_batch
    >>> plan = plan_batch(["scenes/*.tif"], "coloured/", suffix=".tif")  # doctest: +SKIP
    >>> summary = colour_batch(plan, "default", PredictOptions(driver="GTiff"))  # doctest: +SKIP
    >>> print(summary.line())  # doctest: +SKIP
    3 done, 0 skipped, 0 failed

Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.errors import OutputExistsError, SarColorError

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle
    from sar_colorizer.inference import PredictSummary

logger = logging.getLogger(__name__)

#: Output format name -> (GDAL driver, file extension used when outputs are named by input).
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", ".png"),
    "jpeg": ("JPEG", ".jpg"),
    "gtiff": ("GTiff", ".tif"),
    "cog": ("COG", ".tif"),
}
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass
class Job:
    """One input and where its outputs go.

    Attributes:
        input: SAR raster (a ``str`` for a GDAL virtual path or URL, kept as given).
        output: Colorised raster.
        ab_output: Optional float32 a*, b* GeoTIFF.
        quicklook: Optional side-by-side PNG preview.
        confidence: Optional per-pixel confidence GeoTIFF (models with a confidence head).
        error: Why the job cannot even start (set by :func:`plan_batch`); None when it can.
    """

    input: Path | str
    output: Path
    ab_output: Path | None = None
    quicklook: Path | None = None
    confidence: Path | None = None
    error: str | None = None

    def outputs(self) -> list[Path]:
        """Every file the job writes."""
        return [path for path in (self.output, self.ab_output, self.quicklook, self.confidence)
                if path is not None]

    @contextlib.contextmanager
    def claimed(self) -> Iterator[None]:
        """Hold every output of the job for this process until the block ends
        (:func:`sar_colorizer.io.atomic.claim`): another run writing one of them is refused at
        once, before the scene is computed, not at the final rename.

        Raises:
            OutputExistsError: another live run holds one of the outputs.
        """
        from sar_colorizer.io.atomic import claim

        with contextlib.ExitStack() as stack:
            for path in self.outputs():
                stack.enter_context(claim(path))
            yield


@dataclass(frozen=True)
class PredictOptions:
    """How each scene is coloured: the options of ``sarcolor predict`` that reach the colouring
    itself (:func:`sar_colorizer.inference.colorize_raster`), with the same defaults.

    Attributes:
        driver: GDAL driver of the outputs; None: from each output's extension.
        bands: SAR bands to read (``"VH"``, ``"VV,VH"``, ``"2"``); None: all bands.
        input_scale: ``"auto"``, ``"linear"``, ``"db"``, ``"amplitude"`` or ``"display"``.
        tone: How L is made from the SAR: ``"balanced"``, ``"matched"`` or ``"sar"``.
        tile_size: Tile side for the network; None: the size it was trained on.
        overlap: Tile overlap in pixels; None: an eighth of the tile, at most 64.
        tiles_per_call: Most tiles per model call; None: about a megapixel per call.
        overwrite: Replace outputs that sarcolor wrote before.
        creation_options: GDAL creation options of the colour output (``{"COMPRESS": "LZW"}``).
        display_filter: Despeckling of the SAR that L is made from.
        colour_upsampling: ``"guided"`` (along L's edges) or ``"bilinear"``.
        chroma_limit: Reduce chroma to the sRGB gamut instead of clipping channels.
        pixel_size: Ground pixel size in metres for inputs without georeference.
        shrink: Mute colour where the model is unsure; None: on for confidence-head models.
        calibration: Sentinel-1 products: ``"sigma0"``, ``"beta0"`` or ``"gamma0"``.
        noise_removal: Sentinel-1 products: subtract the thermal noise LUTs.
    """

    driver: str | None = None
    bands: str | Sequence[str | int] | None = None
    input_scale: str = "auto"
    tone: str = "balanced"
    tile_size: int | None = None
    overlap: int | None = None
    tiles_per_call: int | None = None
    overwrite: bool = False
    creation_options: Mapping[str, str] | None = None
    display_filter: str = "median_guided"
    colour_upsampling: str = "guided"
    chroma_limit: bool = True
    pixel_size: float | None = None
    shrink: bool | None = None
    calibration: str = "sigma0"
    noise_removal: bool = True

    def raster_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~sar_colorizer.inference.colorize_raster`."""
        from sar_colorizer.io.s1product import ProductOptions

        product = ProductOptions(calibration=self.calibration, noise_removal=self.noise_removal)
        return {
            "product_options": None if product == ProductOptions() else product,
            "driver": self.driver,
            "bands": self.bands,
            "input_scale": self.input_scale,
            "tone": self.tone,
            "tile_size": self.tile_size,
            "overlap": self.overlap,
            "batch_size": self.tiles_per_call,
            "overwrite": self.overwrite,
            "creation_options": dict(self.creation_options) if self.creation_options else None,
            "display_filter": self.display_filter,
            "colour_upsampling": self.colour_upsampling,
            "chroma_limit": self.chroma_limit,
            "pixel_size": self.pixel_size,
            "shrink": self.shrink,
        }


@dataclass
class BatchSummary:
    """Counts of a batch run, updated as it goes.

    Attributes:
        done: Inputs coloured.
        skipped: Inputs whose output existed (``skip_existing``).
        failed: Patterns that matched nothing, inputs that could not be planned or coloured.
        not_done: Inputs left when the run was interrupted.
        errors: One line per failure, in order (also logged as errors).
        results: What :func:`~sar_colorizer.inference.colorize_raster` reported per coloured
            input (sequential runs).
    """

    done: int = 0
    skipped: int = 0
    failed: int = 0
    not_done: int = 0
    errors: list[str] = field(default_factory=list)
    results: list[PredictSummary] = field(default_factory=list)

    def fail(self, message: str) -> None:
        """Count a failure and log its one line."""
        self.failed += 1
        self.errors.append(message)
        logger.error("%s", message)

    def line(self) -> str:
        """``"N done, M skipped, K failed"`` (and ``", L not done (interrupted)"``)."""
        text = f"{self.done} done, {self.skipped} skipped, {self.failed} failed"
        if self.not_done:
            text += f", {self.not_done} not done (interrupted)"
        return text


@dataclass
class BatchPlan:
    """What :func:`plan_batch` decided before any model is loaded.

    Attributes:
        inputs: Every input, in order, without duplicates (outputs may never replace one).
        jobs: The jobs to run.
        summary: Failures and skips found while planning; :func:`colour_batch` adds to it.
    """

    inputs: list[Path | str]
    jobs: list[Job]
    summary: BatchSummary


def expand_inputs(
    patterns: Sequence[str],
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
    from sar_colorizer.io.dataset import is_virtual_path
    from sar_colorizer.sar.product import is_product_path

    inputs: list[Path | str] = []
    unmatched: list[str] = []
    seen: set[Path | str] = set()
    for pattern in patterns:
        matches: list[Path | str]
        if is_virtual_path(pattern):
            matches = [pattern]
        elif _GLOB_CHARACTERS.intersection(pattern) and not Path(pattern).exists():
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
            matches = [p for p in matches if Path(p).is_file() or is_product_path(p)]
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


def plan_batch(
    patterns: Sequence[str],
    output_dir: str | os.PathLike[str],
    *,
    suffix: str = ".png",
    ab_dir: str | os.PathLike[str] | None = None,
    quicklook_dir: str | os.PathLike[str] | None = None,
    confidence_dir: str | os.PathLike[str] | None = None,
    skip_existing: bool = False,
) -> BatchPlan:
    """Name the outputs of many inputs in one folder and decide what runs.

    Outputs are named after the input: ``output_dir/<stem><suffix>``, and beside them, in their
    own folders, ``<stem>_ab.tif``, ``<stem>_quicklook.png`` and ``<stem>_confidence.tif``.

    Args:
        patterns: Input paths, glob patterns or GDAL virtual paths (:func:`expand_inputs`).
        output_dir: Folder of the colour outputs.
        suffix: Appended to each input's stem (``".png"``, ``"_colour.tif"``).
        ab_dir, quicklook_dir, confidence_dir: Folders for the optional outputs; None: none.
        skip_existing: Skip inputs whose colour output exists.

    Returns:
        The :class:`BatchPlan`. Patterns that match nothing and inputs whose output another
        input already claims are failures of its summary (logged); skipped inputs are logged.
    """
    inputs, unmatched = expand_inputs(list(patterns))
    summary = BatchSummary()
    for pattern in unmatched:
        summary.fail(f"{pattern}: no such file (no file matches the pattern)")
    folder = Path(output_dir)
    claimed: dict[Path, Path | str] = {}
    jobs = []
    for path in inputs:
        stem = Path(path).stem
        output = folder / f"{stem}{suffix}"
        job = Job(
            input=path,
            output=output,
            ab_output=Path(ab_dir) / f"{stem}_ab.tif" if ab_dir is not None else None,
            quicklook=Path(quicklook_dir) / f"{stem}_quicklook.png" if quicklook_dir else None,
            confidence=(Path(confidence_dir) / f"{stem}_confidence.tif"
                        if confidence_dir else None),
        )
        if output.resolve() in claimed:
            job.error = (
                f"{path}: output {output} would also be written for {claimed[output.resolve()]}; "
                "rename one of the inputs or run them separately"
            )
        claimed.setdefault(output.resolve(), path)
        jobs.append(job)
    runnable = []
    for job in jobs:
        if job.error is not None:
            summary.fail(job.error)
        elif skip_existing and job.output.exists():
            logger.info("%s exists; skipped", job.output)
            summary.skipped += 1
        else:
            runnable.append(job)
    return BatchPlan(inputs=inputs, jobs=runnable, summary=summary)


def check_job(
    job: Job,
    overwrite: bool,
    driver: str | None = None,
    force: bool = False,
    inputs: Sequence[Path | str] | None = None,
    creation_options: Mapping[str, str] | None = None,
) -> None:
    """Fail fast (before loading the model) on a missing input, an output format that cannot
    be written, a creation option its driver does not have, an existing output, and an output
    that is one of the run's inputs.

    Args:
        job: The job.
        overwrite: Existing outputs written by sarcolor may be replaced.
        driver: GDAL driver of the colour output; None: from its extension.
        force: With ``overwrite``, also files sarcolor did not write (never an input).
        inputs: Every input of the run (default: the job's own).
        creation_options: GDAL creation options of the colour output (``--co``).

    Raises:
        InputError: The input cannot be read, an output's format is unknown, or a creation
            option or its value is unknown to the driver.
        OutputExistsError: An output may not be replaced (:func:`check_replaceable`).
    """
    from sar_colorizer.io.creation_options import check_creation_options
    from sar_colorizer.io.dataset import read_info
    from sar_colorizer.io.formats import driver_for_path
    from sar_colorizer.sar.product import is_product_path, open_product

    if is_product_path(job.input):
        open_product(job.input)  # a damaged zip, an SLC product: before the model loads
    else:
        read_info(job.input)
    check_creation_options(driver_for_path(job.output, driver), creation_options)
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
    from sar_colorizer.io.output_policy import check_output_path, written_by_sarcolor

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


def load_bundle(model: str | os.PathLike[str]) -> Bundle:
    """The model bundle at ``model`` (a folder, or ``"default"``); imports TensorFlow."""
    from sar_colorizer.bundle import load_bundle as load

    return load(model)


def colour_job(
    bundle: Bundle, job: Job, options: PredictOptions, progress: bool = True
) -> PredictSummary:
    """Colour one job's input into its outputs (no checks: see :func:`check_job`)."""
    from sar_colorizer.inference import colorize_raster

    return colorize_raster(
        bundle,
        job.input,
        job.output,
        ab_path=job.ab_output,
        quicklook_path=job.quicklook,
        confidence_path=job.confidence,
        progress=progress,
        **options.raster_options(),
    )


def colour_batch(
    plan: BatchPlan,
    model: str | os.PathLike[str] | Bundle,
    options: PredictOptions,
    *,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
) -> BatchSummary:
    """Colour the planned jobs; failures are logged one line each and the run goes on.

    Sequentially, the model loads once and only when there is work; a model that does not load
    stops the whole run (it would fail every input). With ``workers`` (a local Dask cluster of
    that many processes) or ``scheduler`` (the address of a running one) each scene is one task
    (:mod:`sar_colorizer.cluster`; needs the dask extra, and ``model`` must be a path).

    Args:
        plan: From :func:`plan_batch`; its summary is updated in place and returned.
        model: Bundle folder, ``"default"``, or a loaded bundle (sequential runs).
        options: How scenes are coloured.
        force: With ``options.overwrite``, also replace files sarcolor did not write.
        progress: Progress bars.
        workers, scheduler: Run on a Dask cluster (at most one of them).

    Returns:
        ``plan.summary``, complete.

    Raises:
        SarColorError: The model does not load.
        KeyboardInterrupt: The run was interrupted (also ``Interrupted`` for SIGTERM, SIGHUP);
            ``plan.summary`` then counts the inputs not done.
    """
    summary = plan.summary
    if plan.jobs:
        from sar_colorizer.io.creation_options import check_creation_options
        from sar_colorizer.io.formats import driver_for_path

        # Every output of a batch has one driver: a wrong --co fails once, before any work.
        check_creation_options(driver_for_path(plan.jobs[0].output, options.driver),
                               options.creation_options)
    if workers is not None or scheduler is not None:
        from sar_colorizer.cluster import colour_jobs_on_cluster

        if not isinstance(model, str | os.PathLike):
            raise TypeError("a cluster run needs the model as a path that every worker loads")
        done, failures = colour_jobs_on_cluster(
            plan.jobs, os.fspath(model), options, workers, scheduler, progress
        )
        summary.done += done
        summary.failed += failures
        return summary
    if not plan.jobs:
        return summary
    bundle = load_bundle(model) if isinstance(model, str | os.PathLike) else model
    for index, job in enumerate(plan.jobs):
        try:
            check_job(job, options.overwrite, options.driver, force, plan.inputs,
                      options.creation_options)
            with job.claimed():
                summary.results.append(colour_job(bundle, job, options, progress))
            summary.done += 1
        except SarColorError as error:
            message = str(error)
            summary.fail(message if str(job.input) in message else f"{job.input}: {message}")
        except Exception as error:  # one broken file must not stop the batch
            summary.fail(f"{job.input}: failed ({type(error).__name__}: {error})")
            logger.debug("traceback", exc_info=True)
        except KeyboardInterrupt:  # also Interrupted (SIGTERM, SIGHUP): report what was done
            summary.not_done = len(plan.jobs) - index
            raise
    return summary
