"""The face engine in a pool of worker processes, so that face work never holds the API process's GIL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_models import FaceModel, load_face_model
from monitor.adapters.face_scan import FaceScan, Purpose

_CHILD_ENGINE: FaceEngine | None = None


def _exit_with_parent(parent_pid: int) -> None:
    """A face process must not outlive the process that started it (kill -9 of a worker leaves no orphans)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # alive, owned by someone else: cannot be ours, but do not guess


def _init_child(parent_pid: int, model: FaceModel) -> None:
    global _CHILD_ENGINE  # noqa: PLW0603 - one engine per worker process
    # Ctrl-C in a terminal reaches the whole process group: the parent stops the pool, and a face process must not
    # die first printing a KeyboardInterrupt traceback of its own (two of them ended every `monitor demo`)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    _CHILD_ENGINE = FaceEngine(model)


def _warm_child() -> int:
    assert _CHILD_ENGINE is not None
    _CHILD_ENGINE.warm_up()
    return os.getpid()


def _scan_in_child(data: bytes, purpose: Purpose) -> FaceScan:
    assert _CHILD_ENGINE is not None
    return _CHILD_ENGINE.scan(data, purpose)


class ProcessFaceEngine:
    """The same engine in a pool of worker processes (one per core by default), so that face work
    never holds the API process's GIL; started on first use."""

    def __init__(self, processes: int | None = None, model: FaceModel | None = None) -> None:
        self.model = model or load_face_model()  # checked here, so that a bad weights file stops the parent
        self.model_version = self.model.model_version
        self.metric = self.model.metric
        self.processes = processes or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx, initializer=_init_child,
                                                 initargs=(os.getpid(), self.model))
            return self._pool

    def warm_up(self) -> None:
        """Start every face process and load its models now (in the background): near capacity, the first
        seconds' uploads would otherwise wait 20-30 s for the pool to start."""
        pool = self._executor()
        for _ in range(self.processes):
            pool.submit(_warm_child)

    def child_pids(self) -> list[int]:
        """The face processes' ids (for operations and tests)."""
        pool = self._pool
        return sorted(pool._processes) if pool is not None and pool._processes else []

    def scan(self, data: bytes, purpose: Purpose = "selfie") -> FaceScan:
        return self._executor().submit(_scan_in_child, data, purpose).result()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
