"""The harness every guest test of virtio-blk-poll uses.

A test boots the test guest (scripts/guest/build-guest.sh: a Linux kernel,
busybox, a static fio, and /init, which sources /job/run.sh) under TCG
with one disk, drives it over QMP and the serial console, and judges the
result.  One module for each part:

  paths     where the build puts QEMU and the guest
  qmp       QMP with events, on QEMU's own client (python/qemu/qmp of the
            fetched source tree, the one QEMU's tests/functional use)
  console   the serial console protocol between /init and the host
            (===VBP-...=== markers, result blocks, replies)
  machine   the guest's files (kernel, per-run initramfs), the disk
            (-blockdev), the device (-device), the QEMU command line, a
            QEMU process
  fio       fio job files and their results
  counters  host-side counters: CPU time of QEMU's threads, the guest's
            interrupts and block statistics, the device's stats, system
            calls (perf)
  runner    run jobs in the guest with host snapshots around each (what
            scripts/guest/run-guest.py runs)
  checks    PASS/FAIL lines and the closing "N passed, N failed"
  suite     the shape of every suite: a docstring, a list CASES of
            Case(name, run), suite.main() (the command line, setup, the
            cases, teardown, the closing line)

and what one suite needs:

  lifecycle  test_lifecycle.py's guest run (a fio loop while the host
             drives QMP) and its common checks; lifecycle_guest.sh is
             the guest's side
  faults     test_faults.py's error sources (tmpfs, loop devices,
             blkdebug), the controller that heals them at each stop
  libvirt    test_libvirt.py's libvirt: its daemons in a private mount
             namespace, virsh, the domain XML and images, host threads
             and cgroups

The suites next to this package (test_*.py) each hold their cases and
their checks only.
"""
