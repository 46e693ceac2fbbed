"""What test_libvirt.py runs on: libvirt (installed when missing), its
daemons in a private mount namespace, virsh, the host's processes,
threads and cgroups, and the test's domain and images.

Nothing on the host's /etc or /var changes: the daemons see a private
copy of /etc/libvirt and private /run, /var/lib, /var/cache and /var/log
libvirt directories, all under the work directory, and are stopped by pid.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from contextlib import suppress
from xml.sax.saxutils import escape, quoteattr

from vbp_test import checks, fio, machine, paths
from vbp_test.suite import Abort        # the test cannot go on

BPO = "bookworm-backports"        # libvirt 11.x: the queue mapping needs 10
IOTHREAD_PIN = {1: "0", 2: "1"}   # <iothreadpin>: iothread -> host CPUs
# <vcpupin>: vCPU k away from queue k's poller (2 host CPUs: can't avoid
# all sharing, see docs/libvirt.md)
VCPU_PIN = {0: "1", 1: "0"}
QUEUE_IOTHREAD = {0: 1, 1: 2}     # disk queue -> iothread id
MAPPING = {1: [0], 2: [1]}        # the same: iothread id -> its queues
NQUEUES = 2
POLL_IDLE_NS = 100000             # a device property, by <qemu:override>
DISK_SIZE = 256 << 20
PHASE_SIZE = 64 << 20             # each fio phase has its own region
# name, guest vCPU (taskset mask 1 << vcpu), disk region
PHASES = [("vcpu0", 0, 0), ("vcpu1", 1, 1), ("vcpu0-moved", 0, 2)]
# The private mounts of the daemons' namespace: host path -> work subdir.
PRIVATE_DIRS = [("/etc/libvirt", "etc"), ("/run/libvirt", "run"),
                ("/var/lib/libvirt", "lib"), ("/var/cache/libvirt", "cache"),
                ("/var/log/libvirt", "log")]


def log(msg):
    checks.log("test-libvirt", msg)


def run(argv, timeout=60, check=False, env=None):
    """subprocess.run; a command that outlives @timeout is killed and
    reported as rc 124."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        p = subprocess.CompletedProcess(argv, 124, (e.stdout or b"").decode(
            errors="replace"), "timed out after %ss" % timeout)
    except OSError as e:
        p = subprocess.CompletedProcess(argv, 127, "", str(e))
    if check and p.returncode != 0:
        raise Abort("%s failed (rc %d): %s" % (
            " ".join(argv), p.returncode, (p.stderr or p.stdout).strip()))
    return p


def pkg_version(name):
    """The version of Debian package @name, None when not installed."""
    p = run(["dpkg-query", "-W", "-f=${Status} ${Version}", name], 20)
    if p.returncode == 0 and "install ok installed" in p.stdout:
        return p.stdout.split()[-1]


def libvirt_missing():
    return [n for n in ("libvirt-daemon", "libvirt-daemon-driver-qemu",
                        "libvirt-clients") if not pkg_version(n)] + \
        [t for t in ("virsh", "libvirtd", "virtlogd") if not shutil.which(
            t, path="/usr/bin:/usr/sbin:/bin:/sbin")]


def ensure_libvirt(no_install, suite):
    """Installs libvirt when missing, starting no service (a temporary
    policy-rc.d when the host has none); returns its version."""
    missing = libvirt_missing()
    if missing and no_install:
        raise Abort("libvirt missing (%s) and --no-install" %
                    ", ".join(missing))
    if not missing:
        return pkg_version("libvirt-daemon")
    policy = "/usr/sbin/policy-rc.d"
    made_policy = not os.path.exists(policy)
    if made_policy:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# test_libvirt.py: no service starts\n"
                    "exit 101\n")
        os.chmod(policy, 0o755)
    log("installing libvirt from %s" % suite)
    try:
        if suite == BPO:      # every package named with its suite
            run([os.path.join(paths.ROOT, "scripts", "setup-host.sh"),
                 "libvirt"], 1200, check=True)
        else:                 # the default release: apt resolves the rest
            run(["nice", "apt-get", "install", "-y", "-q",
                 "--no-install-recommends", "libvirt-daemon-system",
                 "libvirt-clients", "libvirt-daemon",
                 "libvirt-daemon-driver-qemu"], 1200, check=True,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    finally:
        if made_policy:
            os.unlink(policy)
    missing = libvirt_missing()
    if missing:
        raise Abort("still missing after install: %s" % ", ".join(missing))
    return pkg_version("libvirt-daemon")


# ------------------------------------------------ processes and threads
def read(path, mode="r"):
    """The contents of @path (a /proc file), None when it is gone."""
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def pid_alive(pid):
    st = read("/proc/%d/stat" % pid)
    return bool(st) and st[st.rindex(")") + 2] != "Z"


def wait_gone(pid, timeout, sig=None):
    """Sends @sig (if given); True once @pid has exited.  A zombie counts
    as gone: pid 1 reaps the daemonized processes.  (The test must not be
    a child subreaper: libvirt waits for its daemonized QEMU capability
    probes to vanish, and their zombies would be ours, unreaped while we
    wait for virsh.)"""
    if sig:
        with suppress(OSError):
            os.kill(pid, sig)
    return not machine.until(lambda: pid_alive(pid), lambda alive: not alive,
                             timeout, 0.1)


def mntns(pid):
    with suppress(OSError):
        return os.readlink("/proc/%d/ns/mnt" % pid)


def procs(match):
    """The pids in /proc for which @match(pid) is true."""
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and match(int(d))]


