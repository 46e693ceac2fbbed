#!/usr/bin/python3
"""Minimal QMP client: qmp.py SOCKET COMMAND [JSON-ARGS] ...

Each COMMAND [JSON-ARGS] pair is sent in order; each reply's "return" is
printed as JSON on its own line.  A command starting with "hmp:" is sent
as human-monitor-command and its text output is printed.  (QEMU's own
client, through tests/functional/vbp_test/qmp.py.)
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "functional"))
from vbp_test.qmp import QMP  # noqa: E402


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
    qmp.close()


if __name__ == "__main__":
    main()
