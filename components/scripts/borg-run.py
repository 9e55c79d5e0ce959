#!/usr/bin/env python3
"""The Python side of borg-run.sh, one function per subcommand. Carried with the script
(components/render/command.ts CARRIED_FILES) and run by lib.sh's run_py:

    borg-run.py post-webhook <url file> <priority>     (the text on stdin; the URL never in argv)
    borg-run.py record <status dir> <job> <host> <start> <end> <status> <code> <added> <archive> <message> <factor> <create json> [<metrics dir> [<list json> <glob>]]
    borg-run.py ping <url file>                        (the heartbeat: a GET of the URL in the file)
    borg-run.py sqlite-snapshot <db> <dest>
    borg-run.py drill-sample <contents.jsonl> <count> <archive>
    borg-run.py drill-compare <contents.jsonl> <sample> <scratch>
    borg-run.py last-start <status json>

After the subcommand is taken off, sys.argv[1:] are its arguments.
"""
import sys


def post_webhook():
    """POST the text on stdin to the webhook whose URL is in a file (healthchecks, ntfy and the like take a plain body)."""
    import urllib.request
    url = open(sys.argv[1]).read().strip()
    req = urllib.request.Request(url, data=sys.stdin.buffer.read(), method="POST",
                                 headers={"Title": "dgx-backup " + sys.argv[2], "Content-Type": "text/plain"})
    urllib.request.urlopen(req, timeout=20).read()


