#!/usr/bin/python3
"""Sort the ThreadSanitizer reports of a run-qtests.sh --tsan run.

    scripts/tsan-summary.py [DIR]   (default build/qtest-logs-tsan)

Groups the reports in DIR/tsan.* by their kind and the top frame of each
of the two accesses (or of the report), counts them, and marks the
groups whose top frames are in virtio-blk-poll's files or in the files
the series patches (OURS), or whose stacks only reach them further down
(deep), so that ours stand apart from upstream QEMU's own.
"""
import collections
import glob
import os
import re
import sys

OURS = re.compile(r"virtio-blk-poll|hw/virtio/virtio\.c|virtio-blk\.c|"
                  r"system/runstate\.c|block/io_uring\.c")
FRAME = re.compile(r"^\s+#(\d+) (\S+) (\S+)")


def reports(path):
    with open(path, errors="replace") as f:
        text = f.read()
    for block in text.split("==================")[1:]:
        if "WARNING: ThreadSanitizer" in block:
            yield block


def top_frames(block, depth=3):
    """The first @depth frames of each access (or thread) in @block"""
    out = []
    for section in re.split(r"\n(?=  \S)", block):
        frames = [FRAME.match(line) for line in section.splitlines()]
        out += [m.group(3) + " " + m.group(2) for m in frames if m][:depth]
    return "\n".join(out)


def key(block):
    kind = re.search(r"WARNING: ThreadSanitizer: ([^(\n]+)", block).group(1)
    tops = []
    for section in re.split(r"\n(?=  \S)", block):
        frames = [FRAME.match(l) for l in section.splitlines()]
        frames = [m for m in frames if m]
        if frames:
            tops.append("%s (%s)" % (frames[0].group(2),
                                     os.path.basename(frames[0].group(3))
                                     .split(":")[0]))
        if len(tops) == 2:
            break
    return kind.strip(), tuple(tops)


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        top, "build", "qtest-logs-tsan")
    groups, ours, example = collections.Counter(), {}, {}
    files = glob.glob(os.path.join(d, "tsan.*"))
    for path in files:
        for block in reports(path):
            k = key(block)
            groups[k] += 1
            where = 2 if OURS.search(top_frames(block)) else \
                1 if OURS.search(block) else 0
            ours[k] = max(ours.get(k, 0), where)
            example.setdefault(k, path)
    print("%d report files, %d reports, %d distinct" % (
        len(files), sum(groups.values()), len(groups)))
    print("OURS: a top frame (3 per access) in virtio-blk-poll or a file "
          "the series patches; deep: only further down the stacks")
    for k, n in sorted(groups.items(), key=lambda kv: (-ours[kv[0]],
                                                       -kv[1])):
        print("%s %5d  %s: %s  [%s]" % (("    ", "deep", "OURS")[ours[k]],
                                        n, k[0], " / ".join(k[1]),
                                        os.path.basename(example[k])))


if __name__ == "__main__":
    main()
