"""The serial console between the guest's /init and the host.

/init (scripts/guest/init) prints, on ttyS0:

  ===VBP-BOOT=== ... ===VBP-BOOT-END===    what it found (disks, params)
  ===VBP-READY name===, ===VBP-DONE name=== around each job; with
                                           vbp.sync=1 it then waits for
                                           one line of input (reply())
  ===VBP-BEGIN name=== ... ===VBP-END name===  the job's results, in
                                           ===VBP-SECTION x=== sections
  ===VBP-ALL-DONE===                       after the last job
  ===VBP-FAILED why=== ... ===VBP-FAILED-END===  a watchdog fired: the
                                           report, then it powers off

A Console reads the bytes of one or more sources one after the other (a
QEMU's stdio pipe, or serial sockets of the QEMU processes a migrating
guest runs on: each source until its end), keeps every line with the
time it was read, logs it, and keeps the boot lines and each job's
result sections.  expect() consumes markers in order; markers() and
block() only look.
"""
import re
import threading
import time

from .qmp import connect_unix

MARK = re.compile(r"===VBP-([A-Z-]+)(?: (.*?))?===\s*$")
KMSG = re.compile(r"^\[\s*\d+\.\d+\] ")
OOPS = re.compile(r"\bBUG\b|\bOops\b|\bWARNING\b|not a head")


class GuestError(Exception):
    """A timeout, the console's end, or the guest's own failure report
    (.report: its lines up to ===VBP-FAILED-END===)."""

    def __init__(self, msg, report=None):
        super().__init__(msg)
        self.report = report


def parse_block(lines):
    """{section: [lines]} of the lines of a BEGIN ... END block."""
    sec = {}
    cur = None
    for line in lines:
        m = re.match(r"===VBP-SECTION (\S+)===\s*$", line)
        if m:
            cur = m.group(1)
            sec[cur] = []
        elif cur:
            sec[cur].append(line)
    return sec


class Source:
    """One byte stream: read() returns b"" at its end."""

    def __init__(self, read, write=None, close=None, name=""):
        self.read, self.write, self.close, self.name = \
            read, write, close, name


def pipe_source(proc):
    """QEMU's stdout/stdin (-chardev stdio)."""
    def write(data):
        proc.stdin.write(data)
        proc.stdin.flush()
    return Source(lambda: proc.stdout.read1(65536), write)


def socket_source(path, timeout=30, name=""):
    """A serial port on a unix socket QEMU listens on."""
    sock = connect_unix(path, timeout, interval=0.1)

    def read():
        try:
            return sock.recv(65536)
        except OSError:
            return b""
    return Source(read, sock.sendall, sock.close, name)


