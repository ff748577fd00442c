"""The runtime machinery of a scan, in one place, and what each trick buys (measured in bench/scan.py).

1. **The analysis process** (``analysis_process``, used by ``scanner.analysis.Analyser``). Detectors
   run in one separate Python process. In a worker thread they held the interpreter lock often
   enough to stall the event loop for 100-120 ms at a time in the 2,000-symbol benchmark; without
   detectors on the loop's interpreter the same scan stalls 20 ms at most. Its life:

   - started lazily, by the first scan that needs it (it boots while the symbols are listed);
   - stopped when the last scan of the process ends (``scan_running``), or at interpreter exit;
   - a plain ``python -c`` child speaking length-prefixed pickles over its stdin and stdout. It
     never imports the caller's ``__main__`` (``multiprocessing``'s spawn re-runs the main script,
     so a cron script without an ``if __name__ == "__main__"`` guard scanned and alerted twice;
     hiding ``sys.modules["__main__"]`` around the start was not thread-safe), so nothing of the
     caller's is swapped or re-run;
   - in its own session (POSIX) or process group (Windows): Ctrl-C in a terminal or a notebook's
     interrupt reaches the scanner, not the child, so no child traceback is printed; it also
     ignores SIGINT. When its parent goes away (kernel shut down or killed), its stdin ends and it
     exits quietly.

   ``SCANNER_ANALYSIS=thread`` or detectors the child cannot load keep the work in one thread.

2. **Cooperative time slices** (``yield_if_slice_used``, implemented in ``utils.time_slice``
   because the exchange clients use it and ``exchanges`` must not import ``scanner``). Decoding
   many answers in one event-loop step stalled the loop for 100-190 ms with 5 exchanges at full
   speed; with 10 ms slices the worst stall was 69 ms, same total work (measured when introduced).

3. **No full garbage collections while a scan runs** (``scan_running``). A full (generation 2)
   collection walks every tracked object of the process, the caller's included. Re-measured now
   that candles are compact arrays and a request leaves no cyclic garbage (exchanges/retry.py): a
   2,000-symbol, 6-timeframe scan without the pause still ran 6 full collections of up to 540 ms
   each (busy shared machine; worst event-loop lag of the scan 570 ms), against none during the
   scan with it (worst lag 250 ms, the rest being CPU contention on that machine). So it stays,
   narrowly: the generation-2 threshold is lifted only while at least one scan runs and the
   caller's own threshold is put back when the last one ends; young collections keep running.

``scan_running`` is what a scan wraps its work in: it counts the scans of the process (nesting
and threads included) for points 1 and 3. ``full_collections_paused`` is its older name.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import itertools
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from utils.time_slice import SLICE_S, yield_if_slice_used

log = logging.getLogger(__name__)

# Environment variable set in the analysis process (``in_analysis_process``).
WORKER_ENV = "SCANNER_ANALYSIS_WORKER"
# What the child runs: nothing of the caller's script, only this module's loop.
WORKER_CODE = "from scanner.runtime import serve_worker; serve_worker()"
# Frame headers: task id, pickle length and out-of-band buffer count, then each buffer's length
# (requests); task id, ok flag, length (answers).
_REQUEST = struct.Struct("<QQQ")
_LENGTH = struct.Struct("<Q")
_ANSWER = struct.Struct("<QBQ")
# How long stopping waits for the child to exit before killing it.
STOP_TIMEOUT_S = 10.0
# A generation-2 threshold that a scan never reaches (it counts generation-1 collections).
PAUSED_THRESHOLD = 1 << 30

__all__ = [
    "SLICE_S",
    "WorkerProcess",
    "PAUSED_THRESHOLD",
    "active_scans",
    "analysis_process",
    "full_collections_paused",
    "in_analysis_process",
    "scan_running",
    "serve_worker",
    "stop_analysis_process",
    "yield_if_slice_used",
]


def in_analysis_process() -> bool:
    """True inside the analysis process."""
    return os.environ.get(WORKER_ENV) == "1"


def _child_env() -> dict[str, str]:
    """The parent's environment, its import path (the child finds what the parent can), the flag."""
    paths = [p or os.getcwd() for p in sys.path]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), WORKER_ENV: "1"}


