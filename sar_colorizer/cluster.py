"""Batch ``predict`` on Dask distributed: an executor of one task per scene, local or remote.

``sarcolor predict 'scenes/*.tif' --output-dir out/ --workers 4`` starts a local cluster of
worker processes; ``--scheduler tcp://HOST:8786`` uses a running one. Either way the batch
(:func:`sar_colorizer.batch.colour_batch`) gets a ``concurrent.futures.Executor``
(:func:`cluster_executor`) and runs on it the same task as on any other executor
(:func:`sar_colorizer.batch.colour_scene`: the job's checks, then the colouring). Each worker
loads the model once (:func:`sar_colorizer.bundle.cached_bundle` caches it per process). A
scene that fails is reported and the others go on; a worker that dies mid-scene has its scene
rerun on another worker by the scheduler (Dask's ``distributed.scheduler.allowed-failures``
times), and a scene whose workers keep dying is reported as failed. Nothing is ever left under
an output's final name unless it is complete.

Inputs are read by the workers, so they must be paths every worker can open: a shared file
system, or GDAL virtual paths such as ``/vsis3/bucket/scene.tif`` (with the usual ``AWS_*``
variables set on the workers). Outputs go to a folder every worker can write to (local or
shared file system: the atomic rename needs one).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

from sar_colorizer.errors import InputError, MissingExtraError, install_command

if TYPE_CHECKING:
    import distributed

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


@contextlib.contextmanager
def cluster_executor(
    workers: int | None = None, scheduler: str | None = None
) -> Iterator[concurrent.futures.Executor]:
    """A ``concurrent.futures.Executor`` on a Dask cluster, for
    :func:`sar_colorizer.batch.colour_batch`: a local cluster of ``workers`` processes
    (:func:`local_cluster`), or the running one at ``scheduler``
    (``distributed.Client.get_executor()``). The client, and a local cluster, close when the
    block ends.

    Raises:
        MissingExtraError: distributed (the ``dask`` extra) is not installed.
        InputError: ``workers`` below 1.
    """
    distributed = _distributed()
    cluster = None
    if scheduler is not None:
        client = distributed.Client(scheduler)
        logger.info("sending scenes to %s", scheduler)
    else:
        cluster = local_cluster(workers or 1)
        client = distributed.Client(cluster)
        logger.info("started a local cluster of %d workers", workers or 1)
    try:
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
