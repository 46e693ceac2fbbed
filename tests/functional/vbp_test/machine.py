"""The test guest's machine: its files, disk, device and QEMU process."""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from . import paths
from .console import Console, pipe_source, socket_source
from . import qmp
from .qmp import QMP, end_process

sys.path.insert(0, paths.GUEST_SRC)
import mkcpio  # noqa: E402  (scripts/guest/mkcpio.py)


def guest_files(rebuild=False):
    """build/guest/guest.json (kernel, base initramfs, versions), running
    scripts/guest/build-guest.sh first when it is missing or older than
    its sources."""
    manifest = os.path.join(paths.GUEST_DIR, "guest.json")
    srcs = [os.path.join(paths.GUEST_SRC, f)
            for f in ("init", "build-guest.sh", "mkcpio.py")]
    stale = not os.path.exists(manifest) or any(
        os.path.getmtime(s) > os.path.getmtime(manifest) for s in srcs)
    if rebuild or stale:
        subprocess.run([os.path.join(paths.GUEST_SRC, "build-guest.sh")],
                       check=True, stdout=sys.stderr)
        os.utime(manifest)
    with open(manifest) as f:
        return json.load(f)


def make_initrd(path, base, files, ndisks=1):
    """Writes to @path a small cpio with /job/NAME for each NAME: text of
    @files (*.sh executable) and /job/ndisks, then the base initramfs.

    Linux unpacks concatenated archives one after the other.  The small
    uncompressed one comes first because the base may be LZ4 (legacy
    format), which has no end marker: the kernel decompresses it up to the
    end of the initrd, so nothing may follow it."""
    with open(path, "wb") as out, open(base, "rb") as f:
        w = mkcpio.CpioWriter(out)
        w.add_dir("job")
        for name, text in sorted(files.items()):
            w.add_file("job/" + name, text.encode(),
                       0o755 if name.endswith(".sh") else 0o644)
        w.add_file("job/ndisks", b"%d\n" % ndisks)
        w.close()
        shutil.copyfileobj(f, out)
    return path


def cmdline(timeout, job_timeout, sync=True, blk_params="", extra=()):
    """The guest kernel's command line (see scripts/guest/init)."""
    # tsc=reliable: under TCG every vCPU's RDTSC reads the host's TSC,
    # but the guest's boot-time TSC sync check fails (the vCPUs do not
    # run in lockstep), Linux marks the TSC unstable and falls back to
    # the HPET.  Then every clock read in the guest (fio's latency
    # stamps, the block layer's) is an emulated MMIO access: QD1 ran at
    # 1.8-4.7k IOPS on the HPET, 6.2-8.0k on the TSC, with the spread
    # from boot to boot.  KVM guests use kvm-clock, never the HPET.
    words = ["console=ttyS0", "quiet", "panic=-1", "tsc=reliable",
             "vbp.timeout=%d" % timeout, "vbp.job_timeout=%d" % job_timeout]
    if sync:
        words.append("vbp.sync=1")
    if blk_params:
        words.append("vbp.blk_params=" + blk_params)
    return " ".join(words + list(extra))


def make_disk(backend, size, path=None, disk_dir="/dev/shm", aio="io_uring",
              direct=True, prealloc="metadata", node="disk0",
              qemu_img=paths.QEMU_IMG):
    """Creates the image (unless @path is given) and returns (blockdev,
    path): raw or qcow2 over a file, or null-co (path None)."""
    cache = {"direct": direct, "no-flush": False}
    if backend == "null":
        return {"driver": "null-co", "node-name": node, "size": size,
                "read-zeroes": True}, None
    if not path:
        path = os.path.join(disk_dir, "vbp-%d-%s.img" % (os.getpid(),
                                                        backend))
        if backend == "raw":
            with open(path, "wb") as f:
                f.truncate(size)
        else:
            subprocess.run([qemu_img, "create", "-q", "-f", "qcow2",
                            "-o", "preallocation=" + prealloc, path,
                            str(size)], check=True)
    proto = {"driver": "file", "filename": path, "aio": aio, "cache": cache}
    return {"driver": "raw" if backend == "raw" else "qcow2",
            "node-name": node, "file": proto, "cache": cache}, path


def parse_props(items):
    """['k=v,k=v', '{json}', ...] -> dict; values that parse as JSON
    become JSON, others strings.  The -device QEMU gets is JSON, so a
    boolean property takes true/false (on/off is a string there: right for
    OnOffAuto properties such as write-cache, refused for booleans)."""
    props = {}
    for item in items:
        if item.lstrip().startswith("{"):
            props.update(json.loads(item))
            continue
        for kv in item.split(","):
            k, _, v = kv.partition("=")
            try:
                props[k] = json.loads(v)
            except ValueError:
                props[k] = v
    return props


def device_json(driver, iothreads, num_queues=0, mapping="vq",
                mapping_json=None, props=(), drive="disk0", dev_id="disk0"):
    """-device of the disk: queue i on IOThread i % N (mapping "vq"), all
    on the first ("single"), or none ("none")."""
    dev = {"driver": driver, "id": dev_id, "drive": drive}
    extra = parse_props(props)
    if num_queues:
        dev["num-queues"] = num_queues
    nq = extra.get("num-queues", num_queues) or 1
    if mapping_json:
        dev["iothread-vq-mapping"] = json.loads(mapping_json)
    elif iothreads and mapping == "vq":
        dev["iothread-vq-mapping"] = [
            {"iothread": iot, "vqs": [q for q in range(nq)
                                      if q % len(iothreads) == i]}
            for i, iot in enumerate(iothreads) if i < nq]
    elif iothreads and mapping == "single":
        dev["iothread"] = iothreads[0]
    dev.update(extra)
    return dev