def qemu_procs(name):
    """Live QEMU processes of domain @name (by its -name guest=NAME)."""
    want = b"guest=" + name.encode()
    return procs(lambda p: pid_alive(p) and any(
        a == want or a.startswith(want + b",")
        for a in (read("/proc/%d/cmdline" % p, "rb") or b"").split(b"\0")))


def cpus_allowed(tid):
    m = re.search(r"^Cpus_allowed_list:\s*(\S+)",
                  read("/proc/%d/status" % tid) or "", re.M)
    return m.group(1) if m else None


def thread_sample(tid):
    """(run_ns, last CPU) of one thread, or None when it is gone."""
    sched, st = (read("/proc/%d/%s" % (tid, f))
                 for f in ("schedstat", "stat"))
    try:
        return int(sched.split()[0]), \
            int(st[st.rindex(")") + 2:].split()[36])     # field 39
    except (AttributeError, ValueError, IndexError):
        return None


class Sampler(threading.Thread):
    """While it runs (a with block), samples the threads @tids {name: tid}
    every 20 ms: .cpus {name: {cpu: samples}}, on which CPU each ran (a
    sample counts only if the thread ran since the last one)."""

    def __init__(self, tids):
        super().__init__(daemon=True)
        self.tids, self.cpus = tids, {k: {} for k in tids}
        self.done = threading.Event()

    def run(self):
        last = {k: thread_sample(t) for k, t in self.tids.items()}
        while not self.done.wait(0.02):
            for k, tid in self.tids.items():
                s = thread_sample(tid)
                if s and last[k] and s[0] > last[k][0]:
                    self.cpus[k][s[1]] = self.cpus[k].get(s[1], 0) + 1
                last[k] = s

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(5)


def cgroup_dirs():
    """Every directory under /sys/fs/cgroup/*/machine*."""
    return {d for top in glob.glob("/sys/fs/cgroup/*/machine*")
            if os.path.isdir(top) for d, _, _ in os.walk(top)}


def remove_new_cgroups(before):
    """rmdir (deepest first) the cgroup directories made since @before;
    returns those that could not be removed."""
    left = []
    for d in sorted(cgroup_dirs() - before, key=lambda d: -d.count("/")):
        try:
            os.rmdir(d)
        except OSError:
            left.append(d)
    return left


