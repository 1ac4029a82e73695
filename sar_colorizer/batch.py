"""Colour many SAR rasters in one run: inputs to outputs, what is skipped or refused, counts.

``sarcolor predict`` is a thin layer over this module; notebooks and scripts use it the same
way. A run has two steps:

1. :func:`plan_batch` expands the inputs (paths, glob patterns, GDAL virtual paths), names an
   output for each in one folder, and sorts them before any model is loaded: patterns that
   match nothing and two inputs that would write the same output count as failures, inputs
   whose output exists are skipped with ``skip_existing``.
2. :func:`colour_batch` loads the model once (only if there is work) and colours the planned
   jobs on any ``concurrent.futures.Executor``: one by one here (the default), on a process
   pool, or on a Dask cluster (``distributed.Client.get_executor()``, see
   :mod:`sar_colorizer.cluster`). Each job is one task that checks it first (:func:`check_job`:
   readable input, writable format, outputs that may be replaced, whatever the executor) and
   colours it; a job that fails is logged in one line and the others go on.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.errors import InputError, SarColorError
from sar_colorizer.inference.options import ColourOptions

if TYPE_CHECKING:
    from sar_colorizer.bundle import Bundle, ModelLike
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
class PredictOptions(ColourOptions):
    """How each scene is coloured and written: the
    :class:`~sar_colorizer.inference.options.ColourOptions` (with their defaults) and the
    options of the written files.

    Attributes:
        driver: GDAL driver of the outputs; None: from each output's extension.
        overwrite: Replace outputs that sarcolor wrote before.
        creation_options: GDAL creation options of the colour output (``{"COMPRESS": "LZW"}``).
        calibration: Sentinel-1 products: ``"sigma0"``, ``"beta0"`` or ``"gamma0"``.
        noise_removal: Sentinel-1 products: subtract the thermal noise LUTs.
    """

    driver: str | None = None
    overwrite: bool = False
    creation_options: Mapping[str, str] | None = None
    calibration: str = "sigma0"
    noise_removal: bool = True

    def raster_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~sar_colorizer.inference.colorize_raster` besides the
        input and outputs: the colour options and the written files' options."""
        from sar_colorizer.io.s1product import ProductOptions

        product = ProductOptions(calibration=self.calibration, noise_removal=self.noise_removal)
        return {
            "options": ColourOptions.of(**{n: getattr(self, n) for n in ColourOptions.names()}),
            "product_options": None if product == ProductOptions() else product,
            "driver": self.driver,
            "overwrite": self.overwrite,
            "creation_options": dict(self.creation_options) if self.creation_options else None,
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
    patterns: Sequence[str], output_dir: str | os.PathLike[str], **naming: Any
) -> BatchPlan:
    """Expand ``patterns`` (input paths, glob patterns or GDAL virtual paths:
    :func:`expand_inputs`), then :func:`plan_inputs` them into ``output_dir`` with
    ``naming`` (``suffix``, ``ab_dir``, ``quicklook_dir``, ``confidence_dir``,
    ``skip_existing``)."""
    return plan_inputs(*expand_inputs(list(patterns)), output_dir, **naming)


