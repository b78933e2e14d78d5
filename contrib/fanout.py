"""Running many independent simulations: in process, or on Dask distributed.

A `Job` is a module-level function and its arguments, all plain data, so that any worker
that has omniroute installed can run it and gets the same answer for the same arguments.
Finished jobs are written to a folder, one JSON file each, named by a hash of the function,
its arguments and the omniroute version: a run that is interrupted and started again
submits only what is missing, and a changed workload or deployment never reuses an old
result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs

from omniroute.core import OmnirouteError

_VERSION = version("omniroute")


class ClusterError(OmnirouteError):
    """The Dask cluster asked for cannot be reached or started."""


@attrs.frozen(eq=False)
class Job:
    """`function(*arguments)` where function is "module:name" and arguments are plain data.

    Jobs are equal when their keys are: the same function on the same arguments.
    """

    function: str
    arguments: tuple[Any, ...]
    #: what a person needs to know which job this is if it fails (the point's parameters)
    label: dict[str, Any] = attrs.field(factory=dict)
    key: str = attrs.field(init=False)

    @key.default
    def _key(self) -> str:
        text = json.dumps(
            [self.function, self.arguments, _VERSION], sort_keys=True, default=str
        ).encode()
        return hashlib.sha256(text).hexdigest()[:32]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


@attrs.frozen
class Failure:
    job: Job
    error: str


def call(function: str, arguments: Sequence[Any]) -> Any:
    """What a worker runs: the named function on the arguments; a result of plain data.

    The result goes through JSON here, as it does through the store, so that a result is
    the same whether it was just computed or read back from disk.
    """
    module, _, name = function.partition(":")
    result = getattr(import_module(module), name)(*arguments)
    return json.loads(json.dumps(result, default=str))


class Store:
    """Finished results on disk, one file per job, written atomically."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def get(self, job: Job) -> Any | None:
        if self.folder is None:
            return None
        path = self.folder / f"{job.key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))["result"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, job: Job, result: Any) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump({"label": job.label, "result": result}, file, default=str)
        os.replace(temporary, self.folder / f"{job.key}.json")


@attrs.define
class Runner:
    """Where jobs run: `workers=0` in this process; else a Dask cluster, local or at `scheduler`."""

    workers: int | None = None  # None: one per core
    scheduler: str | None = None
    store: Store = attrs.Factory(lambda: Store(None))
    _client: Any = None
    _cluster: Any = None

    @property
    def description(self) -> str:
        if self.scheduler is not None:
            return f"Dask scheduler at {self.scheduler}"
        if self.workers == 0:
            return "in process"
        return f"local Dask cluster of {self._worker_count()} worker(s)"

    def _worker_count(self) -> int:
        return self.workers if self.workers is not None else max(os.cpu_count() or 1, 1)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _connect(self) -> Any:
        if self._client is None:
            distributed = _dask_distributed()

            if self.scheduler is not None:
                try:
                    self._client = distributed.Client(self.scheduler, timeout="20s")
                except (OSError, TimeoutError, ValueError) as error:
                    raise ClusterError(
                        f"--scheduler {self.scheduler}: cannot reach the Dask scheduler: {error}"
                    ) from error
            else:
                self._cluster = distributed.LocalCluster(
                    n_workers=self._worker_count(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                self._client = distributed.Client(self._cluster)
        return self._client

    def run(
        self, jobs: Iterable[Job], done: Callable[[int], None] | None = None
    ) -> tuple[dict[Job, Any], list[Failure]]:
        """Every job's result (from the store or run now), and the jobs that failed.

        `done(n)` is called as n more jobs are finished. A failed job does not stop the others.
        """
        results: dict[Job, Any] = {}
        failures: list[Failure] = []
        missing: list[Job] = []
        for job in dict.fromkeys(jobs):
            stored = self.store.get(job)
            if stored is None:
                missing.append(job)
            else:
                results[job] = stored
        if done is not None and results:
            done(len(results))
        if not missing:
            return results, failures
        if self.workers == 0 and self.scheduler is None:
            for job in missing:
                try:
                    result = call(job.function, job.arguments)
                except Exception as error:
                    failures.append(Failure(job, f"{type(error).__name__}: {error}"))
                else:
                    self.store.put(job, result)
                    results[job] = result
                if done is not None:
                    done(1)
            return results, failures
        distributed = _dask_distributed()
        client = self._connect()
        futures = {
            client.submit(call, job.function, job.arguments, key=f"omniroute-{job.key}"): job
            for job in missing
        }
        try:
            for future in distributed.as_completed(futures):
                job = futures[future]
                if future.status == "error":
                    raised = future.exception()
                    failures.append(Failure(job, f"{type(raised).__name__}: {raised}"))
                else:
                    result = future.result()
                    self.store.put(job, result)
                    results[job] = result
                if done is not None:
                    done(1)
        finally:
            for future in futures:
                future.release()
        return results, failures


def _dask_distributed() -> Any:
    """dask.distributed (typed loosely upstream), or a clear error naming the extra."""
    try:
        return import_module("dask.distributed")
    except ImportError as error:
        raise ClusterError(
            "sweeps and staffing on a Dask cluster need Dask: pip install 'omniroute[planning]' "
            "(or run in process with --workers 0)"
        ) from error