def qemu_argv(kernel, initrd, append, blockdev, device, iothreads=(),
              iothread_props=None, smp=2, mem="1G", qemu=paths.QEMU,
              pre_device=(), extra=()):
    """QEMU's command line for the guest (console and QMP: see Qemu)."""
    argv = [qemu, "-name", "vm,debug-threads=on", "-machine", "q35",
            "-accel", "tcg", "-smp", str(smp), "-m", mem, "-nodefaults",
            "-display", "none", "-no-reboot", "-kernel", kernel,
            "-initrd", initrd, "-append", append]
    for iot in iothreads:
        obj = {"qom-type": "iothread", "id": iot}
        obj.update(iothread_props or {})
        argv += ["-object", json.dumps(obj)]
    argv += ["-blockdev", json.dumps(blockdev)] + list(pre_device)
    return argv + ["-device", json.dumps(device)] + list(extra)


def until(probe, done, timeout, interval=0.05):
    """Calls @probe() until done(its value) or @timeout s; returns the last
    value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _die_with_parent():
    """In the child before exec: SIGKILL when the test dies, so that no
    QEMU outlives it even if it is killed outright."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class Qemu:
    """One QEMU process.  Its stderr goes to DIR/NAME.stderr (qemu.stderr
    without a name); QMP is on DIR/NAME-qmp.sock (.qmp, connected by
    connect()), a second monitor on DIR/NAME-qmp-user.sock is free for
    other clients (one client at a time each); the guest's ttyS0 is on
    stdio (serial="stdio") or on DIR/NAME-serial.sock ("socket"), read by
    @console (a Console of its own writing DIR/NAME-serial.log when
    None).  Without a name the files have no "NAME-" prefix."""

    def __init__(self, argv, rundir, name="", serial="stdio",
                 console=None):
        self.name, self.rundir = name or "qemu", rundir
        pre = name + "-" if name else ""
        self.sock = lambda what: os.path.join(rundir, "%s%s.sock" %
                                              (pre, what))
        for what in ("qmp", "qmp-user", "serial"):
            if os.path.exists(self.sock(what)):
                os.unlink(self.sock(what))
        self.stderr_path = os.path.join(rundir, self.name + ".stderr")
        self.stderr = open(self.stderr_path, "w")
        self.serial = serial
        if serial == "stdio":
            ser = "stdio,id=ser0,signal=off"
        else:
            ser = "socket,id=ser0,path=%s,server=on,wait=off" % \
                self.sock("serial")
        self.argv = list(argv) + [
            "-chardev", ser, "-serial", "chardev:ser0",
            "-qmp", "unix:%s,server=on,wait=off" % self.sock("qmp"),
            "-qmp", "unix:%s,server=on,wait=off" % self.sock("qmp-user")]
        self.console = console or Console(os.path.join(
            rundir, pre + "serial.log"))
        self.source = None
        self.qmp = None
        self.killed = False
        pipe = subprocess.PIPE if serial == "stdio" else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv, stdin=pipe, stdout=pipe if serial == "stdio" else
            self.stderr, stderr=self.stderr, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        if serial == "stdio":
            self.source = self.console.attach(pipe_source(self.proc))

    def connect(self, timeout=30):
        """QMP (and the serial socket); OSError with QEMU's stderr when
        it does not come up."""
        try:
            self.qmp = QMP(self.sock("qmp"), timeout)
            if self.source is None:
                self.source = self.console.attach(socket_source(
                    self.sock("serial"), timeout, self.name))
        except qmp.Error as e:
            # QEMU may take the connection and exit before its greeting
            # (a bad -device property): say what it printed
            self.proc.poll()
            raise OSError("%s: no QMP (%s: %s); QEMU %s" % (
                self.name, type(e).__name__, e, self.stderr_text() or
                "exited %s" % self.proc.returncode)) from None
        return self.qmp

    def stderr_text(self, n=2000):
        try:
            with open(self.stderr_path) as f:
                return f.read().strip()[-n:]
        except OSError:
            return ""

    def stats(self, path="/machine/peripheral/disk0"):
        """The device's stats (a list, one dict a queue)."""
        return self.qmp.cmd("qom-get", {"path": path, "property": "stats"})

    def status(self):
        return self.qmp.cmd("query-status")["status"]

    def block_active(self):
        """{node-name: active} of every block node."""
        return {n.get("node-name"): n.get("active") for n in
                self.qmp.cmd("query-named-block-nodes", {"flat": True})}

    def queue_status(self, nq, path="/machine/peripheral/disk0"):
        """x-query-virtio-queue-status of queues 0..nq-1 (try_cmd)."""
        return [self.qmp.try_cmd("x-query-virtio-queue-status", {
            "path": path + "/virtio-backend", "queue": i})
            for i in range(nq)]

    def stop(self, timeout=10, quit=False):
        """Waits for QEMU to exit (after "quit" if @quit), then ends it;
        returns its exit status."""
        if quit and self.proc.poll() is None and self.qmp:
            self.qmp.try_cmd("quit")
        self.killed = end_process(self.proc, timeout) or self.killed
        if self.qmp:
            self.qmp.close()
        self.stderr.close()
        return self.proc.returncode
