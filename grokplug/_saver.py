"""Run checkpoint writes off the training thread, with back-pressure and error propagation."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class BackgroundWriter:
    """A single worker thread that runs write jobs in order.

    ``submit`` blocks when ``max_pending`` jobs are queued (so a slow disk slows training rather
    than filling memory with weight copies). A job's exception is re-raised on the next
    ``submit``/``flush`` call in the training thread, so failures are never silent.
    """

    def __init__(self, max_pending: int = 2, name: str = "grokplug-saver") -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._failed = False  # stays set once a job failed: the jobs queued behind it never run
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if not self._failed:  # after a failure, drop the rest, even once the caller was told
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                self._failed = True
                self._error = exc
            finally:
                self._queue.task_done()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, job: Callable[[], None]) -> None:
        self._raise_pending()
        if self._failed:
            from .errors import GrokplugError

            raise GrokplugError("an earlier checkpoint save failed (reported then); this tracker saves nothing "
                                "more: close it, fix the cause and resume the run")
        self._queue.put(job)

    def flush(self, last: Callable[[], None] | None = None) -> None:
        """Wait for the queued jobs (and ``last``, queued after them unless a job has failed)."""
        if last is not None and not self._failed:
            self._queue.put(last)
        self._queue.join()
        self._raise_pending()

    def close(self, last: Callable[[], None] | None = None) -> None:
        """Run the queued jobs (and ``last``, as :meth:`flush`), then stop the thread."""
        if self._thread.is_alive():
            if last is not None and not self._failed:
                self._queue.put(last)
            self._queue.put(None)
            self._thread.join()
        self._raise_pending()


class InlineWriter:
    """Same interface, runs jobs immediately (``async_save=False``)."""

    def submit(self, job: Callable[[], None]) -> None:
        job()

    def flush(self, last: Callable[[], None] | None = None) -> None:
        if last is not None:
            last()

    def close(self, last: Callable[[], None] | None = None) -> None:
        if last is not None:
            last()
