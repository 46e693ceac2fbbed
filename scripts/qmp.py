#!/usr/bin/python3
"""Minimal QMP client: qmp.py SOCKET COMMAND [JSON-ARGS] ...

Each COMMAND [JSON-ARGS] pair is sent in order; each reply's "return" is
printed as JSON on its own line.  A command starting with "hmp:" is sent
as human-monitor-command and its text output is printed.
"""
import json
import socket
import sys


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw")
        self._read()                      # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.file.readline())
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
