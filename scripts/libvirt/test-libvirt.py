#!/usr/bin/python3
"""libvirt drives virtio-blk-poll with pinned iothreads: an end-to-end test.

Runs as root on a Debian 12 host (CI: a clean machine, no init system
needed).  What it does:

 1. Installs libvirt from bookworm-backports by package name when it is
    missing (scripts/setup-host.sh apt sets up the suite; see LIBVIRT_PKGS
    for why every libvirt package is named with its suite).
 2. Starts its own virtlogd and libvirtd (`-d`, with pid files) in a
    private mount namespace (unshare -m): a private copy of /etc/libvirt
    with security_driver = "none" in qemu.conf, and private /run/libvirt,
    /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, all under
    the work directory.  Nothing on the host's /etc or /var changes; the
    daemons are stopped by pid at the end and the test checks that no
    process is left.
 3. Bad domain XML (an iothread id in the queue mapping that does not
    exist; more queues mapped than the disk has) must fail with a clear
    error and leave no domain running and no QEMU process.
 4. Defines a TCG domain (type='qemu') whose <emulator> is the QEMU this
    project built: 2 vCPUs, <iothreads>2</iothreads> pinned to different
    host CPUs (<iothreadpin>), vCPUs pinned too, a raw virtio disk with
    cache='none' io='io_uring' queues='2' whose queue k is mapped to
    iothread k+1, turned into virtio-blk-poll-pci by <qemu:override>.
    The test guest (build/guest) boots from <kernel>/<initrd>; its serial
    console is a unix socket (plus a log file) the test talks to.
 5. The guest runs fio (4k randwrite, verify=crc32c) pinned to vCPU 0,
    then to vCPU 1 (blk-mq maps queue k to vCPU k), then, after
    `virsh iothreadpin --live` moved iothread 1 to the other CPU, on
    vCPU 0 again.  Around each phase the guest stops at a marker and the
    test takes snapshots: per-queue device counters (qom-get stats), CPU
    time and last CPU of each iothread, virsh domblkstat.
 6. Checks: virsh iothreadinfo equals the XML; Cpus_allowed_list of each
    query-iothreads thread equals its cpuset; each queue is polled by the
    iothread libvirt mapped it to (stats thread-id); while the guest does
    I/O from vCPU k only queue k's counters and iothread grow; iothreadpin
    --live moves the polling thread; qom-get shows virtio-blk-poll-pci and
    the iothread-vq-mapping libvirt asked for; domblkstat reports the I/O;
    fio verify has no errors; guest power-off and virsh destroy leave no
    QEMU process or thread.

Also checked: the device's raw io_uring fast path serves the disk (stats
"path"); it does not with libvirt 11.x, which attaches a raw disk without
a format node (docs/libvirt.md, "Known problems"): --allow-block-layer
reports that as KNOWN instead of FAIL.

Prints one line per check (PASS/FAIL, INFO lines with the measured
counters) and "N passed, N failed"; exit status 1 when a check failed.
Every external command and every wait has a timeout, and the whole run a
global one (--timeout); cleanup (destroy, undefine, daemons stopped by
pid, leftovers checked) runs in `finally`, also on SIGTERM/SIGINT.

Usage: scripts/libvirt/test-libvirt.py [--keep] [--workdir DIR] [-v]
       [--allow-block-layer] [--no-install] [--suite bookworm]
"""
import argparse
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from xml.sax.saxutils import escape, quoteattr

sys.dont_write_bytecode = True        # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
QEMU = os.path.join(ROOT, "build", "qemu", "build", "qemu-system-x86_64")
GUEST_DIR = os.path.join(ROOT, "build", "guest")
SETUP_HOST = os.path.join(ROOT, "scripts", "setup-host.sh")

# run-guest.py's helpers (console markers, fio JSON, thread times) and
# mkcpio.py for the per-run archive with /job/run.sh.
_spec = importlib.util.spec_from_file_location(
    "run_guest", os.path.join(ROOT, "scripts", "guest", "run-guest.py"))
rg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rg)
mkcpio = rg.mkcpio
from qmp import connect_unix  # noqa: E402  (scripts/qmp.py, on rg's path)

# Every libvirt package comes from bookworm-backports (11.x: queue to
# iothread mapping needs libvirt >= 10.0).  They depend on each other with
# "= version", and apt takes a dependency from the default release
# (bookworm, 9.0) unless it is named with its suite too, so all of them
# are named.  libvirt-daemon-driver-qemu also pulls qemu-system-x86 (7.2,
# from bookworm; unused here, the domain names our emulator).
BPO = "bookworm-backports"
LIBVIRT_PKGS = [
    "libvirt-daemon-system", "libvirt-clients", "libvirt-daemon",
    "libvirt-daemon-driver-qemu", "libvirt0", "libvirt-common",
    "libvirt-daemon-common", "libvirt-daemon-log",
    "libvirt-daemon-config-network", "libvirt-daemon-config-nwfilter",
    "libvirt-daemon-driver-network", "libvirt-daemon-driver-nodedev",
    "libvirt-daemon-driver-nwfilter", "libvirt-daemon-driver-secret",
    "libvirt-daemon-driver-storage",
]

# The private mounts of the daemons' namespace: host path -> work subdir.
PRIVATE_DIRS = [("/etc/libvirt", "etc"), ("/run/libvirt", "run"),
                ("/var/lib/libvirt", "lib"), ("/var/cache/libvirt", "cache"),
                ("/var/log/libvirt", "log")]

IOTHREAD_PIN = {1: "0", 2: "1"}       # <iothreadpin>: iothread -> host CPUs
VCPU_PIN = {0: "1", 1: "0"}           # <vcpupin>: vCPU k away from queue k's
                                      # poller (2 host CPUs: can't avoid all
                                      # sharing, see docs/libvirt.md)
QUEUE_IOTHREAD = {0: 1, 1: 2}         # disk queue -> iothread id
NQUEUES = 2
POLL_IDLE_NS = 100000                 # a device property of its own, set
                                      # through <qemu:override> too
DISK_SIZE = 256 << 20
PHASE_SIZE = 64 << 20                 # each fio phase has its own region


class Abort(Exception):
    """The test cannot go on (the checks so far are still reported)."""


class GlobalTimeout(BaseException):
    """--timeout expired (SIGALRM), or SIGTERM/SIGINT.  Not an OSError
    (TimeoutError is), so that no `except OSError` on the way swallows
    it; the cleanup in `finally` runs either way."""


