"""The long-lived grading worker's protocol (grading.autograde_worker), with a stand-in
server: a reply comes only on the private pipe, a student past the time limit or a worker
that dies costs that request only, and the next request gets a fresh worker. The real
server is exercised by every harness test (tests/test_grading_*.py)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time

import pytest

from grading.autograde_worker import Worker, WorkerDied

FAKE = textwrap.dedent('''
    import json, os, sys, time

    def serve(fd):
        replies = os.fdopen(fd, "w", buffering=1)
        for line in sys.stdin:
            req = json.loads(line)
            what = req["args"][0]
            # what a hostile kernel could do: write a reply-shaped line to the std streams
            print(json.dumps({"rc": 0, "seconds": 0}), flush=True)
            os.write(2, b'{"rc": 0}\\n')
            if what == "sleep":
                time.sleep(60)
            if what == "die":
                os._exit(7)
            open(req["log"], "a").write(f"{what} in {os.getpid()}\\n")
            replies.write(json.dumps({"rc": int(what), "seconds": 0}) + "\\n")
''')


@pytest.fixture
def worker(tmp_path):
    (tmp_path / "fake_worker.py").write_text(FAKE)
    w = Worker(dict(os.environ), tmp_path, target="fake_worker:serve")
    yield w
    w.close()


def test_replies_come_from_the_private_pipe_and_the_process_is_reused(worker, tmp_path):
    log = tmp_path / "log.txt"
    assert worker.autograde(["3"], log, timeout=30) == 3
    pid = worker.proc.pid
    assert worker.autograde(["0"], log, timeout=30) == 0
    assert worker.proc.pid == pid
    assert log.read_text().split("\n")[:2] == [f"3 in {pid}", f"0 in {pid}"]


def test_a_request_past_its_limit_costs_only_itself(worker, tmp_path):
    log = tmp_path / "log.txt"
    assert worker.autograde(["0"], log, timeout=30) == 0
    first = worker.proc.pid
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        worker.autograde(["sleep"], log, timeout=2)
    assert time.monotonic() - started < 10
    assert worker.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    assert worker.autograde(["5"], log, timeout=30) == 5  # a fresh worker


def test_a_worker_that_dies_costs_only_its_request(worker, tmp_path):
    log = tmp_path / "log.txt"
    with pytest.raises(WorkerDied, match="exit 7"):
        worker.autograde(["die"], log, timeout=30)
    assert worker.autograde(["1"], log, timeout=30) == 1


def test_a_fresh_process_takes_over_after_max_requests(tmp_path):
    (tmp_path / "fake_worker.py").write_text(FAKE)
    w = Worker(dict(os.environ), tmp_path, target="fake_worker:serve", max_requests=2)
    try:
        pids = []
        for _ in range(5):
            assert w.autograde(["0"], tmp_path / "log", timeout=30) == 0
            pids.append(w.proc.pid)
    finally:
        w.close()
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
