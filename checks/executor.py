"""Executors for sweeps: local processes by default, a Dask cluster on request.

``make_executor(None)`` gives a :class:`concurrent.futures.ProcessPoolExecutor`;
``make_executor("dask:ADDRESS")`` the ``concurrent.futures`` executor of a ``dask.distributed``
client connected to ADDRESS (``tcp://host:8786``); ``"serial"`` runs in this process.
"""
from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import contextlib
import os
import signal

__all__ = ["make_executor", "SerialExecutor"]


class SerialExecutor(cf.Executor):
    """Runs every task at once in this process (for debugging and tiny sweeps)."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as executors do
            future.set_exception(exc)
        return future


def _worker_start():
    """A pool worker: one BLAS thread (``n`` workers use ``n`` cores, not ``n`` times the BLAS
    pool), and Ctrl-C left to the parent, which stops the run and reports it in one line."""
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)


def _quiet_pool_threads():
    """The pool's manager thread reports the workers it finds stopped (an interrupt stopped them
    on purpose): keep that out of the one-line message."""
    import threading

    previous = threading.excepthook

    def hook(args):
        if issubclass(args.exc_type, (cf.InvalidStateError, BrokenProcessPool)):
            return
        previous(args)
    threading.excepthook = hook


@contextlib.contextmanager
def make_executor(spec: str | None = None, workers: int | None = None):
    """Context manager yielding the executor named by ``spec``."""
    if spec in (None, "", "process", "processes"):
        ex = cf.ProcessPoolExecutor(max_workers=workers or min(2, os.cpu_count() or 1),
                                    initializer=_worker_start)
        try:
            yield ex
        except BaseException:           # Ctrl-C or an error: stop the workers now, quietly
            _quiet_pool_threads()
            ex.shutdown(wait=False, cancel_futures=True)
            for proc in list((getattr(ex, "_processes", None) or {}).values()):
                proc.terminate()
            raise
        else:
            ex.shutdown(wait=True)
    elif spec == "serial":
        yield SerialExecutor()
    elif spec.startswith("dask:"):
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--executor dask:ADDRESS needs the 'distributed' package "
                             "(pip install 'icl-verifier[dask]')") from None
        address = spec.split(":", 1)[1]
        if not address:
            raise ValueError("--executor dask:ADDRESS needs an address, e.g. dask:tcp://host:8786")
        try:
            client = Client(address, timeout=5)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
        with client:
            yield client.get_executor()
    else:
        raise ValueError(f"unknown executor {spec!r}; use process, serial or dask:ADDRESS")
