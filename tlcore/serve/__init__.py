"""The class server: the job queue (`jobs`; a job's record and views, `job_records`; what a queue
is built from, `queue_options`; its runs in worker processes, `process_jobs`, or on a Ray cluster,
`ray_jobs` and `ray_driver`), the run store (`store`), the class and its limits
(`classroom`, `class_limits`, `guess_limiter`), what the server keeps for each learner (the
fine-tuned models, `kept_models`; the upload folders, `upload_folders`) and how it shares its
machine (`cores`, `machine`).

    server_queue(**kwargs)   the queue a class server runs: local, or on Ray ($TLS_RAY_ADDRESS)

Not for: training itself or its time estimate (tlcore.train), reading an upload (tlcore.data),
the take-home files (tlcore.takehome), the feature space and Grad-CAM (tlcore.explain) or
anything Streamlit (studio/).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tlcore.core import settings

if TYPE_CHECKING:
    from tlcore.serve.jobs import JobQueue


def server_queue(*, warm: bool = False, **kwargs) -> JobQueue:
    """The queue a class server runs: on a Ray cluster when `$TLS_RAY_ADDRESS` names one
    ("auto", "HEAD_IP:6379", "ray://head:10001", or "local" for a Ray instance on this machine;
    see tlcore.serve.ray_jobs), else the embedded local queue. Returns at once: the Ray queue joins
    its cluster in the background, and a run that finds none trains here (its page and the
    Class page say so). Ray not installed is logged and the class goes on with the local queue.
    The server itself never joins the cluster: a driver process of its own does
    (tlcore.serve.ray_driver; Ray's own abort there costs the runs it relays, never the server).
    `$TLS_RAY_DRIVER=here` joins from the server's process instead.

    `$TLS_TRAIN_IN_PROCESS=1`: on a CPU server the real trainer's runs train in worker processes
    (tlcore.serve.process_jobs: the pages and the training do not share one interpreter; `warm`:
    the first one runs the server's warm-up). Off by default: on the 2-core box it was measured on,
    a class's pages and its training compete for the cores more than for the interpreter, and the
    warm process costs about 750 MB (docs/class-experiment.md). A `run_fn` of a test's own always
    trains in the server's threads."""
    from tlcore.serve import cores, jobs, machine  # here: the package's own import must stay light (jobs loads torch)

    address = settings.get("TLS_RAY_ADDRESS")
    if address:
        try:
            if settings.get("TLS_RAY_DRIVER") == "here":
                from tlcore.serve.ray_jobs import RayJobQueue  # here: it imports ray

                return RayJobQueue.started(address=address, **kwargs)
            import importlib.util

            if importlib.util.find_spec("ray") is None:  # the driver process needs it; the server never imports it
                raise ImportError("Ray is not installed (pip install 'ray>=2.52')")
            from tlcore.serve.ray_driver import RayDriverQueue  # here: only with a cluster

            return RayDriverQueue.started(address=address, **kwargs)
        except Exception as error:  # noqa: BLE001 -- ImportError, ConnectionError, ...
            logging.getLogger(__name__).error(
                "TLS_RAY_ADDRESS=%s: Ray not usable (%s: %s); training on this machine instead",
                address,
                type(error).__name__,
                error,
            )
    gpus = machine.local_gpus()
    if gpus:
        return jobs.JobQueue.started(gpus=gpus, **kwargs)  # N GPUs: N workers, one per GPU
    limits = jobs.QueueOptions(limits=kwargs.get("limits")).limits_now()  # as the class file says now
    cpu = cores.plan(workers=limits.cpu_workers if limits else 0, threads=limits.threads_per_job if limits else 0)
    logging.getLogger(__name__).info(
        "CPU server: %d cores, %d runs at a time, %d threads each when all are busy", cpu.cores, cpu.workers, cpu.threads
    )
    if kwargs.get("run_fn") is None and settings.get("TLS_TRAIN_IN_PROCESS"):
        from tlcore.serve.process_jobs import ProcessJobQueue  # here: only with TLS_TRAIN_IN_PROCESS

        return ProcessJobQueue.started(cpu=cpu, warm=warm, **kwargs)
    return jobs.JobQueue.started(cpu=cpu, **kwargs)
