"""QMP with timeouts and events, on QEMU's own client.

QEMU's python/qemu/qmp (its legacy synchronous wrapper, as QEMU's
tests/functional use it) does the protocol; this adds what our tests
need around it: connecting while QEMU is still starting, a command that
reports instead of raising (for diagnostics of a dying QEMU), and the
events kept with the time they were read.

A QMP object belongs to the thread that made it (its asyncio loop).
"""
import asyncio
import socket
import subprocess
import time

from . import paths  # noqa: F401  (puts QEMU's python/ on sys.path)
from qemu.qmp import QMPError  # noqa: E402
from qemu.qmp.legacy import QEMUMonitorProtocol  # noqa: E402

Error = (QMPError, OSError, EOFError, asyncio.TimeoutError)


def connect_unix(path, timeout, interval=0.05):
    """A stream socket connected to the unix socket @path, retrying until
    QEMU listens there (OSError after @timeout seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def end_process(proc, timeout):
    """Waits up to @timeout s for @proc to exit, then terminates it, then
    kills it.  Returns True if it had to be ended."""
    try:
        proc.wait(timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return True


class QMP:
    """One QMP connection on a unix socket.

    Every event read is appended to .events with "t", the monotonic time
    it was read (events are read while a command or wait_event() runs)."""

    def __init__(self, path, timeout=30.0):
        self.events = []
        self.mon = QEMUMonitorProtocol(
            connect_unix(path, timeout), nickname=path)
        self.mon.settimeout(timeout)
        self.mon.connect()

    def _pull(self, wait=False):
        ev = self.mon.pull_event(wait)
        if ev is not None:
            ev["t"] = time.monotonic()
            self.events.append(ev)
        return ev

    def cmd(self, name, args=None):
        """The command's "return"; QMPError for an error reply."""
        ret = self.mon.cmd(name, **(args or {}))
        while self._pull():
            pass
        return ret

    def try_cmd(self, name, args=None):
        """cmd(), or {"error": text} on any failure."""
        try:
            return self.cmd(name, args)
        except Error as e:
            return {"error": "%s: %s" % (type(e).__name__, e)}

    def hmp(self, line):
        return self.cmd("human-monitor-command", {"command-line": line})

    def wait_event(self, name, timeout, match=None, since=0):
        """The first event @name (from .events[since:] on) whose data
        contains @match; None after @timeout s."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for ev in self.events[seen:]:
                if ev["event"] == name and all(
                        ev.get("data", {}).get(k) == v
                        for k, v in (match or {}).items()):
                    return ev
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self._pull(float(min(left, 1.0)))
            except asyncio.TimeoutError:
                pass

    def close(self):
        try:
            self.mon.close()
        except Error:
            pass
        # its __del__ closes again, and a lost connection raises again
        self.mon.close = lambda: None
