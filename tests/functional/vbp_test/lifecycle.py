"""One guest run of test_lifecycle.py and the checks every case makes.

runner.run() boots the guest in a thread; the case drives QEMU over its
own QMP (qmp-user.sock), watches the console, and writes "stop" on it to
end the guest's fio loop (lifecycle_guest.sh next to this file, the
guest's /job/lifecycle.sh)."""
import os
import re
import threading
import time

from vbp_test import counters, fio, machine, qmp, runner
from vbp_test.console import KMSG

DEV = runner.DEV
total, paths_of = counters.total, counters.paths
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "lifecycle_guest.sh")) as _f:
    GUEST_SH = _f.read()
# The guest's kernel log, last; the empty JSON: no fio output, no error.
DMESG_JOB = ("dmesg", "vbp_cmd dmesg 60 -- sh /job/dmesg.sh", 60)
DMESG_SH = "dmesg\necho '{\"jobs\": []}' >/tmp/vbp/dmesg.json\n"


def fio_job(size_mb, engine="io_uring", iodepth=16, numjobs=2):
    """One round: jobs on disjoint parts (both queues carry I/O), other
    data each round.  psync where the disk can vanish: fio 3.33's async
    engines "verify" the stale buffer of a 0-byte read."""
    each = "%dM" % (size_mb // numjobs)
    return fio.job([("round", {})], filename="${VBP_DISK}", direct=1,
                   ioengine=engine, bs="4k", iodepth=iodepth, randrepeat=0,
                   rw="randwrite", verify="crc32c", do_verify=1,
                   verify_fatal=1, size=each, offset_increment=each,
                   numjobs=numjobs)


class Failed(Exception):
    """A case failed; the message says why."""


def describe(e):
    return str(e) if isinstance(e, Failed) else "%s: %s" % (
        type(e).__name__, e)


def need(problems, *checks):
    """Adds to @problems the message of each (ok, message) not ok."""
    problems += [why for ok, why in checks if not ok]


class Harness:
    """One guest run: @jobs [(name, shell line, timeout)] then dmesg, with
    the /job @files; the raw disk and virtio-blk-poll as run-guest.py's
    @args say (runner defaults: 2 vCPUs, 2 queues, 256 MiB)."""

    def __init__(self, opts, args, jobs, files, pre_device=()):
        self.qemu = self.qmp = self.result = None
        self.cfg = runner.options(["--qemu", opts.qemu, "--run-root",
                                   os.path.join(opts.out, "runs")] + args)
        jobs = jobs + [DMESG_JOB]
        self.cfg.jobs_inline = [{"name": n, "text": "", "timeout": t}
                                for n, _, t in jobs]
        run = ["for q in /sys/block/vd*/queue/scheduler; do echo none > $q;"
               " done", "export VBP_DISK=/dev/vda"] + [j for _, j, _ in jobs]
        files = dict(files, **{"lifecycle.sh": GUEST_SH, "dmesg.sh": DMESG_SH,
                               "run.sh": "\n".join(run) + "\n"})
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       args=(files, pre_device))

    def _run(self, files, pre_device):
        try:
            self.result = runner.run(
                self.cfg, files=files, pre_device=pre_device,
                on_start=lambda qemu: setattr(self, "qemu", qemu))
        except Exception as e:            # noqa: BLE001 (reported)
            self.result = {"exit": 3, "error": "run: " + describe(e)}

    def drive(self, body, wait, problems, loop=None, io=0):
        """Boots; with @loop, waits until the guest's loop started and the
        device took @io requests; runs @body(self).  Then waits up to
        @wait s (none after a failure, which goes to @problems) for the
        run to end, kills QEMU if it is still there; the run's result."""
        self.thread.start()
        try:
            # on_start: QEMU runs the guest
            if not machine.until(lambda: self.qemu, lambda q: q or not
                                 self.thread.is_alive(), 60):
                raise Failed("QEMU did not start within 60 s: %s" %
                             (self.result or {}).get("error"))
            self.console = self.qemu.console
            self.qmp = qmp.QMP(self.qemu.sock("qmp-user"), 30)
            if loop:
                self.wait_marker("LOOP-START", loop, 120)
                self.wait_io(io, 60)
            body(self)
        except Exception as e:            # noqa: BLE001 (reported)
            problems.append(describe(e))
            wait = 0
        self.thread.join(wait)
        if self.qemu and self.qemu.proc.poll() is None:
            self.qemu.proc.kill()
            self.thread.join(30)
        if self.qmp:
            self.qmp.close()
        return self.result or {"exit": 2, "error": "no result"}

    def alive(self):
        """QEMU runs and answers QMP; returns query-status."""
        if self.qemu.proc.poll() is not None:
            raise Failed("QEMU exited (status %s)" % self.qemu.proc.poll())
        try:
            return self.qmp.cmd("query-status")
        except qmp.Error as e:
            raise Failed("QMP does not answer: %s" % e) from None

    def stats(self):
        return self.qmp.cmd("qom-get", {"path": DEV, "property": "stats"})

    def until(self, fn, timeout, why, step=0.1):
        """@fn()'s first true value, looking every @step s while QEMU
        lives and the guest did not fail; Failed(@why()) after @timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.alive()
            v = fn()
            if v:
                return v
            bad = self.console.markers("FAILED")
            if bad:
                raise Failed("guest failed: %s" % bad[0][2])
            if time.monotonic() > deadline:
                raise Failed(why())
            time.sleep(step)

    def wait_marker(self, kind, name, timeout):
        """===VBP-kind name...=== (@name: its first words)."""
        return self.until(lambda: [m for m in self.console.markers(kind)
                                   if (m[2] + " ").startswith(name + " ")],
                          timeout, lambda: "no ===VBP-%s %s=== within %ds" %
                          (kind, name, timeout), 0.05)[0]

    def wait_io(self, want, timeout):
        """Waits until the device took @want more requests; their count."""
        base, got = total(self.stats(), "requests"), [0]

        def more():
            got[0] = total(self.stats(), "requests") - base
            return got[0] >= want and got[0]
        return self.until(more, timeout, lambda: "only %d requests in %ds "
                          "(wanted %d)" % (got[0], timeout, want))

    def wait_round_ok(self, loop, since, need_start=True):
        """The number of a round of @loop that started (without
        @need_start: ended) at console line @since or later and passed."""
        def ok():
            started = {t.split()[1] for _, _, t in
                       self.console.markers("ROUND", since)}
            for _, _, text in self.console.markers("ROUND-END", since):
                p = text.split()
                if p[0] == loop and (p[1] in started or not need_start) \
                        and "rc=0" in p and "verify=0" in p:
                    return int(p[1])
        return self.until(ok, 120, lambda: "no fio round passed in 120s")

    def stdout(self, name):
        """The stdout section of job @name's result block."""
        blk = self.qemu.console.blocks.get(name, {}) if self.qemu else {}
        return [x for x in blk.get("stdout", []) if not KMSG.match(x)]

    def rounds(self, name):
        """The loop's rounds: [{k, dev, rc, ios, error, verify}]."""
        return [{k: int(v) if v.isdigit() else v for k, v in re.findall(
            r"(\w+)=(\S*)", "k=" + x[len("ROUND "):])}
            for x in self.stdout(name) if x.startswith("ROUND ")]


