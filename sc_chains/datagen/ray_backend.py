"""Run a generator's per-item function on Ray workers, behind the same resumable runner.

The runner (:mod:`sc_chains.runner`) still owns the output file, resume, retries and the
progress bar; each item becomes one Ray task (``generator(item)`` on a worker, awaited as an
asyncio future). The generator is pickled once (``ray.put``); its models are specs
(:class:`~sc_chains.datagen.common.ModelRef`), resolved once per worker process.

Ray is optional: ``pip install 'ray>=2.9'``. Ray 2.60 removed ``ray.init(local_mode=True)``;
without an address a local cluster is started (and shut down at the end).
"""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from adapters.errors import SCChainsError

__all__ = ["RayUnavailableError", "ray_job", "ray_session"]

INSTALL = "pip install 'ray>=2.9'"


class RayUnavailableError(SCChainsError, ModuleNotFoundError):
    """``--backend ray`` without Ray installed."""

    def __init__(self) -> None:
        super().__init__(f"--backend ray needs Ray, which is not installed: {INSTALL} (or use --backend local)")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError() from exc
    return ray


def _call(generator: Any, item: Any) -> dict[str, Any]:
    return generator(item)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray (``address``, e.g. ``"auto"``) or start a local cluster; yields the module.

    A cluster this function started is shut down on exit; an existing connection is left alone.
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_job(generator: Any, *, num_cpus: float = 1) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """An async job function for :func:`sc_chains.runner.arun_jobs` that runs ``generator(item)``
    as a Ray task (call inside :func:`ray_session`)."""
    ray = _import_ray()
    try:
        pickle.dumps(generator)
    except Exception as exc:
        raise SCChainsError(
            f"--backend ray sends the generator to worker processes, but it cannot be pickled ({exc}); "
            "pass models as spec strings (hf:..., openai:...) rather than live model objects"
        ) from exc
    ref = ray.put(generator)
    task = ray.remote(num_cpus=num_cpus, max_retries=0)(_call)

    async def job(item: Any) -> dict[str, Any]:
        return await task.remote(ref, item)

    return job
