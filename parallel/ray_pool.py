"""Starting Ray and sizing a pool of model-holding actors, for any Ray Data engine.

One actor per GPU (or `gpus_per_worker` GPUs each) where the cluster has GPUs; on CPUs one actor
per machine running `threads_per_worker` threads, as one process per machine uses the cores
better than one per core. Used by search/ray_engine.py (embedding images) and
translation/ray_engine.py (translating captions).
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a cluster's workers get of this checkout when joining one with --ray-address.
SHIPPED_EXCLUDES = [".git", ".venv*", "tests", "benchmarks", "*.index", "turkish-clip"]


class RayRunError(RuntimeError):
    """A task or actor failed; finished work stays on disk for the next run."""


class RayResourcesError(ValueError):
    """A worker asks for more of a resource than the Ray cluster has."""


@dataclass
class RayOptions:
    address: str | None = None  # None: a Ray on this machine
    gpus_per_worker: float | None = None  # None: 1 where the cluster has GPUs, else 0
    threads_per_worker: int | None = None  # CPU workers; None: the local machine's cores


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Joins the cluster at `address`, or starts a Ray on this machine.

    Workers must import this checkout: a local Ray finds it on PYTHONPATH, a cluster gets a copy.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    # A successful run prints nothing of Ray's own: its loggers note settings at "warning"
    # level. A real failure still reaches the user, as `ray_session`'s RayRunError.
    logging.getLogger("ray").setLevel(logging.ERROR)
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
    if address is None:
        runtime_env = {"env_vars": {"PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}}
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env, **quiet)
    else:
        runtime_env = {"working_dir": str(ROOT), "excludes": SHIPPED_EXCLUDES}
        ray.init(address=address, runtime_env=runtime_env, **quiet)


@contextmanager
def ray_session(options: RayOptions) -> Iterator[None]:
    """Ray for one run: started (and shut down after) unless already running; a task's or
    actor's failure comes out as `RayRunError` with the last line of its traceback."""
    import ray
    import ray.data

    # Ray Data sets up its loggers on import; it would print each stage's start and end, and a
    # note that its progress bars are off.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    started = not ray.is_initialized()
    if started:
        start_ray(options.address)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield
    except ray.exceptions.RayError as error:  # a worker's traceback: its last line says why
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise RayRunError(
            f"the Ray run failed: {lines[-1].strip() if lines else error!r}"
        ) from None
    finally:
        if started:
            ray.shutdown()


def pool_sizes(options: RayOptions) -> tuple[float, int, int]:
    """GPUs per actor, number of actors, and CPU threads per actor.

    On CPUs each actor reserves one CPU for Ray's bookkeeping but runs `threads` threads;
    other tasks (decoding, say) share the cores with it and run while it computes.
    """
    import ray

    resources = ray.cluster_resources()
    cluster_gpus = resources.get("GPU", 0)
    gpus = options.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if cluster_gpus else 0.0
    if gpus > cluster_gpus:
        raise RayResourcesError(
            f"each worker asks for {gpus:g} GPUs, more than the Ray cluster has ({cluster_gpus:g})"
        )
    if gpus > 0:
        return gpus, max(1, int(cluster_gpus // gpus)), 1
    threads = options.threads_per_worker or os.cpu_count() or 1
    nodes = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    return 0.0, nodes, threads


def map_with_actor_pool(dataset, actor: type, arguments: dict, **options):
    """`dataset.map_batches` through a pool of `actor(**arguments)`, none of them restarted.

    A failed actor fails the run, which resumes from its finished batches when run again. A
    restartable one makes Ray's core log an error-level line on every successful run (its
    constructor's arguments wait in the object store), which no user should have to read.
    """
    import warnings

    with warnings.catch_warnings():
        # Ray 2.60 takes an actor's options only through its deprecated `ray_remote_args`.
        warnings.simplefilter("ignore", DeprecationWarning)
        return dataset.map_batches(
            actor, fn_constructor_kwargs=arguments, max_restarts=0, **options
        )
