"""The runtime machinery (scanner/runtime.py): the analysis process's life, its hand-over, its manners.

Real child processes throughout; the Ctrl-C and killed-parent cases run a small script in its own
session, as a terminal or a notebook kernel would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool

import psutil
import pytest

from scanner import runtime
from tests.conftest import REPO

CHILD_WAIT_S = 60


@pytest.fixture
def no_process():
    """Every test here starts without an analysis process and leaves none behind."""
    runtime.stop_analysis_process()
    yield
    runtime.stop_analysis_process()


def test_calls_run_in_the_child_and_their_results_and_errors_come_back(no_process) -> None:
    process = runtime.analysis_process()
    assert process is not None
    assert process.submit(os.getpid).result(CHILD_WAIT_S) == process.pid != os.getpid()
    assert process.submit(runtime.in_analysis_process).result(CHILD_WAIT_S) is True
    assert runtime.in_analysis_process() is False
    with pytest.raises(ValueError, match="invalid literal"):
        process.submit(int, "x").result(CHILD_WAIT_S)
    assert process.submit(print, "a detector's print goes to stderr").result(CHILD_WAIT_S) is None
    assert process.submit(sum, [1, 2, 3]).result(CHILD_WAIT_S) == 6  # the answers stayed in step


def test_the_process_starts_on_first_use_and_stops_when_the_last_scan_ends(no_process) -> None:
    with runtime.scan_running():
        with runtime.scan_running():
            process = runtime.analysis_process()
            assert process is not None and runtime.analysis_process() is process
        assert runtime.active_scans() == 1 and process.alive  # the outer scan still runs
    assert runtime.active_scans() == 0 and runtime._process is None
    process.shutdown(wait=True)  # already stopping: waits for the child's exit
    assert process.exit_code == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        process.submit(int)
    fresh = runtime.analysis_process()  # the next scan starts a new one
    assert fresh is not None and fresh is not process and fresh.submit(int).result(CHILD_WAIT_S) == 0


def test_a_process_that_dies_fails_its_pending_calls_as_broken(no_process) -> None:
    process = runtime.analysis_process()
    assert process is not None
    with pytest.raises(BrokenProcessPool, match="exit code 5"):
        process.submit(os._exit, 5).result(CHILD_WAIT_S)
    with pytest.raises(BrokenProcessPool):
        process.submit(int)


def _script(body: str) -> subprocess.Popen:
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from scanner import runtime
        process = runtime.analysis_process()
        assert process.submit(int).result(60) == 0
        print("READY", process.pid, flush=True)
        """
    ) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.mark.skipif(os.name == "nt", reason="POSIX process groups and signals")
def test_ctrl_c_prints_no_traceback_from_the_analysis_process() -> None:
    script = _script(
        """
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("INTERRUPTED", flush=True)
        """
    )
    assert script.stdout is not None
    ready = script.stdout.readline().split()
    assert ready[:1] == ["READY"]
    os.killpg(script.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
    out, err = script.communicate(timeout=CHILD_WAIT_S)
    assert "INTERRUPTED" in out and script.returncode == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    worker = int(ready[1])
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE


@pytest.mark.skipif(os.name == "nt", reason="POSIX sessions")
def test_the_analysis_process_exits_quietly_when_its_parent_is_killed() -> None:
    script = _script("time.sleep(60)\n")
    assert script.stdout is not None
    worker = psutil.Process(int(script.stdout.readline().split()[1]))
    script.kill()  # a kernel killed outright: no atexit, no shutdown
    worker.wait(CHILD_WAIT_S)  # raises TimeoutExpired if the child outlives its parent
    _, err = script.communicate(timeout=CHILD_WAIT_S)
    assert "Traceback" not in err


def test_stopping_drops_calls_not_yet_sent_and_does_not_wait_forever_for_a_stuck_one(no_process) -> None:
    process = runtime.analysis_process()
    assert process is not None
    stuck = process.submit(time.sleep, 3600)
    deadline = time.monotonic() + CHILD_WAIT_S
    while not stuck.running():  # sent to the child
        assert time.monotonic() < deadline
        time.sleep(0.01)
    queued = [process.submit(int) for _ in range(3)]
    runtime.STOP_TIMEOUT_S, saved = 0.5, runtime.STOP_TIMEOUT_S
    try:
        runtime.stop_analysis_process(cancel_pending=True)
    finally:
        runtime.STOP_TIMEOUT_S = saved
    assert process.exit_code not in (None, 0)  # killed, not waited out
    with pytest.raises(BrokenProcessPool):
        stuck.result(CHILD_WAIT_S)
    assert all(f.cancelled() or isinstance(f.exception(CHILD_WAIT_S), BrokenProcessPool) for f in queued)
