"""fio job files for the guest, and what fio's output says."""
import json
import re

from .console import KMSG

# Prepended to every job file the runner gives the guest (unless told
# not to): the disk, O_DIRECT, and lat percentiles (under TCG clat is
# distorted, compare lat).  A job file's own [global] comes later and
# overrides these.
JOB_DEFAULTS = """[global]
filename=/dev/vda
direct=1
lat_percentiles=1
percentile_list=50:90:99:99.9
"""


def job(sections, **glob):
    """A job file: [global] from keyword arguments (None: left out), then
    each (name, {option: value}) of @sections; a value True is a bare
    option."""
    out = []
    for name, opts in ([("global", glob)] if glob else []) + list(sections):
        out.append("[%s]" % name)
        for k, v in opts.items():
            if v is True:
                out.append(k)
            elif v is not None:
                out.append("%s=%s" % (k, v))
        out.append("")
    return "\n".join(out)


def parse_size(text):
    """'256M' -> bytes (K, M, G, T are powers of 1024)."""
    m = re.fullmatch(r"(\d+)([KMGT]?)i?B?", str(text).strip(), re.I)
    if not m:
        raise ValueError("bad size %r" % text)
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


def parse_json(lines):
    """fio's JSON output from console lines, tolerating kernel messages
    interleaved with it: (document, None) or (None, why)."""
    text = "\n".join(lines)
    start = text.find("{")
    if start < 0:
        return None, "no JSON in fio output"
    try:
        return json.loads(text[start:]), None
    except ValueError:
        pass
    clean = "\n".join(line for line in lines if not KMSG.match(line))
    try:
        return json.loads(clean[clean.find("{"):]), None
    except ValueError as e:
        return None, "fio JSON unreadable: %s" % e


def verify_lines(stderr):
    """fio reports each bad block as "verify: ..." (or "<type>: verify
    failed ...") on stderr."""
    return [line for line in stderr
            if line.startswith("verify:") or "verify failed" in line]


def block_result(sec):
    """What a job's result block (Console.blocks[name]) says: the job's
    exit status, fio's document (None, and why in "error"), its stderr,
    the verify errors and the guest's seconds for the job."""
    doc, err = parse_json(sec["fio-json"]) if "fio-json" in sec \
        else (None, "no fio output")
    stderr = sec.get("stderr", [])
    t0, t1 = (float(x) for x in (sec.get("seconds") or ["0 0"])[0].split())
    return {"rc": int((sec.get("rc") or ["-1"])[0].strip() or -1),
            "doc": doc, "error": err, "stderr": stderr,
            "seconds": round(t1 - t0, 3),
            # fio ends a job with a verify failure with EILSEQ (84)
            "verify_errors": len(verify_lines(stderr)) + sum(
                1 for j in (doc or {}).get("jobs", [])
                if j.get("error") == 84)}


def summarize(data):
    """Per fio job: IOPS, bandwidth, I/O count, lat_ns percentiles."""
    jobs = []
    ios = errors = 0
    for j in data.get("jobs", []):
        s = {"jobname": j.get("jobname"), "error": j.get("error", 0)}
        errors += 1 if j.get("error", 0) else 0
        for ddir in ("read", "write", "trim"):
            d = j.get(ddir)
            if not d or not d.get("total_ios"):
                continue
            lat = d.get("lat_ns", {})
            pct = lat.get("percentile", {})
            s[ddir] = {
                "iops": round(d.get("iops", 0), 1),
                "bw_kib_s": d.get("bw", 0),
                "ios": d.get("total_ios", 0),
                "runtime_ms": d.get("runtime", 0),
                "lat_mean_ns": round(lat.get("mean", 0)),
                "lat_ns": {k.rstrip("0").rstrip("."): v
                           for k, v in sorted(pct.items(),
                                              key=lambda kv: float(kv[0]))},
            }
            ios += d.get("total_ios", 0)
        jobs.append(s)
    return {"jobs": jobs, "ios": ios, "job_errors": errors}