def record():
    """The status record of a run: reads borg create's --json output (archive name, bytes added)
    and borg list --json's of the archives matching <glob> (their count), appends the record to
    <job>.history.jsonl and <job>.json (atomically), judges the growth; prints status, archive,
    bytes added, growth, message and '.' one a line for the shell."""
    import json, os, statistics, sys, time
    d, job, host, start, end, status, code, added, archive, message, factor, create_json = sys.argv[1:13]
    if create_json:
        try:
            a = json.load(open(create_json))["archive"]
            archive, added = a["name"], str(a["stats"]["deduplicated_size"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            if status != "error":
                status, message = "error", f"could not read borg create --json output: {e}"
    list_json, glob = (sys.argv[14:16] + ["", ""])[:2]
    archives = None
    if list_json:
        try:
            archives = len(json.load(open(list_json))["archives"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # the count is left out; the job's own result stands
    hist = os.path.join(d, job + ".history.jsonl")
    lines = open(hist).read().splitlines() if os.path.exists(hist) else []
    prev = [json.loads(l) for l in lines if l.strip()]
    sizes = [p["bytes_added"] for p in prev if p.get("status") != "error" and isinstance(p.get("bytes_added"), int)][-10:]
    rec = {"job": job, "host": host, "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(start))),
           "status": status, "exit_code": int(code), "duration_s": int(end) - int(start),
           "bytes_added": int(added) if added else None, "archive": archive or None, "message": message}
    if archives is not None:
        rec["archives"], rec["archives_glob"] = archives, glob
    growth = ""
    if rec["bytes_added"] is not None and len(sizes) >= 3:
        median = statistics.median(sizes)
        if rec["bytes_added"] > float(factor) * max(median, 1):
            growth = f"added {rec['bytes_added']} bytes, more than {factor} times the median {int(median)} of the last {len(sizes)} runs"
            rec["growth_alert"] = growth
    line = json.dumps(rec, sort_keys=True)
    lines = (lines + [line])[-500:]
    for path, text in ((hist, "\n".join(lines) + "\n"), (os.path.join(d, job + ".json"), line + "\n")):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    if len(sys.argv) > 13 and sys.argv[13] and os.path.isdir(sys.argv[13]):
        write_metrics(sys.argv[13], rec, prev, int(end))
    # for the shell: one value per line, the message (free text, one line) last
    print(status, archive or "-", added or "-", sep="\n")
    print(growth.replace("\n", " "))
    print(message.replace("\n", " "))
    print(".")  # the shell's $(...) drops trailing newlines: this keeps an empty message a line


def write_metrics(d, rec, prev, end):
    """The job's metrics for node_exporter's textfile collector, without sample timestamps,
    written to a temporary file in the same directory and renamed (never half a file)."""
    import calendar, os, time
    def ended(r):
        return calendar.timegm(time.strptime(r["start"], "%Y-%m-%dT%H:%M:%SZ")) + int(r.get("duration_s") or 0)
    ok = [r for r in prev + [rec] if r.get("status") in ("ok", "warning")]
    job = rec["job"]
    lab = f'backup_job="{job}"'
    m = [("dgx_backup_last_run_timestamp_seconds", "Unix time the job's last run ended", lab, end),
         ("dgx_backup_last_duration_seconds", "Duration of the job's last run", lab, rec["duration_s"]),
         ("dgx_backup_last_exit_code", "Exit code of the last run's borg command", lab, rec["exit_code"]),
         ("dgx_backup_growth_abnormal", "1 when the last archive grew abnormally against the recent median", lab, 1 if rec.get("growth_alert") else 0),
         ("dgx_backup_runs_recorded", "Runs in the job's status history (the newest 500)", lab, len(prev) + 1)]
    if rec.get("archives") is not None:
        glob = rec["archives_glob"].replace("\\", "\\\\").replace('"', '\\"')
        m.append(("dgx_backup_archives", "Archives matching archive_glob in the repository after the job (borg list)", f'{lab},archive_glob="{glob}"', rec["archives"]))
    if rec["bytes_added"] is not None:
        m.append(("dgx_backup_last_bytes_added", "Bytes the last run added: the archive's deduplicated size, or for a cloud copy or drill the bytes rclone transferred", lab, rec["bytes_added"]))
    if ok:
        m.append(("dgx_backup_last_success_timestamp_seconds", "Unix time the job last ended with status ok or warning", lab, ended(ok[-1])))
    for st in ("ok", "warning", "error", "skipped"):
        m.append(("dgx_backup_last_status", "1 for the status of the job's last run", f'{lab},status="{st}"', 1 if rec["status"] == st else 0))
    lines, seen = [], set()
    for name, help_, labels, value in m:
        if name not in seen:
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
            seen.add(name)
        lines.append(f"{name}{{{labels}}} {value}")
    path = os.path.join(d, f"dgx_backup_{job.replace('-', '_')}.prom")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def ping():
    """The heartbeat of a dead-man's switch (healthchecks.io and the like take a GET of the check's URL)."""
    import urllib.request
    url = open(sys.argv[1]).read().strip()
    urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=20).read()


def sqlite_snapshot():
    """A consistent copy of a live SQLite database (the backup API, read-only), skipped when its
    source is unchanged since the last copy."""
    import os, sqlite3, sys
    src, dest = sys.argv[1:3]
    def sig(p):
        try:
            st = os.stat(p)
            return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        except FileNotFoundError:
            return "-"
    signature = " ".join(sig(src + s) for s in ("", "-wal"))
    sig_file = dest + ".source-stat"
    if os.path.exists(dest) and os.path.exists(sig_file) and open(sig_file).read() == signature:
        sys.exit(0)
    tmp = f"{dest}.tmp.{os.getpid()}"  # the hourly and daily jobs may snapshot at the same time
    # read-only: this connection never writes to (or checkpoints) the live database
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=60)
    d = sqlite3.connect(tmp)
    with d:
        s.backup(d)
    ok = d.execute("PRAGMA quick_check").fetchone()[0]
    d.close()
    s.close()
    if ok != "ok":
        sys.exit(f"the copy of {src} fails quick_check: {ok}")
    os.replace(tmp, dest)
    with open(sig_file, "w") as f:
        f.write(signature)


def drill_sample():
    """The drill's sample: regular files, chosen at random but repeatably for one archive."""
    import json, random, sys
    # files over 1 GiB (model weights) are left out: the sample must not fill the scratch disk
    files = [e["path"] for e in map(json.loads, open(sys.argv[1])) if e["type"] == "-" and e["size"] <= 1 << 30]
    random.Random(sys.argv[3]).shuffle(files)
    for p in sorted(files[: int(sys.argv[2])]):
        print(p)


def drill_compare():
    """The drill's comparison of the restored sample with the live files unchanged since the
    archive: prints '<same> <changed> <bad>' and the first bad paths."""
    import datetime, hashlib, json, os, sys
    meta = {e["path"]: e for e in map(json.loads, open(sys.argv[1]))}
    def sha(p):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        return h.hexdigest()
    same = changed = 0
    bad = []
    for p in open(sys.argv[2]).read().splitlines():
        live, restored, e = "/" + p, os.path.join(sys.argv[3], p), meta[p]
        # borg keeps the mtime to the microsecond, rounded; a real change moves it by far more
        archived_us = round(datetime.datetime.fromisoformat(e["mtime"]).timestamp() * 1_000_000)
        try:
            st = os.stat(live)
        except FileNotFoundError:
            changed += 1
            continue
        if abs(st.st_mtime_ns / 1000 - archived_us) > 1.5 or st.st_size != e["size"]:
            changed += 1  # changed since the archive: nothing to compare with
            continue
        if not os.path.exists(restored) or sha(restored) != sha(live):
            bad.append(live)
        else:
            same += 1
    print(f"{same} {changed} {len(bad)}")
    for b in bad[:20]:
        print(b)


def last_start():
    """The start of the last run in a status record, as Unix time."""
    import calendar, json, time
    r = json.load(open(sys.argv[1]))
    print(calendar.timegm(time.strptime(r["start"], "%Y-%m-%dT%H:%M:%SZ")))


COMMANDS = {"post-webhook": post_webhook, "ping": ping, "record": record, "sqlite-snapshot": sqlite_snapshot, "drill-sample": drill_sample, "drill-compare": drill_compare, "last-start": last_start}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: borg-run.py " + "|".join(COMMANDS) + " ARGS...")
    COMMANDS[sys.argv.pop(1)]()
