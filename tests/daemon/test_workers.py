"""End to end: ``maildesk run`` with its processing and delivery workers in child processes
(:mod:`maildesk.daemon.workers`): started at a lower priority, restarted when they die, stopped with
the daemon, dead with it when it is killed; ``[processing] processes = false`` runs them as threads."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass

import pytest

from tests.support.config import write_config
from tests.support.mail import make_mail, send
from tests.support.servers import MaildeskProcess, free_port, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; relies on PR_SET_PDEATHSIG")

STARTED = re.compile(r"started the (process|deliver) worker \(pid (\d+)\)")
PROCESSING = 30.0  # slow machines: how long a mail may take to become a ticket


# -- /proc ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pid:
    """A process as /proc shows it; ``starttime`` tells it apart from a later one with the same pid."""

    pid: int
    starttime: int


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on: [0] state, [1] ppid, [16] nice, [19] starttime."""
    try:
        text = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - read at once
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def proc(pid: int) -> Pid:
    fields = _stat(pid)
    assert fields is not None, f"no process {pid}"
    return Pid(pid, int(fields[19]))


def alive(p: Pid) -> bool:
    """Running (not gone, not a zombie waiting to be reaped, not a new process on the same pid)."""
    fields = _stat(p.pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == p.starttime


def ppid(pid: int) -> int:
    return int(_stat(pid)[1])


def nice(pid: int) -> int:
    return int(_stat(pid)[16])


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def children(parent: int) -> list[Pid]:
    """The live processes whose parent is ``parent``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and int(fields[1]) == parent and fields[0] not in ("Z", "X"):
                found.append(Pid(int(name), int(fields[19])))
    return found


def wait_gone(procs, timeout: float, what: str) -> None:
    wait_until(lambda: not any(alive(p) for p in procs), timeout=timeout, what=what)


def kill_leftovers(procs) -> None:
    for p in procs:
        if alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


# -- the daemon's log -------------------------------------------------------------------
def started(d: MaildeskProcess, since: int = 0) -> list[tuple[str, int]]:
    """("process" | "deliver", pid) for each worker start logged after byte ``since`` of the log."""
    return [(m[1], int(m[2])) for m in STARTED.finditer(d.log.read_text()[since:])]


def worker_pids(d: MaildeskProcess, since: int = 0) -> dict[str, int]:
    """The pid of each worker as most recently started (after ``since``), once both are logged."""
    def both():
        pids = dict(started(d, since))
        return pids if len(pids) == 2 else None

    return wait_until(both, timeout=10, what="both workers started")


def log_size(d: MaildeskProcess) -> int:
    return len(d.log.read_text())


def tickets(d: MaildeskProcess, count: int) -> list[dict]:
    return wait_until(lambda: (ts := d.json("tickets", "list")) and len(ts) >= count and ts, timeout=PROCESSING,
                      interval=0.2, what=f"{count} ticket(s)")


def assert_worker_of(daemon_pid: int, pid: int) -> None:
    assert alive(proc(pid)), f"worker {pid} is not running"
    assert ppid(pid) == daemon_pid, f"worker {pid} is not a child of the daemon {daemon_pid}"
    assert "multiprocessing.spawn" in cmdline(pid)  # a spawned interpreter, not some other process
    # the child lowers its own priority first thing in child_main, once the spawned interpreter is up
    want = min(19, nice(daemon_pid) + 10)
    wait_until(lambda: nice(pid) == want, timeout=15, what=f"worker {pid} at nice {want} (daemon at {nice(daemon_pid)})")


# -- the tests --------------------------------------------------------------------------
def test_two_niced_children_process_and_deliver(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    pids = worker_pids(d)
    watched = [proc(pid) for pid in pids.values()]
    try:
        assert len(started(d)) == 2  # one of each, nothing restarted
        assert pids["process"] != pids["deliver"] and d.proc.pid not in pids.values()
        for pid in pids.values():
            assert_worker_of(d.proc.pid, pid)

        send(d.port, make_mail(subject="worker children at work"))
        (t,) = tickets(d, 1)
        assert t["subject"] == "worker children at work" and t["ref"] == "MD-1"
        ack = sink.wait_for(lambda m: "[MD-1]" in m["Subject"], timeout=PROCESSING)[0]
        assert ack["Subject"] == "[MD-1] Re: worker children at work"
        assert sink.messages[0].rcpt_tos == ["jane@customer.test"]
        assert all(alive(p) for p in watched)  # the same two did the work
        assert len(started(d)) == 2
    finally:
        d.stop()
        kill_leftovers(watched)


def test_sigterm_stops_daemon_and_both_children(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    watched = [proc(pid) for pid in worker_pids(d).values()]
    everything = watched + children(d.proc.pid)  # with multiprocessing's helpers, if any
    try:
        assert d.stop(signal.SIGTERM) == 0
        wait_gone(watched, timeout=10, what="both workers gone after SIGTERM")
        wait_gone(everything, timeout=10, what="every child of the daemon gone after SIGTERM")
        log = d.log.read_text()
        assert "stopped cleanly" in log
        assert "starting it again" not in log and "did not stop" not in log  # stopped, not restarted or killed
    finally:
        d.stop()
        kill_leftovers(everything)


def test_killed_processing_child_is_restarted_and_nothing_is_lost(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    pids = worker_pids(d)
    old, deliver = proc(pids["process"]), proc(pids["deliver"])
    watched = [old, deliver]
    try:
        os.kill(old.pid, signal.SIGKILL)
        wait_until(lambda: not alive(old), timeout=5, what="the processing child dead")
        send(d.port, make_mail(subject="sent while the worker was dead", sender="early@customer.test"))
        assert [name for name, _ in started(d)].count("process") == 1, "restarted before the mail was accepted"

        wait_until(lambda: f"the process worker (pid {old.pid}) exited with -9; starting it again" in d.log.read_text(),
                   timeout=10, what="the exit logged")
        new_pid = wait_until(lambda: [pid for name, pid in started(d) if name == "process" and pid != old.pid],
                             timeout=15, what="a new processing child")[0]
        watched.append(proc(new_pid))
        assert_worker_of(d.proc.pid, new_pid)
        assert alive(deliver) and started(d).count(("deliver", deliver.pid)) == 1  # the other one was left alone

        (t,) = tickets(d, 1)
        assert t["subject"] == "sent while the worker was dead"
        send(d.port, make_mail(subject="sent after the restart", sender="late@customer.test"))
        ts = tickets(d, 2)
        assert sorted(t["subject"] for t in ts) == ["sent after the restart", "sent while the worker was dead"]
        sink.wait_for(lambda m: "[MD-" in m["Subject"], timeout=PROCESSING, count=2)
        assert [name for name, _ in started(d)].count("process") == 2  # restarted once, and it stays up
    finally:
        d.stop()
        kill_leftovers(watched)


def test_children_die_with_a_killed_daemon_and_a_restart_processes_the_rest(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    watched = [proc(pid) for pid in worker_pids(d).values()]
    everything = watched + children(d.proc.pid)
    try:
        subjects = [f"accepted before the kill {i}" for i in range(5)]
        with d.smtp() as smtp:
            for i, subject in enumerate(subjects):
                smtp.send_message(make_mail(subject=subject, sender=f"user{i}@customer.test"))
        d.kill()  # SIGKILL: nothing runs in the daemon any more
        wait_gone(watched, timeout=5, what="both workers dead after the daemon was killed (PR_SET_PDEATHSIG)")
        wait_gone(everything, timeout=10, what="every child of the killed daemon gone")
        assert "the daemon is gone" not in d.log.read_text()  # killed by the kernel, not by noticing getppid() change
        assert len(d.json("inbox", "list", "--limit", "100")) == 5  # each 250 was a commit

        since = log_size(d)
        d.start()
        watched += [proc(pid) for pid in worker_pids(d, since).values()]
        ts = tickets(d, 5)
        assert sorted(t["subject"] for t in ts) == sorted(subjects)
        assert len({t["number"] for t in ts}) == 5
        sink.wait_for(lambda m: "[MD-" in m["Subject"], timeout=PROCESSING, count=5)
    finally:
        d.stop()
        kill_leftovers(everything + watched)


def test_processes_false_runs_the_work_in_threads(tmp_path, sink):
    path = write_config(tmp_path / "threads", port=free_port(), smarthost=f"127.0.0.1:{sink.port}")
    text = path.read_text()
    assert "[processing]\npoll_interval = 0.2\n" in text
    path.write_text(text.replace("[processing]\npoll_interval = 0.2\n", "[processing]\npoll_interval = 0.2\nprocesses = false\n"))
    d = MaildeskProcess(path)
    d.cli("db", "upgrade")
    d.start()
    leftovers: list[Pid] = []
    try:
        send(d.port, make_mail(subject="handled by a thread"))
        (t,) = tickets(d, 1)
        assert t["subject"] == "handled by a thread"
        ack = sink.wait_for(lambda m: "[MD-1]" in m["Subject"], timeout=PROCESSING)[0]
        assert ack["Subject"] == "[MD-1] Re: handled by a thread"
        leftovers = children(d.proc.pid)
        assert leftovers == [], f"child processes: {[cmdline(p.pid) for p in leftovers]}"
        log = d.log.read_text()
        assert started(d) == [] and "worker (pid" not in log
        assert "processed: new ticket MD-1" in log
        assert d.stop() == 0
    finally:
        d.stop()
        kill_leftovers(leftovers)


def test_sigterm_right_after_the_port_opens_is_a_clean_stop(daemon_factory, sink):
    """A SIGTERM that arrives while the daemon is still starting (its port already open, the
    web child and other sources still being started) stops it cleanly, exit 0: the handlers
    are installed before anything is started."""
    web_port = free_port()
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}",
                       extra=f'[web]\nlisten = "127.0.0.1:{web_port}"\nbase_url = "http://127.0.0.1:{web_port}"\n')
    try:
        assert d.stop(signal.SIGTERM) == 0, d.log.read_text()[-2000:]
        assert "stopped cleanly" in d.log.read_text()
    finally:
        d.stop()
