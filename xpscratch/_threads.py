"""BLAS and OpenMP threads: as many as the book's small matrices can use, which is one.

The book's products (784x100 weights, batches of 100) are too small for a BLAS thread
pool to pay for itself: OpenBLAS's extra threads spin while they wait, and on a busy
machine (a laptop with other programs open, or the search's own worker processes) they
fight the other work, and a run slowed down 10-60 times (issue 24).  So every training
run (``Trainer.train``, each experiment, the command line, each search worker) holds
BLAS and OpenMP to one thread, and gives the previous settings back when it ends.

The user decides otherwise with ``XPSCRATCH_THREADS``: a number of threads, or ``all``
to leave the libraries' own settings.  A thread variable the user set for the library
itself (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) is respected
as it is.  threadpoolctl does the work; it acts on the libraries loaded at the time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["THREADS_VARIABLE", "limit_threads", "set_thread_limit", "thread_limit"]

THREADS_VARIABLE = "XPSCRATCH_THREADS"
LIBRARY_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def thread_limit() -> int | None:
    """The BLAS/OpenMP thread count training runs with (None: the libraries' own)."""
    value = os.environ.get(THREADS_VARIABLE, "").strip().lower()
    if value in ("all", "0"):
        return None
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(
                f"{THREADS_VARIABLE}={value!r}: use a number of threads of at least 1, "
                "or 'all' to leave BLAS and OpenMP as they are"
            )
        return threads
    if any(os.environ.get(v) for v in LIBRARY_VARIABLES):
        return None  # the user already chose, for the library itself
    return 1


@contextlib.contextmanager
def limit_threads(threads: int | None = None) -> Iterator[None]:
    """Hold BLAS and OpenMP to ``threads`` (default :func:`thread_limit`) inside the block.

    >>> with xpscratch.limit_threads(4):   # a wide network: let BLAS use four cores
    ...     trainer.train()
    """
    limit = thread_limit() if threads is None else int(threads)
    if limit is None:
        yield
        return
    with threadpool_limits(limits=limit):
        yield


def set_thread_limit(threads: int | None = None) -> None:
    """In a worker process that only trains: the limit for the rest of the process."""
    limit = thread_limit() if threads is None else int(threads)
    if limit is not None:
        threadpool_limits(limits=limit)