# -------------------------------------------------------------- libvirt
class Libvirt:
    """virtlogd + libvirtd (`-d`, with pid files) in a private mount
    namespace with a private config, and virsh on their socket."""

    def __init__(self, work, verbose=False):
        self.work, self.verbose = work, verbose
        self.pids, self.made_dirs = {}, []
        self.mntns = self.uri = None

    def configure(self):
        w = self.work
        for _, sub in PRIVATE_DIRS[1:]:
            os.makedirs(os.path.join(w, sub), exist_ok=True)
            os.chmod(os.path.join(w, sub), 0o755)
        etc = os.path.join(w, "etc")
        shutil.copytree("/etc/libvirt", etc, symlinks=True)
        # No network autostarts: the test needs none (no dnsmasq, bridges
        # or firewall rules left behind).
        shutil.rmtree(os.path.join(etc, "qemu", "networks", "autostart"),
                      ignore_errors=True)
        debug = 'log_filters = "1:qemu.qemu_process 1:qemu.qemu_monitor ' \
            '3:*"\n' if self.verbose else ""    # QMP traffic included
        for conf, text in (
                ("qemu", 'security_driver = "none"\n'  # no SELinux/AppArmor
                 "namespaces = [ ]\n"                  # no per-domain /dev
                 "remember_owner = 0\n"                # no xattrs on files
                 'stdio_handler = "logd"\n'),
                ("libvirtd", 'auth_unix_ro = "none"\nauth_unix_rw = "none"\n'
                 'log_outputs = "%d:file:%s/log/libvirtd.log"\n%s' %
                 (1 if self.verbose else 3, w, debug)),
                ("virtlogd", 'log_outputs = "3:file:%s/log/virtlogd.log"\n'
                 % w)):
            with open(os.path.join(etc, conf + ".conf"), "a") as f:
                f.write("\n# test_libvirt.py\n" + text)

    def start(self):
        w = self.work
        self.configure()
        for host, _ in PRIVATE_DIRS:
            if not os.path.isdir(host):
                os.makedirs(host)
                self.made_dirs.append(host)
        script = "set -e\n" + "".join(
            "mount --bind %s/%s %s\n" % (w, sub, host)
            for host, sub in PRIVATE_DIRS) + \
            "virtlogd -d -p %s/virtlogd.pid\nlibvirtd -d -p %s/libvirtd.pid" \
            "\n" % (w, w)
        p = run(["unshare", "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", script], 90)
        for name in ("virtlogd", "libvirtd"):
            with suppress(ValueError):
                self.pids[name] = int(read(os.path.join(
                    w, name + ".pid")) or "")
        if p.returncode != 0 or "libvirtd" not in self.pids:
            raise Abort("starting virtlogd/libvirtd failed (rc %d): %s%s" %
                        (p.returncode, p.stderr.strip(), self.log_tail()))
        self.mntns = mntns(self.pids["libvirtd"])
        self.uri = "qemu:///system?socket=%s/run/libvirt-sock" % w
        v = machine.until(lambda: self.virsh("uri", timeout=20),
                          lambda v: v.returncode == 0, 60, 0.5)
        if v.returncode != 0:
            raise Abort("libvirtd does not answer: %s%s" %
                        (v.stderr.strip(), self.log_tail()))

    def log_tail(self, what="log/libvirtd.log"):
        """The last lines of a log in the work directory, for a message."""
        lines = (read(os.path.join(self.work, what)) or "").splitlines()
        return "\n  %s: %s" % (os.path.basename(what), "\n  ".join(
            lines[-15:])) if lines else ""

    def ns_pids(self):
        """Processes still in the daemons' mount namespace."""
        return procs(lambda p: mntns(p) == self.mntns) if self.mntns else []

    def stop(self):
        """SIGTERM by pid (libvirtd first), SIGKILL after 15 s."""
        for name in ("libvirtd", "virtlogd"):
            pid = self.pids.get(name)
            if pid and pid_alive(pid) and \
                    not wait_gone(pid, 15, signal.SIGTERM):
                log("%s (pid %d) ignored SIGTERM, killing it" % (name, pid))
                wait_gone(pid, 5, signal.SIGKILL)
        for host in reversed(self.made_dirs):
            with suppress(OSError):
                os.rmdir(host)

    def virsh(self, *args, timeout=60):
        return run(["virsh", "-c", self.uri] + list(args), timeout)

    def ok(self, *args, timeout=60):
        """virsh's output; Abort when it fails."""
        p = self.virsh(*args, timeout=timeout)
        if p.returncode != 0:
            raise Abort("virsh %s: %s" % (" ".join(args),
                                          (p.stderr or p.stdout).strip()))
        return p.stdout

    def qmp(self, dom, cmd, args=None):
        """A QMP command through libvirt (qemu-monitor-command)."""
        req = dict({"execute": cmd}, **({"arguments": args} if args else {}))
        rsp = json.loads(self.ok("qemu-monitor-command", dom,
                                 json.dumps(req), timeout=30))
        if "error" in rsp:
            raise Abort("%s: %s" % (cmd, rsp["error"].get("desc")))
        return rsp["return"]

    def domstate(self, dom):
        p = self.virsh("domstate", dom, timeout=20)
        return p.stdout.strip() if p.returncode == 0 else None

    def iothreadinfo(self, dom):
        """{iothread id: 'cpu list'} from `virsh iothreadinfo`."""
        return {int(m.group(1)): m.group(2) for m in re.finditer(
            r"^\s*(\d+)\s+(\S+)\s*$", self.ok("iothreadinfo", dom), re.M)}

    def domblkstat(self, dom):
        return {p[1]: int(p[2]) for p in map(
            str.split, self.ok("domblkstat", dom, "vda").splitlines())
            if len(p) == 3 and p[2].lstrip("-").isdigit()}