def log(msg):
    print("test-libvirt: %s" % msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- checks
class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.known = 0

    def check(self, name, ok, detail="", known=False):
        """known: a failure is reported (KNOWN) but not counted."""
        word = "PASS" if ok else "KNOWN" if known else "FAIL"
        if ok:
            self.passed += 1
        elif known:
            self.known += 1
        else:
            self.failed += 1
        print("%s %s%s" % (word, name, ": " + detail if detail else ""),
              flush=True)
        return ok

    def info(self, text):
        print("INFO %s" % text, flush=True)


def run(argv, timeout=60, check=False, input=None, env=None):
    """subprocess.run with a timeout that never hangs: a command that
    outlives it is killed and reported as rc 124."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, input=input, env=env)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else \
            (e.stdout or "")
        p = subprocess.CompletedProcess(argv, 124, out,
                                        "timed out after %ss" % timeout)
    except OSError as e:
        p = subprocess.CompletedProcess(argv, 127, "", str(e))
    if check and p.returncode != 0:
        raise Abort("%s failed (rc %d): %s" % (" ".join(argv), p.returncode,
                                              (p.stderr or p.stdout).strip()))
    return p


# ------------------------------------------------------------ installing
def pkg_installed(name):
    p = run(["dpkg-query", "-W", "-f=${Status} ${Version}", name], 20)
    return p.returncode == 0 and "install ok installed" in p.stdout, \
        p.stdout.split()[-1] if p.stdout.strip() else ""


def libvirt_missing():
    missing = []
    for name in ("libvirt-daemon", "libvirt-daemon-driver-qemu",
                 "libvirt-clients"):
        ok, _ = pkg_installed(name)
        if not ok:
            missing.append(name)
    for tool in ("virsh", "libvirtd", "virtlogd"):
        if not shutil.which(tool, path="/usr/bin:/usr/sbin:/bin:/sbin"):
            missing.append(tool)
    return missing


def install_libvirt(suite):
    """Installs libvirt by package name from `suite`, without starting
    services (a temporary policy-rc.d when the host has none)."""
    if suite == BPO:
        run([SETUP_HOST, "apt"], 600, check=True)
        pkgs = ["%s/%s" % (p, suite) for p in LIBVIRT_PKGS]
    else:
        # The default release (bookworm: 9.0): apt resolves the rest.
        pkgs = LIBVIRT_PKGS[:4]
    policy = "/usr/sbin/policy-rc.d"
    made_policy = False
    if not os.path.exists(policy):
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# test-libvirt.py: no service starts\n"
                    "exit 101\n")
        os.chmod(policy, 0o755)
        made_policy = True
    try:
        log("installing %s" % " ".join(pkgs))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["nice", "apt-get", "install", "-y", "-q",
             "--no-install-recommends"] + pkgs, 1200, check=True, env=env)
    finally:
        if made_policy:
            os.unlink(policy)


# --------------------------------------------------------------- daemons
class Daemons:
    """virtlogd + libvirtd in a private mount namespace, private config."""

    def __init__(self, work, verbose=False):
        self.work = work
        self.verbose = verbose
        self.pids = {}
        self.mntns = None
        self.made_dirs = []
        self.sock = os.path.join(work, "run", "libvirt-sock")
        self.uri = "qemu:///system?socket=" + self.sock

    def configure(self):
        for _, sub in PRIVATE_DIRS[1:]:
            os.makedirs(os.path.join(self.work, sub), exist_ok=True)
            os.chmod(os.path.join(self.work, sub), 0o755)
        etc = os.path.join(self.work, "etc")
        shutil.copytree("/etc/libvirt", etc, symlinks=True)
        # No network autostarts: the test needs none (no dnsmasq, bridges
        # or firewall rules left behind).
        shutil.rmtree(os.path.join(etc, "qemu", "networks", "autostart"),
                      ignore_errors=True)
        with open(os.path.join(etc, "qemu.conf"), "a") as f:
            f.write("\n# test-libvirt.py\n"
                    'security_driver = "none"\n'   # no SELinux/AppArmor here
                    "namespaces = [ ]\n"            # no per-domain /dev ns
                    "remember_owner = 0\n"          # no xattrs left on files
                    'stdio_handler = "logd"\n')
        logs = os.path.join(self.work, "log")
        with open(os.path.join(etc, "libvirtd.conf"), "a") as f:
            f.write('\n# test-libvirt.py\nauth_unix_ro = "none"\n'
                    'auth_unix_rw = "none"\n'
                    'log_outputs = "%d:file:%s/libvirtd.log"\n' %
                    (1 if self.verbose else 3, logs))
            if self.verbose:
                # the QEMU driver's debug messages, QMP traffic included
                f.write('log_filters = "1:qemu.qemu_process 1:qemu.qemu_monitor 3:*"\n')
        with open(os.path.join(etc, "virtlogd.conf"), "a") as f:
            f.write('\n# test-libvirt.py\nlog_outputs = "3:file:%s/'
                    'virtlogd.log"\n' % logs)

    def start(self):
        self.configure()
        for host, _ in PRIVATE_DIRS:
            if not os.path.isdir(host):
                os.makedirs(host)
                self.made_dirs.append(host)
        w = self.work
        mounts = "".join("mount --bind %s/%s %s\n" % (w, sub, host)
                         for host, sub in PRIVATE_DIRS)
        script = ("set -e\n" + mounts +
                  "virtlogd -d -p %s/virtlogd.pid\n"
                  "libvirtd -d -p %s/libvirtd.pid\n" % (w, w))
        p = run(["unshare", "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", script], 90)
        for name in ("virtlogd", "libvirtd"):
            try:
                with open(os.path.join(w, name + ".pid")) as f:
                    self.pids[name] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        if p.returncode != 0 or "libvirtd" not in self.pids:
            raise Abort("starting virtlogd/libvirtd failed (rc %d): %s%s" %
                        (p.returncode, p.stderr.strip(), self.log_tail()))
        self.mntns = os.readlink("/proc/%d/ns/mnt" % self.pids["libvirtd"])
        deadline = time.monotonic() + 60
        while True:
            v = run(["virsh", "-c", self.uri, "uri"], 20)
            if v.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise Abort("libvirtd does not answer: %s%s" %
                            (v.stderr.strip(), self.log_tail()))
            time.sleep(0.5)

    def log_tail(self, n=15):
        path = os.path.join(self.work, "log", "libvirtd.log")
        try:
            with open(path) as f:
                lines = f.read().splitlines()[-n:]
        except OSError:
            return ""
        return "\n  libvirtd.log: " + "\n  ".join(lines) if lines else ""

    def ns_pids(self):
        """Processes still in the daemons' mount namespace."""
        out = []
        if not self.mntns:
            return out
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/ns/mnt" % d) == self.mntns:
                    out.append(int(d))
            except OSError:
                pass
        return out

    def stop(self):
        """SIGTERM by pid (libvirtd first), SIGKILL after 15 s."""
        for name in ("libvirtd", "virtlogd"):
            pid = self.pids.get(name)
            if not pid or not pid_alive(pid):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                continue
            if not wait_gone(pid, 15):
                log("%s (pid %d) ignored SIGTERM, killing it" % (name, pid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                wait_gone(pid, 5)
        for host in reversed(self.made_dirs):
            try:
                os.rmdir(host)
            except OSError:
                pass


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def wait_gone(pid, timeout):
    """Waits until pid has exited (a zombie counts as gone: the daemons
    are pid 1's children once they daemonized, and pid 1 reaps them).
    The test must not become a child subreaper: libvirt waits for its
    daemonized QEMU capability probes to vanish, and their zombies would
    then be ours, unreaped while we wait for virsh."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --------------------------------------------------------------- virsh
class Virsh:
    def __init__(self, uri):
        self.uri = uri

    def __call__(self, *args, timeout=60):
        return run(["virsh", "-c", self.uri] + list(args), timeout)

    def ok(self, *args, timeout=60):
        p = self(*args, timeout=timeout)
        if p.returncode != 0:
            raise Abort("virsh %s: %s" % (" ".join(args),
                                          (p.stderr or p.stdout).strip()))
        return p.stdout

    def qmp(self, dom, cmd, args=None, timeout=30):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        out = self.ok("qemu-monitor-command", dom, json.dumps(req),
                      timeout=timeout)
        rsp = json.loads(out)
        if "error" in rsp:
            raise Abort("%s: %s" % (cmd, rsp["error"].get("desc")))
        return rsp["return"]

    def domstate(self, dom):
        p = self("domstate", dom, timeout=20)
        return p.stdout.strip() if p.returncode == 0 else None

    def iothreadinfo(self, dom):
        """{iothread id: 'cpu list'} from `virsh iothreadinfo`."""
        out = self.ok("iothreadinfo", dom)
        res = {}
        for line in out.splitlines():
            m = re.match(r"\s*(\d+)\s+(\S+)\s*$", line)
            if m:
                res[int(m.group(1))] = m.group(2)
        return res

    def domblkstat(self, dom, dev="vda"):
        out = self.ok("domblkstat", dom, dev)
        res = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2].lstrip("-").isdigit():
                res[parts[1]] = int(parts[2])
        return res


# ------------------------------------------------------------- threads
def cpus_allowed(tid):
    try:
        with open("/proc/%d/status" % tid) as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def thread_sample(tid):
    """(run_ns, last CPU) of one thread, or None when it is gone."""
    try:
        with open("/proc/%d/schedstat" % tid) as f:
            run_ns = int(f.read().split()[0])
        with open("/proc/%d/stat" % tid) as f:
            st = f.read()
    except (OSError, ValueError, IndexError):
        return None
    fields = st[st.rindex(")") + 2:].split()
    return run_ns, int(fields[36])       # field 39: processor


class Sampler:
    """Samples the iothreads every 20 ms while a phase runs: on which CPU
    each ran (only samples where it ran since the last one count)."""

    def __init__(self, tids):
        self.tids = tids                  # {iothread id: tid}
        self.cpus = {k: {} for k in tids}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        last = {k: thread_sample(t) for k, t in self.tids.items()}
        while not self.stop_ev.wait(0.02):
            for k, tid in self.tids.items():
                s = thread_sample(tid)
                if s and last[k] and s[0] > last[k][0]:
                    self.cpus[k][s[1]] = self.cpus[k].get(s[1], 0) + 1
                last[k] = s

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(5)


# ------------------------------------------------------------- console
class Console:
    """The guest's ttyS0: a unix socket QEMU listens on (libvirt
    <serial type='unix'><source mode='bind'>).  Lines go to a queue and
    to a log file; replies let the guest go on after a marker."""

    def __init__(self, path, logpath, timeout=30):
        try:
            self.sock = connect_unix(path, timeout, interval=0.1)
        except OSError:
            raise Abort("cannot connect to the serial socket %s" %
                        path) from None
        self.lines = queue.Queue()
        self.tail = []
        self.log = open(logpath, "w")
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _recv(self):
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def _reader(self):
        rg.read_console_lines(self._recv, self.log, self.lines.put)
        self.lines.put(None)

    def expect(self, deadline, kind, name=None, collect=None):
        """Reads up to ===VBP-kind name===.  A guest failure report
        (===VBP-FAILED ...===), EOF or the deadline raise Abort."""
        what = "===VBP-%s%s===" % (kind, " " + name if name else "")
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0))
            except queue.Empty:
                raise Abort("timeout waiting for %s on the console%s" %
                            (what, self.tail_text())) from None
            if line is None:
                raise Abort("console closed (QEMU gone) waiting for %s%s" %
                            (what, self.tail_text()))
            self.tail = (self.tail + [line])[-40:]
            m = rg.MARK.search(line)
            if m and m.group(1) == "FAILED":
                report = []
                while len(report) < 400:
                    try:
                        more = self.lines.get(timeout=10)
                    except queue.Empty:
                        break
                    if more is None or "===VBP-FAILED-END===" in more:
                        break
                    report.append(more)
                raise Abort("guest reported failure: %s\n  %s" %
                            (m.group(2), "\n  ".join(report[-60:])))
            if m and m.group(1) == kind and (name is None or
                                             m.group(2) == name):
                return m.group(2)
            if collect is not None:
                collect.append(line)

    def tail_text(self, n=15):
        return "\n  console: " + "\n  ".join(self.tail[-n:]) \
            if self.tail else ""

    def reply(self):
        self.sock.sendall(b"go\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)
        self.log.close()


# ----------------------------------------------------------- the guest
FIO_JOB = """[global]
filename=/dev/vda
direct=1
ioengine=io_uring
bs=4k
iodepth=16
offset=%(offset)d
size=%(size)d

[randwrite-verify]
rw=randwrite
io_size=%(io_size)d
verify=crc32c
do_verify=1
verify_fatal=1
"""

# name, guest vCPU (taskset mask 1 << vcpu), disk region
PHASES = [("vcpu0", 0, 0), ("vcpu1", 1, 1), ("vcpu0-moved", 0, 2)]


def make_initrd(base, path, io_size, job_timeout):
    """The per-run archive (/job/run.sh + fio jobs) before the base
    initramfs, as run-guest.py does."""
    with open(path, "wb") as out, open(base, "rb") as f:
        w = mkcpio.CpioWriter(out)
        w.add_dir("job")
        script = ["# generated by test-libvirt.py",
                  "for q in /sys/block/vd*/queue/scheduler; do "
                  "echo none > $q; done"]
        for name, vcpu, region in PHASES:
            job = FIO_JOB % {"offset": region * PHASE_SIZE,
                             "size": PHASE_SIZE, "io_size": io_size}
            w.add_file("job/%s.fio" % name, job.encode())
            # fio pinned to one vCPU: blk-mq sends its requests to that
            # vCPU's hardware queue (queue k for vCPU k).
            script.append(
                "rm -f /tmp/vbp/%(n)s.json; vbp_cmd %(n)s %(t)d -- "
                "taskset %(mask)x fio --output-format=json "
                "--output=/tmp/vbp/%(n)s.json --eta=never /job/%(n)s.fio" %
                {"n": name, "t": job_timeout, "mask": 1 << vcpu})
        w.add_file("job/run.sh", ("\n".join(script) + "\n").encode(), 0o755)
        w.add_file("job/ndisks", b"1\n")
        w.close()
        shutil.copyfileobj(f, out)


def domain_xml(name, work, kernel, initrd, disk, emulator, cmdline,
               mapping=None, queues=NQUEUES, iothreads=2):
    """The test's domain.  mapping: {iothread id: [queue ids]}."""
    if mapping is None:
        mapping = {}
        for q, iot in QUEUE_IOTHREAD.items():
            mapping.setdefault(iot, []).append(q)
    iot_map = "".join(
        "          <iothread id='%d'>%s</iothread>\n" %
        (iot, "".join("<queue id='%d'/>" % q for q in qs))
        for iot, qs in sorted(mapping.items()))
    a = quoteattr
    return """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%(name)s</name>
  <memory unit='MiB'>512</memory>
  <vcpu placement='static'>2</vcpu>
  <iothreads>%(niot)d</iothreads>
  <iothreadids>
%(iotids)s  </iothreadids>
  <cputune>
%(vcpupin)s%(iotpin)s  </cputune>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>%(cmdline)s</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%(emulator)s</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='io_uring' queues='%(queues)d'>
        <iothreads>
%(iotmap)s        </iothreads>
      </driver>
      <source file=%(disk)s/>
      <target dev='vda' bus='virtio'/>
      <alias name='ua-disk0'/>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='unix'>
      <source mode='bind' path=%(sock)s/>
      <log file=%(serlog)s append='off'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <qemu:override>
    <qemu:device alias='ua-disk0'>
      <qemu:frontend>
        <qemu:property name='driver' type='string' value='virtio-blk-poll-pci'/>
        <qemu:property name='poll-idle-ns' type='unsigned' value='%(idle)d'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
""" % {"name": escape(name), "niot": iothreads,
       "iotids": "".join("    <iothread id='%d'/>\n" % i
                         for i in range(1, iothreads + 1)),
       "vcpupin": "".join("    <vcpupin vcpu='%d' cpuset='%s'/>\n" % kv
                          for kv in sorted(VCPU_PIN.items())),
       "iotpin": "".join("    <iothreadpin iothread='%d' cpuset='%s'/>\n" %
                         kv for kv in sorted(IOTHREAD_PIN.items())
                         if kv[0] <= iothreads),
       "kernel": escape(kernel), "initrd": escape(initrd),
       "cmdline": escape(cmdline), "emulator": escape(emulator),
       "queues": queues, "iotmap": iot_map, "disk": a(disk),
       "sock": a(serial_sock(work, name)),
       "serlog": a(os.path.join(work, "chr", name + ".log")),
       "idle": POLL_IDLE_NS}


def serial_sock(work, name):
    """The guest console socket of domain `name` (QEMU listens)."""
    return os.path.join(work, "chr", name + ".sock")


def qemu_procs(name):
    """pids of QEMU processes of domain `name` (by its -name guest=)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(b"guest=%s," % name.encode()) or
               a == b"guest=" + name.encode() for a in argv):
            if pid_alive(int(d)):
                pids.append(int(d))
    return pids


def cgroup_dirs():
    """Every directory under /sys/fs/cgroup/*/machine*."""
    out = set()
    try:
        ctrls = os.listdir("/sys/fs/cgroup")
    except OSError:
        return out
    for ctrl in ctrls:
        base = os.path.join("/sys/fs/cgroup", ctrl)
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for n in names:
            if n.startswith("machine") and os.path.isdir(
                    os.path.join(base, n)):
                for dirpath, _, _ in os.walk(os.path.join(base, n)):
                    out.add(dirpath)
    return out


def remove_new_cgroups(before):
    """rmdir (deepest first) the cgroup directories made since `before`;
    returns those that could not be removed."""
    new = sorted(cgroup_dirs() - before, key=lambda d: -d.count("/"))
    left = []
    for d in new:
        try:
            os.rmdir(d)
        except OSError:
            left.append(d)
    return left


def fmt_stats(stats):
    keys = ("path", "requests", "kicks", "notifies", "notifies-suppressed",
            "passes", "completions", "wakeups", "fast-rw", "fallback-rw")

    def val(v):
        return json.dumps(v) if isinstance(v, str) else v
    return "; ".join(
        "q%s[%s tid %s] %s" % (q.get("queue"), q.get("iothread"),
                               q.get("thread-id"),
                               " ".join("%s=%s" % (k, val(q[k]))
                                        for k in keys if k in q))
        for q in stats)


# ------------------------------------------------------------------ test
class Test:
    def __init__(self, args):
        self.args = args
        self.c = Checks()
        self.work = None
        self.daemons = None
        self.virsh = None
        self.domains = set()          # defined by us, undefined at the end
        self.names = set()            # every domain name we used
        self.cgroups_before = cgroup_dirs()
        self.qemu_pids = set()

    # ---- set-up
    def prepare(self):
        a = self.args
        if os.geteuid() != 0:
            raise Abort("run as root (libvirtd, mounts, apt-get)")
        if not os.access(a.qemu, os.X_OK):
            raise Abort("%s not built (scripts/build.sh)" % a.qemu)
        meta_path = os.path.join(GUEST_DIR, "guest.json")
        if not os.path.exists(meta_path):
            log("building the test guest")
            run([os.path.join(ROOT, "scripts", "guest", "build-guest.sh")],
                900, check=True)
        with open(meta_path) as f:
            self.meta = json.load(f)
        missing = libvirt_missing()
        if missing:
            if a.no_install:
                raise Abort("libvirt missing (%s) and --no-install" %
                            ", ".join(missing))
            install_libvirt(a.suite)
            missing = libvirt_missing()
            if missing:
                raise Abort("still missing after install: %s" %
                            ", ".join(missing))
        _, self.libvirt_version = pkg_installed("libvirt-daemon")
        self.c.info("libvirt packages %s (libvirt-daemon), QEMU %s" %
                    (self.libvirt_version, a.qemu))
        m = re.match(r"(?:\d+:)?(\d+)\.", self.libvirt_version)
        if m and int(m.group(1)) < 10:
            self.c.info("WARNING: libvirt %s cannot map disk queues to "
                        "iothreads (needs >= 10.0): expect failures; %s has "
                        "11.x" % (self.libvirt_version, BPO))
        base = a.workdir or "/var/tmp"
        os.makedirs(base, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="vbp-libvirt-", dir=base)
        # QEMU runs as libvirt-qemu: it must reach the images and the
        # serial socket directory.
        os.chmod(self.work, 0o755)
        chr_dir = os.path.join(self.work, "chr")
        os.makedirs(chr_dir)
        os.chmod(chr_dir, 0o777)
        log("work directory %s" % self.work)

    def make_images(self):
        w = self.work
        self.kernel = os.path.join(w, "vmlinuz")
        shutil.copyfile(self.meta["kernel"], self.kernel)
        self.initrd = os.path.join(w, "initrd")
        make_initrd(self.meta["initrd"], self.initrd, self.args.io_size,
                    self.args.job_timeout)
        self.disk = os.path.join(w, "disk.raw")
        with open(self.disk, "wb") as f:
            f.truncate(DISK_SIZE)
        # cache='none' opens the image with O_DIRECT (tmpfs refuses it on
        # Debian 12's kernel: --workdir on a disk file system then).
        try:
            fd = os.open(self.disk, os.O_RDWR | os.O_DIRECT)
            os.close(fd)
        except OSError as e:
            raise Abort("%s does not take O_DIRECT (%s): use --workdir on "
                        "another file system" % (w, e)) from None
        for p in (self.kernel, self.initrd, self.disk):
            os.chmod(p, 0o644)

    def cmdline(self):
        # The guest's watchdog covers boot and every phase.
        total = 60 + (len(PHASES) + 1) * (self.args.job_timeout + 60)
        return ("console=ttyS0 quiet panic=-1 vbp.sync=1 vbp.sync_timeout=120 "
                "vbp.timeout=%d vbp.job_timeout=%d" %
                (total, self.args.job_timeout))

    def xml(self, name, **kw):
        return domain_xml(name, self.work, self.kernel, self.initrd,
                          self.disk, self.args.qemu, self.cmdline(), **kw)

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ---- bad XML
    def bad_xml(self, label, mapping, expect_re):
        """define (or, when libvirt takes the XML, start) must fail with a
        clear error; no domain may be left running, no QEMU process."""
        name = "vbp-bad-%s-%d" % (label, os.getpid())
        self.names.add(name)
        path = self.write(name + ".xml", self.xml(name, mapping=mapping))
        p = self.virsh("define", path)
        stage = "define"
        err = (p.stderr or p.stdout).strip()
        if p.returncode == 0:
            self.domains.add(name)
            p = self.virsh("start", name, timeout=120)
            stage = "start"
            err = (p.stderr or p.stdout).strip()
        err1 = " ".join(err.split())
        self.c.check("bad XML (%s) is refused at %s with a clear error" %
                     (label, stage),
                     p.returncode != 0 and re.search(expect_re, err1, re.I),
                     err1[:300] or "rc %d, no error" % p.returncode)
        state = self.virsh.domstate(name)
        procs = qemu_procs(name)
        if p.returncode == 0:
            self.c.info("libvirt took the bad XML (%s) and started the "
                        "domain: destroying it" % label)
        else:
            self.c.check("bad XML (%s) leaves no running domain and no "
                         "QEMU" % label,
                         state in (None, "shut off") and not procs,
                         "state %s, QEMU pids %s" % (state, procs or "none"))
        if state not in (None, "shut off"):
            self.virsh("destroy", name, timeout=60)
        for pid in procs:
            self.qemu_pids.add(pid)
            wait_gone(pid, 30)
        if name in self.domains:
            self.virsh("undefine", name)
            self.domains.discard(name)

    # ---- the good domain
    def run_domain(self):
        v = self.virsh
        name = "vbp-libvirt-%d" % os.getpid()
        self.names.add(name)
        path = self.write("domain.xml", self.xml(name))
        v.ok("define", path)
        self.domains.add(name)
        p = v("start", "--paused", name, timeout=120)
        if not self.c.check("domain with pinned iothreads and a "
                            "virtio-blk-poll-pci disk starts",
                            p.returncode == 0,
                            (p.stderr or p.stdout).strip()[:400]):
            raise Abort("the domain did not start%s" %
                        self.qemu_log_tail(name))
        pid = self.qemu_pid(name)
        self.qemu_pids.add(pid)
        console = Console(serial_sock(self.work, name),
                          os.path.join(self.work, "serial.log"))
        try:
            self.first_boot(name, pid, console)
        finally:
            console.close()
        self.second_boot(name)

    def qemu_pid(self, name):
        path = os.path.join(self.work, "run", "qemu", name + ".pid")
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            procs = qemu_procs(name)
            if not procs:
                raise Abort("no QEMU process for %s" % name) from None
            return procs[0]

    def qemu_log_tail(self, name, n=15):
        try:
            with open(os.path.join(self.work, "log", "qemu",
                                   name + ".log")) as f:
                lines = f.read().splitlines()[-n:]
        except OSError:
            return ""
        return "\n  qemu log: " + "\n  ".join(lines)

    def static_checks(self, name, pid):
        """iothreadinfo, pinning, QOM type and mapping, who polls what."""
        v, c = self.virsh, self.c
        qv = v.qmp(name, "query-version")
        c.info("QEMU pid %d, version %s %s" % (
            pid, ".".join(str(qv["qemu"][k]) for k in ("major", "minor",
                                                        "micro")),
            qv.get("package", "").strip()))
        info = v.iothreadinfo(name)
        c.check("virsh iothreadinfo equals the XML's <iothreadpin>",
                info == IOTHREAD_PIN, "got %s, XML %s" % (info, IOTHREAD_PIN))
        iots = v.qmp(name, "query-iothreads")
        tids = {}
        for it in iots:
            m = re.fullmatch(r"iothread(\d+)", it["id"])
            if m:
                tids[int(m.group(1))] = it["thread-id"]
        c.check("query-iothreads lists iothread1 and iothread2 (no extra "
                "threads behind libvirt's back)",
                sorted(tids) == [1, 2] and len(iots) == 2,
                ", ".join("%s tid %s" % (i["id"], i["thread-id"])
                          for i in iots))
        for iot, want in sorted(IOTHREAD_PIN.items()):
            got = cpus_allowed(tids.get(iot, -1))
            c.check("iothread%d (tid %s) Cpus_allowed_list equals its "
                    "iothreadpin cpuset" % (iot, tids.get(iot)),
                    got == want, "Cpus_allowed_list %s, cpuset %s" %
                    (got, want))
        vcpus = v.qmp(name, "query-cpus-fast")
        for cpu in vcpus:
            k = cpu["cpu-index"]
            got = cpus_allowed(cpu["thread-id"])
            c.check("vCPU %d (tid %s) Cpus_allowed_list equals its vcpupin "
                    "cpuset" % (k, cpu["thread-id"]), got == VCPU_PIN.get(k),
                    "Cpus_allowed_list %s, cpuset %s" % (got, VCPU_PIN.get(k)))
        self.vcpu_tids = [cpu["thread-id"] for cpu in vcpus]
        # The disk's QOM path: its alias under /machine/peripheral.
        periph = [p["name"] for p in v.qmp(name, "qom-list",
                                            {"path": "/machine/peripheral"})
                  if p.get("type", "").startswith("child<")]
        dev = "/machine/peripheral/ua-disk0"
        c.check("the disk is /machine/peripheral/ua-disk0 (its alias)",
                "ua-disk0" in periph, "peripherals: %s" % periph)
        dtype = v.qmp(name, "qom-get", {"path": dev, "property": "type"})
        c.check("qom-get: the disk's type is virtio-blk-poll-pci "
                "(<qemu:override>)", dtype == "virtio-blk-poll-pci",
                "type %s" % dtype)
        mapping = v.qmp(name, "qom-get", {"path": dev,
                                         "property": "iothread-vq-mapping"})
        want = [{"iothread": "iothread%d" % iot,
                 "vqs": sorted(q for q, i in QUEUE_IOTHREAD.items()
                               if i == iot)}
                for iot in sorted(set(QUEUE_IOTHREAD.values()))]
        norm = sorted(({"iothread": m.get("iothread"),
                        "vqs": sorted(m.get("vqs", []))} for m in mapping),
                      key=lambda m: m["iothread"]) \
            if isinstance(mapping, list) else mapping
        c.check("qom-get: iothread-vq-mapping is what the XML asked for",
                norm == want, "got %s" % json.dumps(mapping))
        idle = v.qmp(name, "qom-get", {"path": dev,
                                      "property": "poll-idle-ns"})
        c.check("qom-get: poll-idle-ns is the <qemu:override> value",
                idle == POLL_IDLE_NS, "poll-idle-ns %s" % idle)
        nq = v.qmp(name, "qom-get", {"path": dev, "property": "num-queues"})
        c.check("qom-get: num-queues is the XML's queues='%d'" % NQUEUES,
                nq == NQUEUES, "num-queues %s" % nq)
        stats = v.qmp(name, "qom-get", {"path": dev, "property": "stats"})
        ok = isinstance(stats, list) and len(stats) == NQUEUES
        detail = []
        for q in stats if ok else []:
            iot = QUEUE_IOTHREAD.get(q.get("queue"))
            detail.append("queue %s: %s tid %s" % (q.get("queue"),
                                                  q.get("iothread"),
                                                  q.get("thread-id")))
            ok = ok and q.get("iothread") == "iothread%s" % iot and \
                q.get("thread-id") == tids.get(iot)
        c.check("stats: queue k is polled by the thread of the iothread "
                "libvirt mapped it to (query-iothreads thread-id)",
                ok, "; ".join(detail) or repr(stats)[:300])
        return dev, tids

    def snapshot(self, name, dev, tids):
        v = self.virsh
        snap = {"stats": v.qmp(name, "qom-get", {"path": dev,
                                                "property": "stats"}),
                "blk": v.domblkstat(name),
                "threads": {k: thread_sample(t) for k, t in tids.items()},
                "vcpus": [thread_sample(t) for t in self.vcpu_tids],
                "t": time.monotonic()}
        return snap

    def phase(self, name, console, dom, dev, tids, vcpu, pre=None):
        """One fio phase between its READY and DONE markers."""
        c = self.c
        console.expect(time.monotonic() + 120, "READY", name)
        if pre:
            pre()
        before = self.snapshot(dom, dev, tids)
        console.reply()
        with Sampler(tids) as smp:
            console.expect(time.monotonic() + self.args.job_timeout + 60,
                           "DONE", name)
        after = self.snapshot(dom, dev, tids)
        console.reply()
        block = []
        console.expect(time.monotonic() + 60, "BEGIN", name)
        console.expect(time.monotonic() + 60, "END", name, collect=block)
        sec = rg.parse_block(block)
        fio, err = (rg.parse_json_section(sec["fio-json"])
                    if "fio-json" in sec else (None, "no fio output"))
        summ = rg.summarize_fio(fio) if fio else {"ios": 0}
        rc = int((sec.get("rc") or ["-1"])[0].strip() or -1)
        stderr = sec.get("stderr", [])
        verify = [ln for ln in stderr if ln.startswith("verify:") or
                  "verify failed" in ln]
        verify_n = len(verify) + sum(1 for j in (fio or {}).get("jobs", [])
                                     if j.get("error") == 84)
        ios = summ.get("ios", 0)
        wr = sum(j.get("write", {}).get("ios", 0)
                 for j in summ.get("jobs", []))
        rd = sum(j.get("read", {}).get("ios", 0)
                 for j in summ.get("jobs", []))
        c.check("[%s] fio (4k randwrite + crc32c verify, taskset vCPU %d) "
                "ran with no verify error" % (name, vcpu),
                rc == 0 and fio is not None and verify_n == 0 and
                not summ.get("job_errors") and wr > 0 and rd > 0,
                "rc %d, %d writes, %d verify reads, %d verify errors%s" %
                (rc, wr, rd, verify_n,
                 "" if fio else ", " + str(err)) +
                ("; stderr: " + " | ".join(stderr[-5:]) if rc else ""))
        d = rg.delta_stats(before["stats"], after["stats"]) or {"queues": []}
        c.info("[%s] per-queue counters (delta): %s" %
               (name, fmt_stats(d["queues"])))
        c.info("[%s] per-queue counters (total): %s" %
               (name, fmt_stats(after["stats"])))
        # Guest interrupts per queue vector, from the guest's own counts.
        irq0 = rg.parse_interrupts("\n".join(sec.get("irq-before", [])))
        irq1 = rg.parse_interrupts("\n".join(sec.get("irq-after", [])))
        girq = {k: v - irq0.get(k, 0) for k, v in sorted(irq1.items())
                if re.match(r"virtio\d+-req\.\d+$", k)}
        c.info("[%s] guest interrupts per queue: %s" % (name, girq))
        req = {q["queue"]: q.get("requests", 0) for q in d["queues"]}
        other = [q for q in req if q != vcpu]
        c.check("[%s] I/O from vCPU %d grows only queue %d's counters" %
                (name, vcpu, vcpu),
                req.get(vcpu, 0) > 0 and all(req[q] == 0 for q in other),
                "requests per queue %s" % req)
        # The raw io_uring fast path (docs/system/devices/virtio/virtio-blk-poll.rst)
        # should serve a raw file disk with cache='none' io='io_uring'.
        aq = [q for q in d["queues"] if q.get("queue") == vcpu]
        fast = aq[0].get("fast-rw", 0) if aq else 0
        path = aq[0].get("path") if aq else None
        c.check("[%s] queue %d's requests take the raw io_uring fast path" %
                (name, vcpu), path == "io_uring" and fast > 0,
                "path %s, fast-rw %s, fallback-rw %s" %
                (json.dumps(path), fast,
                 aq[0].get("fallback-rw") if aq else None),
                known=self.args.allow_block_layer)
        cpu = {}
        for k in tids:
            b, a = before["threads"][k], after["threads"][k]
            cpu[k] = (a[0] - b[0]) / 1e6 if a and b else None
        active = QUEUE_IOTHREAD[vcpu]
        idle = [k for k in tids if k != active]
        c.info("[%s] iothread CPU time (ms): %s; vCPU CPU time (ms): %s" %
               (name, ", ".join("iothread%d %.1f" % (k, cpu[k] or 0)
                                for k in sorted(cpu)),
                ", ".join("vcpu%d %.1f" % (i, (a[0] - b[0]) / 1e6)
                          for i, (b, a) in enumerate(zip(before["vcpus"],
                                                         after["vcpus"]))
                          if a and b)))
        ok = cpu.get(active) is not None and cpu[active] > 0 and all(
            cpu[k] is not None and cpu[k] <= max(0.05 * cpu[active], 20.0)
            for k in idle)
        c.check("[%s] only iothread%d (queue %d) accumulates CPU time" %
                (name, active, vcpu), ok,
                "iothread%d %.1f ms, %s" % (
                    active, cpu.get(active) or 0,
                    ", ".join("iothread%d %.1f ms" % (k, cpu[k] or 0)
                              for k in idle)))
        blk = {k: after["blk"].get(k, 0) - before["blk"].get(k, 0)
               for k in ("rd_req", "wr_req", "flush_operations",
                         "rd_bytes", "wr_bytes")}
        dev_req = sum(req.values())
        c.check("[%s] virsh domblkstat reports the I/O" % name,
                blk["wr_req"] >= wr and blk["rd_req"] >= rd and
                blk["wr_bytes"] >= wr * 4096 and
                blk["rd_req"] + blk["wr_req"] <= dev_req,
                "domblkstat delta %s; fio %d writes %d reads; device "
                "requests %d" % (blk, wr, rd, dev_req))
        return {"cpus": smp.cpus, "cpu_ms": cpu, "stats": d, "ios": ios,
                "after": after["stats"]}

    def first_boot(self, name, pid, console):
        v, c = self.virsh, self.c
        dev, tids = self.static_checks(name, pid)
        self.iothread_tids = dict(tids)
        v.ok("resume", name)
        dl = time.monotonic() + self.args.boot_timeout
        console.expect(dl, "BOOT")
        boot = []
        console.expect(dl, "BOOT-END", collect=boot)
        c.info("guest: %s" % "; ".join(ln for ln in boot
                                       if ln.startswith(("kernel", "disk",
                                                         "cpus"))))
        results = {}
        for pname, vcpu, _ in PHASES:
            pre = None
            if pname == "vcpu0-moved":
                def pre():
                    self.move_iothread(name, tids)
            results[pname] = self.phase(pname, console, name, dev, tids,
                                        vcpu, pre)
        # Where the polling thread of queue 0 ran, before and after the move.
        before_cpus = results["vcpu0"]["cpus"].get(1, {})
        after_cpus = results["vcpu0-moved"]["cpus"].get(1, {})
        c.info("iothread1 last-CPU samples while it ran: before the move %s,"
               " after %s" % (before_cpus, after_cpus))
        c.check("iothread1 ran only on CPU 0 before the move (its pin)",
                before_cpus and set(before_cpus) == {0},
                "samples per CPU %s" % before_cpus)
        c.check("after virsh iothreadpin 1 1 --live, iothread1 polls queue "
                "0 from CPU 1 only", after_cpus and set(after_cpus) == {1},
                "samples per CPU %s" % after_cpus)
        # (the guest powers off right after the last phase: the stats of
        # its "after" snapshot)
        stats = results["vcpu0-moved"]["after"]
        q0 = [q for q in stats if q.get("queue") == 0]
        c.check("after the move queue 0 is still polled by iothread1's "
                "thread", q0 and q0[0].get("thread-id") == tids[1],
                "queue 0 thread-id %s, iothread1 tid %s" %
                (q0[0].get("thread-id") if q0 else None, tids[1]))
        # The guest powers off after the last phase: a guest shutdown.
        console.expect(time.monotonic() + 60, "ALL-DONE")
        gone = wait_gone(pid, 60)
        state = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = v.domstate(name)
            if state == "shut off":
                break
            time.sleep(0.5)
        left = [t for t in list(tids.values()) + self.vcpu_tids
                if os.path.exists("/proc/%d" % t)]
        c.check("guest power-off: domain shut off, no QEMU process or "
                "thread left", gone and state == "shut off" and not left
                and not qemu_procs(name),
                "state %s, pid %d %s, threads left %s" %
                (state, pid, "gone" if gone else "ALIVE", left or "none"))

    def move_iothread(self, name, tids):
        v, c = self.virsh, self.c
        p = v("iothreadpin", name, "1", "1", "--live")
        after = cpus_allowed(tids[1])
        info = v.iothreadinfo(name)
        c.info("after iothreadpin: iothread1 Cpus_allowed_list %s, "
               "iothread2 %s; iothreadinfo %s" %
               (after, cpus_allowed(tids[2]), info))
        c.check("virsh iothreadpin %s 1 1 --live: iothread1 "
                "Cpus_allowed_list is 1, iothreadinfo shows it" % name,
                p.returncode == 0 and after == "1" and info.get(1) == "1"
                and info.get(2) == IOTHREAD_PIN[2],
                "rc %d %s; Cpus_allowed_list %s; iothreadinfo %s" %
                (p.returncode, p.stderr.strip(), after, info))

    def second_boot(self, name):
        """Starts the domain again and destroys it at its first stop."""
        v, c = self.virsh, self.c
        p = v("start", "--paused", name, timeout=120)
        if not c.check("the domain starts again after the guest's "
                       "power-off", p.returncode == 0,
                       (p.stderr or p.stdout).strip()[:300]):
            return
        pid = self.qemu_pid(name)
        self.qemu_pids.add(pid)
        tids = [it["thread-id"] for it in v.qmp(name, "query-iothreads")]
        tids += [cpu["thread-id"] for cpu in v.qmp(name, "query-cpus-fast")]
        console = Console(serial_sock(self.work, name),
                          os.path.join(self.work, "serial2.log"))
        try:
            v.ok("resume", name)
            console.expect(time.monotonic() + self.args.boot_timeout + 120,
                           "READY", PHASES[0][0])
            p = v("destroy", name, timeout=60)
        finally:
            console.close()
        gone = wait_gone(pid, 30)
        left = [t for t in tids if os.path.exists("/proc/%d" % t)]
        state = v.domstate(name)
        c.check("virsh destroy: domain shut off, no QEMU process or thread "
                "left", p.returncode == 0 and gone and not left and
                state == "shut off" and not qemu_procs(name),
                "rc %d, state %s, pid %d %s, threads left %s" %
                (p.returncode, state, pid, "gone" if gone else "ALIVE",
                 left or "none"))

    # ---- main
    def main(self):
        a = self.args
        try:
            self.prepare()
            self.make_images()
            self.daemons = Daemons(self.work, a.verbose)
            self.daemons.start()
            self.virsh = Virsh(self.daemons.uri)
            ver = self.virsh("version").stdout
            self.c.info("virsh version: %s" % " | ".join(
                ln.strip() for ln in ver.splitlines() if ln.strip()))
            self.c.info("libvirtd pid %d, virtlogd pid %s (private mount "
                        "namespace, config in %s/etc)" %
                        (self.daemons.pids["libvirtd"],
                         self.daemons.pids.get("virtlogd"), self.work))
            # Bad XML first: they must leave nothing behind.
            self.bad_xml("unknown-iothread", {1: [0], 3: [1]},
                         r"iothread.*3|3.*iothread")
            self.bad_xml("queue-out-of-range", {1: [0], 2: [1, 2]},
                         r"queue|vq")
            self.run_domain()
        except Abort as e:
            self.c.check("test ran to the end", False, str(e))
        except GlobalTimeout as e:
            self.c.check("test ran to the end", False,
                         "global timeout (%d s)" % a.timeout
                         if str(e) == "SIGALRM" else "stopped by %s" % e)
        finally:
            signal.alarm(0)
            self.cleanup()
        if self.c.known:
            print("(%d known failure(s) not counted: --allow-block-layer)" %
                  self.c.known, flush=True)
        print("%d passed, %d failed" % (self.c.passed, self.c.failed),
              flush=True)
        return 1 if self.c.failed else 0

    def cleanup(self):
        c = self.c
        if self.virsh:
            for name in sorted(self.domains):
                if self.virsh.domstate(name) not in (None, "shut off"):
                    self.virsh("destroy", name, timeout=60)
                self.virsh("undefine", name, timeout=30)
        for name in self.names:
            self.qemu_pids.update(qemu_procs(name))
        for pid in self.qemu_pids:
            if pid_alive(pid):
                log("killing QEMU pid %d" % pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                wait_gone(pid, 10)
        if self.daemons:
            pids = dict(self.daemons.pids)
            self.daemons.stop()
            alive = [p for p in pids.values() if pid_alive(p)]
            ns_left = self.daemons.ns_pids()
            qemu_left = [p for p in self.qemu_pids if pid_alive(p)]
            # libvirt makes machine/<domain> cgroups (cgroup v1 here, no
            # machined): it removes the domain's, not "machine" itself.
            cg_left = remove_new_cgroups(self.cgroups_before)
            c.check("libvirtd and virtlogd stopped by pid; nothing left "
                    "running", not alive and not ns_left and not qemu_left
                    and not cg_left,
                    "daemons %s, still alive %s, left in their namespace "
                    "%s, QEMU %s, cgroups left %s" %
                    (pids, alive or "none", ns_left or "none",
                     qemu_left or "none", cg_left or "none"))
        if self.work:
            if self.args.keep or c.failed:
                log("kept %s (serial.log, log/qemu/*.log, log/libvirtd.log)"
                    % self.work)
                if not self.args.keep:
                    for f in ("disk.raw", "vmlinuz", "initrd"):
                        try:
                            os.unlink(os.path.join(self.work, f))
                        except OSError:
                            pass
            else:
                shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--qemu", default=QEMU,
                    help="the emulator (default: this project's build)")
    ap.add_argument("--workdir", help="where the work directory is made "
                    "(default /var/tmp; must take O_DIRECT)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (logs, XML, images)")
    ap.add_argument("--no-install", action="store_true",
                    help="fail instead of installing libvirt")
    ap.add_argument("--suite", default=BPO,
                    help="install libvirt from this suite (default %s; "
                    "'bookworm' gives 9.0, which lacks the queue mapping)"
                    % BPO)
    ap.add_argument("--allow-block-layer", action="store_true",
                    help="report requests that miss the io_uring fast path "
                    "as KNOWN instead of FAIL (libvirt >= 10 attaches a raw "
                    "disk without a format node, see docs/libvirt.md)")
    ap.add_argument("--io-size", type=int, default=16 << 20,
                    help="bytes each fio phase writes (default 16 MiB)")
    ap.add_argument("--job-timeout", type=int, default=180)
    ap.add_argument("--boot-timeout", type=int, default=120)
    ap.add_argument("--timeout", type=int, default=1500,
                    help="the whole test (default 1500 s)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="libvirtd debug log in the work directory")
    args = ap.parse_args()

    def on_signal(signum, frame):
        signal.alarm(0)
        for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)   # let the cleanup finish
        raise GlobalTimeout(signal.Signals(signum).name)
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    signal.alarm(args.timeout)
    return Test(args).main()


if __name__ == "__main__":
    sys.exit(main())
