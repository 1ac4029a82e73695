"""Batch ``predict`` on Dask distributed: one task per scene, on a local or existing cluster.

``sarcolor predict 'scenes/*.tif' --output-dir out/ --workers 4`` starts a local cluster of
worker processes; ``--scheduler tcp://HOST:8786`` uses a running one. Each worker loads the
model once (:func:`sar_colorizer.api.load_model` caches it per process), colours whole scenes
with :func:`~sar_colorizer.inference.colorize_raster` (streamed, written under a temporary
name and renamed when complete), and returns a short summary. A scene that fails is reported
and the others go on; a worker that dies mid-scene has its scene rerun on another worker by
the scheduler (Dask's ``distributed.scheduler.allowed-failures`` times), and a scene whose
workers keep dying is reported as failed. Nothing is ever left under an output's final name
unless it is complete.

Inputs are read by the workers, so they must be paths every worker can open: a shared file
system, or GDAL virtual paths such as ``/vsis3/bucket/scene.tif`` (with the usual ``AWS_*``
variables set on the workers). Outputs go to a folder every worker can write to (local or
shared file system: the atomic rename needs one).
"""

from __future__ import annotations

import glob
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sar_colorizer.errors import InputError, MissingExtraError, SarColorError, install_command

if TYPE_CHECKING:
    import distributed

    from sar_colorizer.batch import Job, PredictOptions

logger = logging.getLogger(__name__)


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError as error:
        raise MissingExtraError(
            f"--workers and --scheduler need the dask extra ({error.name} is missing): "
            f"{install_command('dask')}"
        ) from None
    return distributed


def worker_environment(n_workers: int, cpus: int | None = None) -> dict[str, str]:
    """Environment of local worker processes: the CPUs shared out, no oversubscription.

    TensorFlow, OpenMP and OpenBLAS would each start one thread per CPU in every worker; with
    ``n_workers`` processes on ``cpus`` CPUs each gets ``cpus // n_workers`` (at least one).
    """
    cpus = cpus or os.cpu_count() or 1
    threads = str(max(1, cpus // max(1, n_workers)))
    return {
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }


def local_cluster(n_workers: int, memory_limit: str | None = "auto") -> distributed.LocalCluster:
    """A ``distributed.LocalCluster`` of ``n_workers`` single-threaded worker processes.

    Args:
        n_workers: Worker processes (each holds one model and colours one scene at a time).
        memory_limit: Per worker; ``"auto"`` shares the machine's memory out evenly, and the
            nanny restarts a worker that grows past it.
    """
    distributed = _distributed()
    if n_workers < 1:
        raise InputError(f"--workers must be >= 1, got {n_workers}")
    return distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
        env=worker_environment(n_workers),
    )


def colour_scene(model: str, job: Job, options: PredictOptions) -> dict[str, Any]:
    """One task: check and colour one scene on a worker, as the sequential batch colours it
    (:func:`sar_colorizer.batch.colour_job`); returns its summary.

    Raises:
        SarColorError: The scene cannot be coloured (its message names the problem).
    """
    from sar_colorizer.api import load_model
    from sar_colorizer.batch import colour_job
    from sar_colorizer.io.dataset import read_info
    from sar_colorizer.io.output_policy import check_output_path

    read_info(job.input)
    for path in job.outputs():
        check_output_path(path, options.overwrite)
    with job.claimed():
        summary = colour_job(load_model(model), job, options, progress=False)
    return {
        "input": str(summary.input),
        "output": str(summary.output),
        "megapixels": summary.width * summary.height / 1e6,
        "seconds": summary.seconds,
        "worker_pid": os.getpid(),
    }


def _load_on_worker(model: str) -> str:
    from sar_colorizer.api import load_model

    load_model(model)
    return model


def run_batch(
    client: distributed.Client,
    model: str,
    jobs: Sequence[Job],
    options: PredictOptions,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Colour ``jobs`` on the cluster behind ``client``, one task per scene.

    Args:
        client: A ``distributed.Client``.
        model: Bundle path or ``"default"``, loaded on every worker first (a model that does
            not load stops the run before any scene, as in the sequential batch).
        jobs: The scenes and their outputs (:class:`sar_colorizer.batch.Job`).
        options: How each scene is coloured.
        progress: A progress bar over scenes.

    Returns:
        ``(done, failed)``: summaries of the coloured scenes, and ``(input, message)`` of the
        failed ones, both in completion order.
    """
    distributed = _distributed()
    from sar_colorizer.progress import progress_bar

    if not jobs:
        return [], []
    try:
        client.run(_load_on_worker, model)
    except SarColorError:
        raise
    except Exception as error:
        raise InputError(f"{model}: the model does not load on the workers ({error})") from None
    run = uuid.uuid4().hex[:8]  # task keys unique to this run: never a cached result
    futures = {
        client.submit(
            colour_scene, model, job, options, key=f"sarcolor-{run}-{i}-{Path(job.input).name}"
        ): job
        for i, job in enumerate(jobs)
    }
    done: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    bar = progress_bar(total=len(futures), unit="scenes", desc="predict", enabled=progress)
    try:
        for future in distributed.as_completed(futures):
            job = futures[future]
            try:
                done.append(future.result())
            except distributed.KilledWorker:
                message = "failed: the workers colouring it died (out of memory?)"
                failed.append((str(job.input), message))
            except SarColorError as error:
                failed.append((str(job.input), str(error)))
            except Exception as error:  # one broken scene must not stop the batch
                failed.append((str(job.input), f"failed ({type(error).__name__}: {error})"))
            bar.update(1)
    finally:
        bar.close()
        remove_partials(jobs)
    return done, failed


def remove_partials(jobs: Iterable[Job]) -> list[Path]:
    """Delete temporary files that workers killed mid-write left beside the outputs."""
    removed = []
    for job in jobs:
        for path in job.outputs():
            if not path.parent.is_dir():
                continue
            for leftover in path.parent.glob(f".{glob.escape(path.stem)}.*.partial{glob.escape(path.suffix)}*"):
                leftover.unlink(missing_ok=True)
                removed.append(leftover)
    return removed


def colour_jobs_on_cluster(
    jobs: Sequence[Job],
    model: str,
    options: PredictOptions,
    workers: int | None,
    scheduler: str | None,
    progress: bool,
) -> tuple[int, int]:
    """Colour planned jobs (:func:`sar_colorizer.batch.plan_batch`) on a local (``workers``)
    or running (``scheduler``) cluster; the cluster path of
    :func:`sar_colorizer.batch.colour_batch`.

    Failures are logged one line each, as in the sequential batch; each coloured scene is
    logged with its size, time and worker.

    Returns:
        ``(done, failed)`` counts.
    """
    distributed = _distributed()
    if not jobs:
        return 0, 0
    cluster = None
    if scheduler is not None:
        client = distributed.Client(scheduler)
        logger.info("sending %d scenes to %s", len(jobs), scheduler)
    else:
        cluster = local_cluster(workers or 1)
        client = distributed.Client(cluster)
        logger.info("started a local cluster of %d workers", workers)
    try:
        done, failed = run_batch(client, model, jobs, options, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    for path, message in failed:
        logger.error("%s", message if path in message else f"{path}: {message}")
    for summary in done:
        logger.info(
            "wrote %s (%.1f Mpx) in %.1f s on worker %d",
            summary["output"], summary["megapixels"], summary["seconds"], summary["worker_pid"],
        )
    return len(done), len(failed)