def plan_inputs(
    inputs: Sequence[Path | str],
    unmatched: Sequence[str],
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
        inputs, unmatched: What :func:`expand_inputs` gave (a caller that looked at the
            inputs first plans the very files it saw).
        output_dir: Folder of the colour outputs.
        suffix: Appended to each input's stem (``".png"``, ``"_colour.tif"``).
        ab_dir, quicklook_dir, confidence_dir: Folders for the optional outputs; None: none.
        skip_existing: Skip inputs whose colour output exists.

    Returns:
        The :class:`BatchPlan`. Patterns that match nothing and inputs whose output another
        input already claims are failures of its summary (logged); skipped inputs are logged.
    """
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
    return BatchPlan(inputs=list(inputs), jobs=runnable, summary=summary)


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
        OutputExistsError: An output may not be replaced
            (:func:`~sar_colorizer.io.output_policy.check_replaceable`).
    """
    from sar_colorizer.io.creation_options import check_creation_options
    from sar_colorizer.io.dataset import read_info
    from sar_colorizer.io.formats import driver_for_path
    from sar_colorizer.io.output_policy import check_replaceable
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


def colour_scene(
    model: ModelLike,
    job: Job,
    options: PredictOptions,
    force: bool = False,
    inputs: Sequence[Path | str] | None = None,
    progress: bool = False,
) -> PredictSummary:
    """One task of a batch, wherever it runs: check the job (:func:`check_job`, the same
    checks on every executor) and colour it with the process's copy of the model.

    Raises:
        SarColorError: The job is refused or the scene cannot be coloured.
    """
    from sar_colorizer.bundle import cached_bundle

    check_job(job, options.overwrite, options.driver, force, inputs, options.creation_options)
    with job.claimed():  # before the model loads: a second run is refused at once
        return colour_job(cached_bundle(model), job, options, progress)


def _check_model(model: ModelLike) -> None:
    """Load the model where the tasks run (a model that does not load stops the run)."""
    from sar_colorizer.bundle import cached_bundle

    cached_bundle(model)


class SerialExecutor(Executor):
    """A ``concurrent.futures.Executor`` that runs each task at once, in this process (a batch
    run without workers)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # reported by the batch, like a worker's
            future.set_exception(error)
        return future


def colour_batch(
    plan: BatchPlan,
    model: ModelLike,
    options: PredictOptions,
    *,
    force: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
) -> BatchSummary:
    """Colour the planned jobs; failures are logged one line each and the run goes on.

    Every job is one task (:func:`colour_scene`: the checks of :func:`check_job`, then the
    colouring) on ``executor``: None runs them one by one here (:class:`SerialExecutor`); a
    ``concurrent.futures.ProcessPoolExecutor`` or ``distributed.Client.get_executor()``
    (:func:`sar_colorizer.cluster.cluster_executor`) runs them on workers, which load the
    model once each. The model is loaded first, once, and only when there is work; a model
    that does not load stops the whole run (it would fail every input). Temporary files that
    workers killed mid-write left behind are removed at the end, by their owner check
    (:func:`sar_colorizer.io.atomic.remove_stale`).

    Args:
        plan: From :func:`plan_batch`; its summary is updated in place and returned.
        model: Bundle folder, ``"default"``, or a loaded bundle (serial runs only).
        options: How scenes are coloured and written; a reference taken from a raster
            (``reference_from``) is computed once, before the first scene, and shared by all.
        force: With ``options.overwrite``, also replace files sarcolor did not write.
        progress: Progress bars (per scene's tiles when serial, per scene otherwise).
        executor: Where the tasks run; None: here, one after the other.

    Returns:
        ``plan.summary``, complete.

    Raises:
        SarColorError: The model does not load, or the reference raster cannot give a
            reference.
        KeyboardInterrupt: The run was interrupted (also ``Interrupted`` for SIGTERM, SIGHUP);
            ``plan.summary`` then counts the inputs not done.
    """
    summary = plan.summary
    if not plan.jobs:
        return summary
    from sar_colorizer.io.creation_options import check_creation_options
    from sar_colorizer.io.formats import driver_for_path

    # Every output of a batch has one driver: a wrong --co fails once, before any work.
    check_creation_options(driver_for_path(plan.jobs[0].output, options.driver),
                           options.creation_options)
    serial = executor is None or isinstance(executor, SerialExecutor)
    executor = executor or SerialExecutor()
    if not serial and not isinstance(model, str | os.PathLike):
        raise TypeError("a run on workers needs the model as a path that every worker loads")
    model = os.fspath(model) if isinstance(model, str | os.PathLike) else model
    # A reference taken from another raster is computed once, here: every scene of the batch
    # gets the same values, and workers never read that raster.
    if options.reference is not None:
        options = options.with_reference(_model_metadata(model))
    _load_where_tasks_run(executor, model)
    try:
        _run_jobs(plan, model, options, executor, force=force, progress=progress, serial=serial)
    finally:
        remove_left_temporaries(plan.jobs)
    return summary


def _model_metadata(model: ModelLike) -> Bundle:
    """``model`` itself, or its metadata as a bundle without a network (what options are
    resolved against; loads no network)."""
    if not isinstance(model, str | os.PathLike):
        return model
    from sar_colorizer.bundle import Bundle as LoadedBundle
    from sar_colorizer.bundle import read_metadata

    return LoadedBundle(metadata=read_metadata(model))


def _load_where_tasks_run(executor: Executor, model: ModelLike) -> None:
    try:
        executor.submit(_check_model, model).result()
    except SarColorError:
        raise
    except Exception as error:
        raise InputError(f"{model}: the model does not load ({error})") from None


def _run_jobs(
    plan: BatchPlan,
    model: ModelLike,
    options: PredictOptions,
    executor: Executor,
    *,
    force: bool,
    progress: bool,
    serial: bool,
) -> None:
    """Submit every job, then collect the results in completion order into ``plan.summary``."""
    from concurrent.futures import as_completed

    from sar_colorizer.progress import progress_bar

    summary = plan.summary
    futures: dict[Future[PredictSummary], Job] = {}
    finished = 0
    try:
        for job in plan.jobs:
            future = executor.submit(colour_scene, model, job, options, force, plan.inputs,
                                     progress and serial)
            futures[future] = job
            if serial:  # done already
                _record(summary, job, future)
                finished += 1
        if not serial:
            bar = progress_bar(total=len(futures), unit="scenes", desc="predict",
                               enabled=progress)
            try:
                for future in as_completed(futures):
                    _record(summary, futures[future], future)
                    finished += 1
                    bar.update(1)
            finally:
                bar.close()
    except KeyboardInterrupt:  # also Interrupted (SIGTERM, SIGHUP): report what was done
        for future in futures:
            future.cancel()
        summary.not_done = len(plan.jobs) - finished
        raise


def _record(summary: BatchSummary, job: Job, future: Future[PredictSummary]) -> None:
    """Count one finished task: done, or a failure with its one line."""
    try:
        summary.results.append(future.result())
        summary.done += 1
    except SarColorError as error:
        message = str(error)
        summary.fail(message if str(job.input) in message else f"{job.input}: {message}")
    except Exception as error:  # one broken file (or dead worker) must not stop the batch
        if type(error).__name__ == "KilledWorker":
            summary.fail(f"{job.input}: failed: the workers colouring it died (out of memory?)")
        else:
            summary.fail(f"{job.input}: failed ({type(error).__name__}: {error})")
        logger.debug("traceback", exc_info=True)


def remove_left_temporaries(jobs: Iterable[Job]) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left beside the outputs: only
    those whose owner process is gone (:func:`sar_colorizer.io.atomic.remove_stale`), never a
    live run's nor files sarcolor did not name."""
    from sar_colorizer.io.atomic import remove_stale

    removed: list[Path] = []
    folders = {path.parent for job in jobs for path in job.outputs()}
    for folder in sorted(folders):
        if folder.is_dir():
            removed += remove_stale(folder)
    return removed
