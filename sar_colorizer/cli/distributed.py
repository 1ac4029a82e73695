"""``sarcolor predict --workers N / --scheduler ADDRESS``: the batch on Dask distributed."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def run_on_cluster(
    jobs: list[Any],
    model_path: str,
    settings: dict[str, Any],
    workers: int | None,
    scheduler: str | None,
    progress: bool,
) -> tuple[int, int]:
    """Colour the batch's jobs on a local (``workers``) or running (``scheduler``) cluster.

    Failures are logged one line each, as in the sequential batch.

    Returns:
        ``(done, failed)`` counts.
    """
    from sar_colorizer.cluster import _distributed, local_cluster, run_batch

    distributed = _distributed()
    if not jobs:
        return 0, 0
    specs = [
        {
            "input": str(job.input),
            "output": str(job.output),
            "ab_output": str(job.ab_output) if job.ab_output is not None else None,
            "quicklook": str(job.quicklook) if job.quicklook is not None else None,
        }
        for job in jobs
    ]
    if scheduler is not None:
        cluster = None
        client = distributed.Client(scheduler)
        logger.info("sending %d scenes to %s", len(specs), scheduler)
    else:
        cluster = local_cluster(workers or 1)
        client = distributed.Client(cluster)
        logger.info("started a local cluster of %d workers", workers)
    try:
        done, failed = run_batch(client, model_path, specs, settings, progress)
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
