#!/usr/bin/env python3
"""fio's JSON output summarised for fio-baseline.sh (its `summarize` mode and a real run alike):
per job the IOPS, bandwidth and latency percentiles, with the run's metadata.
components/render/fio.ts parses the same way. Carried with the script and run by lib.sh's run_py.

    fio-summary.py <fio-output.json> [<dir> <size> <runtime seconds> <measured at>]
"""
import json, sys
src = sys.argv[1]
meta = dict(zip(("dir", "size", "runtimeSeconds", "measuredAt"), sys.argv[2:]))
if "runtimeSeconds" in meta:
    meta["runtimeSeconds"] = int(meta["runtimeSeconds"])
try:
    with open(src) as f:
        text = f.read()
    # fio may print notes before the JSON document (e.g. "note: both iodepth >= 1 and synchronous I/O engine...")
    data = json.loads(text[text.index("{"):])
except (OSError, ValueError) as e:
    sys.exit(f"fio-baseline: error: cannot read fio's JSON output {src}: {e}")
jobs = {}
for job in data.get("jobs", []):
    name = job["jobname"]
    opts = job.get("job options", {})
    side = "write" if opts.get("rw", "") in ("write", "randwrite") else "read"
    s = job[side]
    pct = s.get("clat_ns", {}).get("percentile", {})
    def us(ns):
        return None if ns is None else round(ns / 1000, 3)
    jobs[name] = {
        "rw": opts.get("rw"),
        "blockSize": opts.get("bs"),
        "ioDepth": int(opts.get("iodepth", "1")),
        "iops": round(s["iops"], 3),
        "bandwidthBytesPerSec": s["bw_bytes"],
        "latencyUs": {
            "mean": us(s["lat_ns"]["mean"]),
            "p50": us(pct.get("50.000000")),
            "p99": us(pct.get("99.000000")),
            "p99_9": us(pct.get("99.900000")),
        },
    }
if not jobs:
    sys.exit(f"fio-baseline: error: {src} holds no fio jobs")
out = {"version": 1, "fio": data.get("fio version")}
out.update(meta)
out["jobs"] = jobs
print(json.dumps(out, indent=2, sort_keys=True))
