"""Where a sweep's trials run: in this process, in local processes, or as Ray tasks.

Every trial runs on the same number of threads whichever executor runs it (torch, and the BLAS
and OpenMP pools through threadpoolctl), so its numbers, and so its run-store key, do not
depend on the executor. A trial's error stops the sweep with the trial's name in the message;
the trials finished before it are in the store already.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from threadpoolctl import threadpool_info, threadpool_limits

from kabuto.errors import ConfigError, KabutoError
from kabuto.experiment.config import RunConfig
from kabuto.experiment.run import build_strategies, explain_strategies, load_panel, walk_forward
from kabuto.experiment.store import RunStore

__all__ = ["TrialCall", "execute", "run_trial"]


@dataclass(frozen=True)
class TrialCall:
    """What a worker needs to run one trial and file it."""

    store: str  # the store's absolute path: a Ray worker may run elsewhere
    key: str
    name: str
    config: RunConfig
    threads: int


def run_trial(call: TrialCall) -> str:
    """Backtest one trial on `call.threads` threads and file it in the store; returns its key."""
    start = time.perf_counter()
    try:
        # built first: a learning strategy imports torch, whose threads _threads then sets
        strategies = build_strategies(call.config)
        with _threads(call.threads):
            threads = _found_threads()  # recorded as found, a check on the setting
            panel = load_panel(call.config.data)
            result = walk_forward(call.config).run(panel, strategies)
    except KabutoError as exc:  # the same type, its message starting with the trial
        raise type(exc)(f"sweep trial {call.name!r}: {exc}") from None
    RunStore(call.store).save(
        call.key,
        call.config,
        result,
        name=call.name,
        threads=threads,
        seconds=time.perf_counter() - start,
        explanations=explain_strategies(strategies),
    )
    return call.key


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    """Torch's threads (when a strategy loaded torch) and the BLAS and OpenMP pools', restored
    after. A trial of classical strategies does not import torch (seconds a worker)."""
    if "torch" in sys.modules:
        from kabuto.torch_settings import torch_threads

        torch_pool = torch_threads(threads)
    else:
        torch_pool = nullcontext()
    with torch_pool, threadpool_limits(threads):
        yield


def _found_threads() -> int:
    """The threads a trial runs on, as set: torch's when loaded, else the BLAS pools'."""
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    pools = [pool["num_threads"] for pool in threadpool_info()]
    return max(pools, default=1)


def execute(calls: list[TrialCall], executor: str, jobs: int, done: Callable[[], None]) -> None:
    """Run every call, at most `jobs` at once, calling `done` after each."""
    if not calls:
        return
    if executor == "ray":
        _on_ray(calls, jobs, done)
    elif jobs == 1 or len(calls) <= 1:
        for call in calls:
            run_trial(call)
            done()
    else:
        _in_processes(calls, min(jobs, len(calls)), done)


def _in_processes(calls: list[TrialCall], jobs: int, done: Callable[[], None]) -> None:
    # spawn, not fork: a forked child of a process that has run torch can deadlock in it
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    finished_cleanly = False
    try:
        pending: dict[Future, TrialCall] = {pool.submit(run_trial, c): c for c in calls}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                call = pending.pop(future)
                try:
                    future.result()  # a trial's error stops the sweep here
                except BrokenProcessPool:
                    raise KabutoError(
                        f"a worker process died (killed, or out of memory?) while sweep trial "
                        f"{call.name!r} or one beside it ran; the trials finished before are in "
                        "the store: run the sweep again, with fewer jobs if memory is short"
                    ) from None
                done()
        finished_cleanly = True
    finally:
        if not finished_cleanly:  # an error or Ctrl-C: stop the running trials too
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


#: Seconds to wait for a TCP answer from ``RAY_ADDRESS`` before refusing it (Ray itself
#: retries an unreachable head for minutes).
RAY_CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str | None) -> None:
    """Refuse, in seconds, a ``RAY_ADDRESS`` of the form ``[ray://]host:port`` where nothing
    answers; other forms (unset, ``auto``, ``local``) are Ray's to resolve."""
    bare = (address or "").split("://", 1)[-1].rstrip("/")  # ray://, http://
    host, _, port = bare.rpartition(":")
    host = host.strip("[]")  # an IPv6 address in brackets
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise KabutoError(
            f"RAY_ADDRESS = {address!r}: nothing answers there ({exc.strerror or exc}); start the "
            "cluster's head (ray start --head), fix the address, or unset RAY_ADDRESS to run on a "
            "local Ray"
        ) from None


def _on_ray(calls: list[TrialCall], jobs: int, done: Callable[[], None]) -> None:
    """Ray tasks of `threads` CPUs each, at most `jobs` at once, on the cluster ``RAY_ADDRESS``
    names (else a local one). Its workers need kabuto installed and the store on a file
    system they share."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "sweep.executor = 'ray' needs Ray, which is not installed: pip install ray (or use "
            "executor = 'processes')"
        ) from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        _check_reachable(address)
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    remote = ray.remote(num_cpus=calls[0].threads)(run_trial)
    waiting, running, names = list(reversed(calls)), [], {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                call = waiting.pop()
                running.append(remote.remote(call))
                names[running[-1]] = call.name
            finished, running = ray.wait(running, num_returns=1)
            try:
                ray.get(finished)
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, KabutoError):  # the trial's own error, as one line
                    raise exc.cause from None
                raise
            except ray.exceptions.RayError as exc:  # a worker or node lost, not the trial's
                raise KabutoError(
                    f"Ray could not run sweep trial {names[finished[0]]!r} "
                    f"({type(exc).__name__}); the trials finished before are in the store: run "
                    "the sweep again"
                ) from None
            done()
    finally:
        for ref in running:
            ray.cancel(ref)
