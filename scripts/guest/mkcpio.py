#!/usr/bin/python3
"""Write Linux initramfs archives (cpio "newc" format), stdlib only.

Used by build-guest.sh for the base initramfs and imported by
run-guest.py for the small per-run archive it appends to it.  Writing the
archive ourselves (instead of GNU cpio) lets us add device nodes such as
/dev/console without being root and makes the output reproducible: every
entry is owned by root, has mtime 0 and entries come in sorted order.

CLI:  mkcpio.py [--node PATH:c|b:MAJOR:MINOR[:MODE]]... SRCDIR OUTFILE
      packs the tree SRCDIR (files, directories, symlinks) into OUTFILE,
      plus the given device nodes (e.g. --node dev/console:c:5:1).
"""
import argparse
import os
import stat
import sys


class CpioWriter:
    """Streams newc entries to a binary file object."""

    def __init__(self, out):
        self.out = out
        self.ino = 1000
        self.pos = 0

    def _write(self, data):
        self.out.write(data)
        self.pos += len(data)

    def _pad(self):
        if self.pos % 4:
            self._write(b"\0" * (4 - self.pos % 4))

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name = name.lstrip("/").encode() + b"\0"
        self.ino += 1
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(name), 0)
        self._write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self._write(name)
        self._pad()
        self._write(data)
        self._pad()

    def add_dir(self, name, mode=0o755):
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def add_file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def add_symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_node(self, name, kind, major, minor, mode=0o600):
        fmt = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        self._entry(name, fmt | mode, rdev=(major, minor))

    def add_tree(self, root):
        """Adds every file, directory and symlink under root, sorted."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            if rel != ".":
                self.add_dir(rel, stat.S_IMODE(os.lstat(dirpath).st_mode))
            for fn in sorted(filenames + [d for d in dirnames
                                          if os.path.islink(
                                              os.path.join(dirpath, d))]):
                path = os.path.join(dirpath, fn)
                name = os.path.normpath(os.path.join(rel, fn))
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    self.add_symlink(name, os.readlink(path))
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        self.add_file(name, f.read(), stat.S_IMODE(st.st_mode))

    def close(self):
        """Writes the trailer; the archive is padded to 4 bytes."""
        self._entry("TRAILER!!!", 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--node", action="append", default=[],
                    help="PATH:c|b:MAJOR:MINOR[:MODE] device node to add")
    ap.add_argument("srcdir")
    ap.add_argument("outfile")
    args = ap.parse_args()
    tmp = args.outfile + ".tmp"
    with open(tmp, "wb") as out:
        w = CpioWriter(out)
        w.add_tree(args.srcdir)
        for spec in args.node:
            parts = spec.split(":")
            mode = int(parts[4], 8) if len(parts) > 4 else 0o600
            w.add_node(parts[0], parts[1], int(parts[2]), int(parts[3]), mode)
        w.close()
    os.replace(tmp, args.outfile)


if __name__ == "__main__":
    sys.exit(main())