def common_checks(h, res, loop, problems, fig, strict_rounds=True):
    """The run ended well, the loop's rounds passed with 0 verify errors,
    no kernel problem, no sanitizer report, the dmesg job ran."""
    rounds = h.rounds(loop) if loop else []
    bad = [r for r in rounds if r["rc"] or r["error"]]
    fig.update(rounds=len(rounds), rounds_failed=len(bad),
               run_exit=res.get("exit"), run_dir=res.get("run_dir"))
    fig["verify_errors"] = fig.get("verify_errors", 0) + sum(
        r["verify"] + (r["error"] == 84) for r in rounds)
    fig["ios"] = fig.get("ios", 0) + sum(r["ios"] for r in rounds)
    # the console has the dmesg job's output and the kernel's messages
    kp = fig["kernel_problems"] = \
        h.qemu.console.kernel_problems()[:20] if h.qemu else []
    asan = fig["asan"] = [x for x in (
        h.qemu.stderr_text(1 << 30) if h.qemu else "").splitlines()
        if "ERROR: AddressSanitizer" in x or "runtime error:" in x][:10]
    errs = [x for x in h.stdout(loop) if x.startswith("ROUND-ERR")]
    need(problems, (res.get("exit") not in (2, 3),
                    "run failed: %s" % res.get("error")),
         (rounds or not loop, "the guest ran no fio round"),
         (not (rounds and strict_rounds and bad), "%d of %d fio rounds "
          "failed: %s" % (len(bad), len(rounds), "; ".join(errs[:4]))),
         (not fig["verify_errors"], "%d verify errors" % fig["verify_errors"]),
         (not kp, "guest kernel: %s" % (kp or [""])[0].strip()),
         (not asan, "QEMU stderr: %s" % (asan or [""])[0]),
         (h.qemu and "dmesg" in h.qemu.console.blocks, "no dmesg from the "
          "guest (the run did not get to its end)"))


def loop_case(opts, fig, problems, loop, timeout, args, job, io, body,
              pre_device=(), strict_rounds=True):
    """Runs @body(h) while the guest runs fio rounds, then stops them;
    the common checks.  Returns the Harness."""
    cmd = "vbp_cmd %s %d -- sh /job/lifecycle.sh loop %s /job/round.fio %s"
    h = Harness(opts, args, [(loop, cmd % (loop, timeout, loop, "any" if
                                           loop == "unplug" else "vda"),
                              timeout)], {"round.fio": job}, pre_device)

    def run(h):
        body(h)
        h.console.send("stop\n")
    res = h.drive(run, timeout + 120, problems, loop, io)
    common_checks(h, res, loop, problems, fig, strict_rounds)
    return h