# ------------------------------------------------- the domain, its images
DOMAIN = """\
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%(name)s</name>
  <memory unit='MiB'>512</memory>
  <vcpu placement='static'>2</vcpu>
  <iothreads>2</iothreads>
  <iothreadids><iothread id='1'/><iothread id='2'/></iothreadids>
  <cputune>%(pins)s</cputune>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>%(cmdline)s</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%(emulator)s</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='io_uring'
              queues='%(queues)d'><iothreads>%(iotmap)s</iothreads></driver>
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
        <qemu:property name='driver' type='string'
                       value='virtio-blk-poll-pci'/>
        <qemu:property name='poll-idle-ns' type='unsigned' value='%(idle)d'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
"""


class Images:
    """The guest's kernel, its initrd with the fio phases, and the raw
    disk, in the work directory @work; xml() writes a domain on them."""

    def __init__(self, work, qemu, io_size, job_timeout):
        self.work, self.qemu, self.job_timeout = work, qemu, job_timeout
        try:        # builds the test guest when missing or out of date
            meta = machine.guest_files()
        except (OSError, subprocess.CalledProcessError) as e:
            raise Abort("building the test guest: %s" % e) from None
        self.kernel, self.initrd, self.disk = (
            os.path.join(work, f) for f in ("vmlinuz", "initrd", "disk.raw"))
        shutil.copyfile(meta["kernel"], self.kernel)
        # /job/run.sh runs each phase's fio pinned to one vCPU: blk-mq
        # sends its requests to that vCPU's hardware queue (queue k for
        # vCPU k).
        script = ["# generated by test_libvirt.py", "for q in /sys/block/"
                  "vd*/queue/scheduler; do echo none > $q; done"]
        files = {}
        for n, vcpu, region in PHASES:
            script.append(
                "rm -f /tmp/vbp/%(n)s.json; vbp_cmd %(n)s %(t)d -- taskset "
                "%(mask)x fio --output-format=json --output=/tmp/vbp/%(n)s"
                ".json --eta=never /job/%(n)s.fio" %
                {"n": n, "t": job_timeout, "mask": 1 << vcpu})
            files[n + ".fio"] = fio.job(
                [("randwrite-verify", dict(
                    rw="randwrite", io_size=io_size, verify="crc32c",
                    do_verify=1, verify_fatal=1))],
                filename="/dev/vda", direct=1, ioengine="io_uring", bs="4k",
                iodepth=16, offset=region * PHASE_SIZE, size=PHASE_SIZE)
        files["run.sh"] = "\n".join(script) + "\n"
        machine.make_initrd(self.initrd, meta["initrd"], files)
        with open(self.disk, "wb") as f:
            f.truncate(DISK_SIZE)
        # cache='none' opens the image with O_DIRECT (tmpfs refuses it on
        # Debian 12's kernel: --workdir on a disk file system then).
        try:
            os.close(os.open(self.disk, os.O_RDWR | os.O_DIRECT))
        except OSError as e:
            raise Abort("%s does not take O_DIRECT (%s): use --workdir on "
                        "another file system" % (work, e)) from None
        for p in (self.kernel, self.initrd, self.disk):
            os.chmod(p, 0o644)

    def sock(self, name):
        """The guest console socket of domain @name (QEMU listens)."""
        return os.path.join(self.work, "chr", name + ".sock")

    def xml(self, name, fname, mapping=MAPPING):
        """Writes domain @name's XML to @fname in the work directory.
        mapping: {iothread id: [queue ids]}."""
        jt = self.job_timeout
        # The guest's watchdog covers boot and every phase.
        cmdline = machine.cmdline(60 + (len(PHASES) + 1) * (jt + 60), jt,
                                  extra=["vbp.sync_timeout=120"])
        text = DOMAIN % {
            "name": escape(name), "queues": NQUEUES, "idle": POLL_IDLE_NS,
            "pins": "".join("<vcpupin vcpu='%d' cpuset='%s'/>" % kv
                            for kv in sorted(VCPU_PIN.items())) + "".join(
                "<iothreadpin iothread='%d' cpuset='%s'/>" % kv
                for kv in sorted(IOTHREAD_PIN.items())),
            "iotmap": "".join("<iothread id='%d'>%s</iothread>" % (
                i, "".join("<queue id='%d'/>" % q for q in qs))
                for i, qs in sorted(mapping.items())),
            "kernel": escape(self.kernel), "initrd": escape(self.initrd),
            "cmdline": escape(cmdline), "emulator": escape(self.qemu),
            "disk": quoteattr(self.disk), "sock": quoteattr(self.sock(name)),
            "serlog": quoteattr(os.path.join(self.work, "chr",
                                             name + ".log"))}
        path = os.path.join(self.work, fname)
        with open(path, "w") as f:
            f.write(text)
        return path
