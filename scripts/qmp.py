#!/usr/bin/python3
"""Minimal QMP client: qmp.py SOCKET COMMAND [JSON-ARGS] ...

Each COMMAND [JSON-ARGS] pair is sent in order; each reply's "return" is
printed as JSON on its own line.  A command starting with "hmp:" is sent
as human-monitor-command and its text output is printed.
"""
import json
import socket
import sys
import time


class QMP:
    """QMP client with timeouts (a hung QEMU must not hang the runner)."""

    def __init__(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self._read()                      # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

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
