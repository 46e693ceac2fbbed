#!/usr/bin/python3
"""Minimal QMP client: qmp.py SOCKET COMMAND [JSON-ARGS] ...

Each COMMAND [JSON-ARGS] pair is sent in order; each reply's "return" is
printed as JSON on its own line.  A command starting with "hmp:" is sent
as human-monitor-command and its text output is printed.
"""
import json
import socket
import subprocess
import sys
import time


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
    """QMP client with timeouts (a hung QEMU must not hang the runner).

    Events are kept in .events (each with "_t", the monotonic time it was
    read); they are read while a command waits for its reply."""

    def __init__(self, path, timeout=10.0):
        self.events = []
        self.sock = connect_unix(path, timeout)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rw")
        self._read()                      # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "event" in msg:
                msg["_t"] = time.monotonic()
                self.events.append(msg)
                continue
            return msg

    def wait_event(self, name, timeout, match=None, since=0):
        """The first event @name at index >= @since of .events whose data
        has all of @match; TimeoutError after @timeout s.  Polls with a
        cheap command, which reads the events that came meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events[since:]:
                if ev["event"] == name and all(
                        ev.get("data", {}).get(k) == v
                        for k, v in (match or {}).items()):
                    return ev
            if time.monotonic() > deadline:
                raise TimeoutError("no %s event within %ds" % (name, timeout))
            time.sleep(0.1)
            self.cmd("query-status")

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        rsp = self._read()
        if "error" in rsp:
            raise RuntimeError("%s: %s" % (name, rsp["error"]["desc"]))
        return rsp["return"]

    def try_cmd(self, name, args=None):
        """cmd(), but an error comes back as {"error": text}."""
        try:
            return self.cmd(name, args)
        except Exception as e:            # noqa: BLE001 (diagnostics only)
            return {"error": str(e)}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def hmp(self, line):
        return self.cmd("human-monitor-command", {"command-line": line})



def main():
    qmp = QMP(sys.argv[1])
    argv = sys.argv[2:]
    while argv:
        name = argv.pop(0)
        args = None
        if argv and argv[0].startswith("{"):
            args = json.loads(argv.pop(0))
        if name.startswith("hmp:"):
            print(qmp.hmp(name[4:]))
        else:
            print(json.dumps(qmp.cmd(name, args)))


if __name__ == "__main__":
    main()