def _session_options() -> dict[str, Any]:
    """Start the child outside the terminal's foreground process group (no Ctrl-C for it)."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


class WorkerProcess(Executor):
    """One child process running submitted picklable callables in order (module docstring, point 1).

    ``submit`` queues the call; a writer thread pickles and sends it, a reader thread resolves the
    futures from the answers. If the child dies, every pending and later future fails with
    ``BrokenProcessPool``; after ``shutdown``, ``submit`` raises ``RuntimeError`` (both as
    ``concurrent.futures.ProcessPoolExecutor`` does).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = False
        self._broken: str | None = None
        self._proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=_child_env(), **_session_options(),
        )
        self.pid = self._proc.pid
        self._writer = threading.Thread(target=self._write, name="scanner-analysis-writer", daemon=True)
        self._reader = threading.Thread(target=self._read, name="scanner-analysis-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if kwargs:
            raise TypeError("the analysis process takes positional arguments only")
        future: Future = Future()
        with self._lock:
            if self._stopping:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            task = next(self._ids)
            self._pending[task] = future
        self._queue.put((task, future, fn, args))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the child finish what it was sent, then exit (its stdin closes)."""
        with self._lock:
            first = not self._stopping
            self._stopping = True
            if cancel_futures:
                for future in self._pending.values():
                    future.cancel()
        if first:
            self._queue.put(None)
        if wait:
            self._writer.join(STOP_TIMEOUT_S)
            self._reader.join(STOP_TIMEOUT_S)
            if self._writer.is_alive() or self._reader.is_alive():  # stuck in a call: no endless wait
                self._proc.kill()
                self._writer.join()
                self._reader.join()

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The child's exit status once it has ended (0: stopped in order), else None."""
        return self._proc.poll()

    def _write(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        while (item := self._queue.get()) is not None:
            task, future, fn, args = item
            if not future.set_running_or_notify_cancel():
                self._forget(task)
                continue
            try:
                data, buffers = _pickled((fn, args))
            except Exception as exc:  # an unpicklable call fails alone, as in ProcessPoolExecutor
                self._forget(task)
                future.set_exception(exc)
                continue
            try:
                stdin.write(_REQUEST.pack(task, len(data), len(buffers)))
                for buffer in buffers:
                    stdin.write(_LENGTH.pack(buffer.nbytes))
                stdin.write(data)
                for buffer in buffers:
                    stdin.write(buffer)
                stdin.flush()
            except OSError:  # the child is gone: the reader fails the futures
                break
        with contextlib.suppress(OSError):
            stdin.close()

    def _forget(self, task: int) -> None:
        with self._lock:
            self._pending.pop(task, None)

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        while len(head := stdout.read(_ANSWER.size)) == _ANSWER.size:
            task, ok, size = _ANSWER.unpack(head)
            data = stdout.read(size)
            if len(data) < size:
                break
            with self._lock:
                future = self._pending.pop(task, None)
            if future is None:
                continue
            try:
                value = pickle.loads(data)
            except Exception as exc:
                ok, value = False, exc
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        code = self._proc.wait()
        stdout.close()
        with self._lock:
            reason = f"the analysis process ended with exit code {code}"
            self._broken = "the analysis process was stopped" if self._stopping and code == 0 else reason
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(BrokenProcessPool(reason))


def _pickled(value: Any) -> tuple[bytes, list[memoryview]]:
    """``value`` pickled with its large arrays out of band (protocol 5): the arrays' bytes go to the
    pipe as they are instead of being copied into the pickle first, and the child reads them into
    buffers the arrays then use. A scan's batches are some 80 MB per 1,000 symbols x 1d..1w; the
    two copies this saves cost about 0.15 s of CPU per such scan."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return data, [buffer.raw() for buffer in buffers]


def _read_exactly(stream: Any, size: int) -> bytearray | None:
    """``size`` bytes of ``stream`` in a new writable buffer, or None when the stream ends first."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = stream.readinto(view[done:])
        if not got:
            return None
        done += got
    return buffer


def _read_request(inp: Any) -> tuple[int, bytes, list[bytearray]] | None:
    """The next call ``WorkerProcess._write`` sent: task id, pickle and out-of-band buffers (None
    when stdin ends, mid-frame included)."""
    head = inp.read(_REQUEST.size)
    if len(head) < _REQUEST.size:
        return None
    task, size, count = _REQUEST.unpack(head)
    lengths = inp.read(_LENGTH.size * count)
    data = inp.read(size)
    if len(lengths) < _LENGTH.size * count or len(data) < size:
        return None
    buffers = []
    for (length,) in _LENGTH.iter_unpack(lengths):
        buffer = _read_exactly(inp, length)
        if buffer is None:
            return None
        buffers.append(buffer)
    return task, data, buffers


def _answer(out: Any, task: int, ok: bool, value: Any) -> None:
    try:
        data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception: say so instead
        ok, data = False, pickle.dumps(RuntimeError(f"unpicklable answer from the analysis process: {exc!r}"))
    out.write(_ANSWER.pack(task, ok, len(data)))
    out.write(data)
    out.flush()


def serve_worker() -> None:
    """Body of the analysis process: run each call read from stdin, answer on the original stdout.

    Ends quietly when stdin ends (stopped, or the parent is gone) or the answers cannot be written.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a detector's print goes to stderr, not the answers
    inp = sys.stdin.buffer
    import scanner.analysis  # noqa: F401 - pandas and every detector load while the parent lists symbols

    try:
        while (request := _read_request(inp)) is not None:
            task, data, buffers = request
            try:
                fn, args = pickle.loads(data, buffers=buffers)
                value, ok = fn(*args), True
            except Exception as exc:
                value, ok = exc, False
            _answer(out, task, ok, value)
    except (OSError, KeyboardInterrupt):
        return
    finally:
        with contextlib.suppress(OSError):  # the parent may be gone: nothing left to flush to
            out.close()


# ---------------------------------------------------------------------------------- process-wide state

_lock = threading.Lock()
_process: WorkerProcess | None = None
_broken: str | None = None  # why the process is no longer used, once it failed
_active = 0  # scans inside scan_running
_saved_threshold: int | None = None  # the caller's generation-2 threshold while scans run


def analysis_process() -> WorkerProcess | None:
    """The process-wide analysis process, started on first use (None once it failed: the thread then)."""
    global _process
    with _lock:
        if _broken is not None:
            return None
        if _process is None:
            try:
                _process = WorkerProcess()
            except (OSError, ValueError) as exc:
                _give_up_locked(f"could not start the analysis process: {exc!r}")
        return _process


def give_up(reason: str) -> None:
    """Stop using the analysis process for good (logged once); detectors run in the thread."""
    with _lock:
        _give_up_locked(reason)


def _give_up_locked(reason: str) -> None:
    global _process, _broken
    if _broken is None:
        log.warning("%s; detectors run in a thread from now on", reason)
    _broken = reason
    process, _process = _process, None
    if process is not None:
        process.shutdown(wait=False)  # what it was sent still gets answered, or fails as broken


def stop_analysis_process(wait: bool = True, cancel_pending: bool = False) -> None:
    """Stop the analysis process and forget any failure: the next scan starts a fresh one.

    ``cancel_pending`` drops the calls not yet sent to it (at exit: an interrupted scan's queue).
    """
    global _process, _broken
    with _lock:
        process, _process, _broken = _process, None, None
    if process is not None:
        process.shutdown(wait=wait, cancel_futures=cancel_pending)


def active_scans() -> int:
    """Scans of this process inside ``scan_running`` now."""
    return _active


@contextlib.contextmanager
def scan_running() -> Iterator[None]:
    """While inside, this is a running scan: full collections wait (point 3); when the last running
    scan of the process ends, the caller's collector threshold is back and the analysis process
    stops (without blocking: it exits once what it was sent is answered)."""
    global _active, _process, _saved_threshold
    with _lock:
        if _active == 0:
            young, middle, full = gc.get_threshold()
            _saved_threshold = full
            gc.set_threshold(young, middle, PAUSED_THRESHOLD)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            process = None
            if _active == 0:
                if _saved_threshold is not None:
                    young, middle, _ = gc.get_threshold()
                    gc.set_threshold(young, middle, _saved_threshold)
                    _saved_threshold = None
                process, _process = _process, None
        if process is not None:
            process.shutdown(wait=False)


full_collections_paused = scan_running


atexit.register(stop_analysis_process, cancel_pending=True)