class Console:
    def __init__(self, log_path):
        self.log = open(log_path, "w")
        self.cv = threading.Condition()
        self.lines = []             # (monotonic time, text)
        self.sources = []
        self.current = 0            # index of the source being read
        self.closed = False
        self.eof = False            # every source ended and close()d
        self.pos = 0                # expect()'s cursor in .lines
        self.boot = []              # lines between BOOT and BOOT-END
        self.blocks = {}            # job name -> {section: [lines]}
        self._in = None             # (name, lines) of an open block
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # ---- sources
    def attach(self, source):
        with self.cv:
            self.sources.append(source)
            self.cv.notify_all()
        return source

    def detach(self, source):
        """Forgets a source the guest never ran on (a failed migration's
        destination)."""
        with self.cv:
            i = self.sources.index(source) if source in self.sources else -1
            if i > self.current:
                del self.sources[i]
                if source.close:
                    source.close()

    def close(self):
        """No more sources: the console ends with the last one."""
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _source(self):
        with self.cv:
            while self.current >= len(self.sources) and not self.closed:
                self.cv.wait()
            return self.sources[self.current] \
                if self.current < len(self.sources) else None

    def _run(self):
        buf = b""
        while True:
            src = self._source()
            if src is None:
                break
            chunk = src.read()
            if not chunk:
                with self.cv:
                    self.current += 1
                continue
            buf += chunk
            *done, buf = buf.split(b"\n")
            for raw in done:
                self._line(raw.decode("utf-8", "replace").rstrip("\r"))
            self.log.flush()
        if buf:
            self._line(buf.decode("utf-8", "replace"))
        self.log.close()
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def _line(self, line):
        self.log.write(line + "\n")
        m = MARK.search(line)
        kind, name = (m.group(1), m.group(2)) if m else (None, None)
        with self.cv:
            if kind == "BOOT":
                self._in = ("BOOT", [])
            elif kind == "BEGIN":
                self._in = (name, [])
            elif kind in ("END", "BOOT-END") and self._in:
                if kind == "BOOT-END":
                    self.boot = self._in[1]
                else:
                    self.blocks[self._in[0]] = parse_block(self._in[1])
                self._in = None
            elif self._in:
                self._in[1].append(line)
            self.lines.append((time.monotonic(), line))
            self.cv.notify_all()

    # ---- reading
    def _next(self, deadline, what):
        with self.cv:
            while self.pos >= len(self.lines):
                left = deadline - time.monotonic()
                if self.eof:
                    raise GuestError("console ended waiting for %s" % what)
                if left <= 0:
                    raise GuestError("timeout waiting for %s" % what)
                self.cv.wait(min(left, 1))
            self.pos += 1
            return self.lines[self.pos - 1]

    def expect(self, kind, name=None, timeout=60, collect=None):
        """Reads on to the marker ===VBP-kind name=== (any name if None);
        returns (its time, its name).  Lines before it go to collect.  A
        guest's FAILED report raises GuestError with the report."""
        deadline = time.monotonic() + timeout
        what = "===VBP-%s%s===" % (kind, " " + name if name else "")
        while True:
            t, line = self._next(deadline, what)
            m = MARK.search(line)
            if m and m.group(1) == "FAILED" and kind != "FAILED":
                report = []
                try:
                    while True:
                        _, more = self._next(time.monotonic() + 30, "end")
                        if "===VBP-FAILED-END===" in more:
                            break
                        report.append(more)
                except GuestError:
                    pass
                raise GuestError("guest: %s" % m.group(2), report)
            if m and m.group(1) == kind and name in (None, m.group(2)):
                return t, m.group(2)
            if collect is not None:
                collect.append(line)

    def markers(self, kind, since=0):
        """[(index, time, name)] of the ===VBP-kind name=== lines from
        line index @since on."""
        with self.cv:
            lines = self.lines[since:]
        out = []
        for i, (t, line) in enumerate(lines, since):
            m = MARK.search(line)
            if m and m.group(1) == kind:
                out.append((i, t, m.group(2) or ""))
        return out

    def wait_marker(self, kind, name=None, timeout=60, since=0):
        """The first ===VBP-kind name=== at index >= since, without
        consuming: (index, time, name), or None after @timeout s."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.markers(kind, since):
                if name in (None, m[2]):
                    return m
            with self.cv:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self.cv.wait(min(left, 0.5))

    def text(self, since=0):
        with self.cv:
            return [line for _, line in self.lines[since:]]

    def tail(self, n=40):
        return self.text()[-n:]

    def kernel_problems(self):
        """Console lines of a kernel BUG, Oops or WARNING."""
        return [line for line in self.text() if OOPS.search(line)]

    def send(self, text):
        """Writes to the serial port the guest is on now."""
        with self.cv:
            src = self.sources[min(self.current, len(self.sources) - 1)]
        src.write(text.encode())

    def reply(self):
        """Lets the guest go on after a READY or DONE marker."""
        self.send("go\n")

    def finish(self, timeout=5):
        self.close()
        self._thread.join(timeout)
        for src in self.sources:
            if src.close:
                src.close()
