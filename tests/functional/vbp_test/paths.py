"""Where things are: the repository, the QEMU build, the test guest."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.path.join(ROOT, "build")
QEMU_SRC = os.path.join(BUILD, "qemu")
QEMU_DIR = os.path.join(QEMU_SRC, "build")
QEMU = os.path.join(QEMU_DIR, "qemu-system-x86_64")
QEMU_IMG = os.path.join(QEMU_DIR, "qemu-img")
GUEST_SRC = os.path.join(ROOT, "scripts", "guest")
GUEST_DIR = os.path.join(BUILD, "guest")
# QEMU's own Python packages (qemu.qmp), from the fetched source tree
sys.path.append(os.path.join(QEMU_SRC, "python"))
