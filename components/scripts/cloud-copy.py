#!/usr/bin/env python3
"""The Python side of cloud-copy.sh, one function per subcommand. Carried with the script
(components/render/command.ts CARRIED_FILES) and run by lib.sh's run_py:

    cloud-copy.py bytes <rclone json log>     the bytes of rclone's final statistics
    cloud-copy.py errors <rclone json log>    its last error lines, as one line
    cloud-copy.py rewind <repository dir>     drop what a sync added after the oldest index
    cloud-copy.py checked-since <status json>...   the start of the newest passing check among them
    cloud-copy.py exec-if-unchanged <repository dir> <since> <command>...
                                              exit 75 when the repository was written since, else exec

After the subcommand is taken off, sys.argv[1:] are its arguments.
"""
import sys


def _entries(path):
    """The JSON lines of an rclone --use-json-log file; other lines (rclone's own stderr) as msg."""
    import json
    try:
        lines = open(path, errors="replace").read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            e = json.loads(line)
            out.append(e if isinstance(e, dict) else {"msg": line})
        except ValueError:
            if line.strip():
                out.append({"level": "error" if "ERROR" in line or "Failed" in line else "info", "msg": line})
    return out


def checked_since():
    """The start (Unix time) of the newest run that passed among these status records (borg-run.py
    record's format: `start` in UTC, `status`, `exit_code`); nothing when none did. A record that
    is missing or unreadable counts as no passing check."""
    import calendar, json, time
    best = None
    for path in sys.argv[1:]:
        try:
            r = json.load(open(path))
            if r.get("status") != "ok" or r.get("exit_code") != 0:
                continue
            t = calendar.timegm(time.strptime(r["start"], "%Y-%m-%dT%H:%M:%SZ"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        best = t if best is None else max(best, t)
    if best is not None:
        print(best)


def exec_if_unchanged():
    """Run the command in place of this process when no committed part of the borg repository was
    written at or after <since> (Unix time); exit 75 otherwise. borg never rewrites a committed
    segment: a commit appends segments and writes a new index.<transaction> with its hints and
    integrity files (https://borgbackup.readthedocs.io/en/1.2-maint/internals/data-structures.html,
    "Repository"). So a newer index, hints or integrity file means a commit, and a newer segment
    numbered at or below the last transaction means a committed segment was changed in place.
    Segments above it are uncommitted: those `borg with-lock` writes before it runs its command
    (borg 1.2 archiver.py, do_with_lock), or an interrupted run's, rolled back when the repository
    is next opened."""
    import os
    repo, since, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    if not cmd:
        sys.exit("usage: cloud-copy.py exec-if-unchanged <repository dir> <since> <command>...")
    top = os.listdir(repo)
    last = max((int(n[6:]) for n in top if n.startswith("index.") and n[6:].isdigit()), default=None)
    if last is None:
        sys.exit(75)
    for n in top:
        if n.split(".")[0] in ("index", "hints", "integrity") and os.lstat(os.path.join(repo, n)).st_mtime >= since:
            sys.exit(75)
    for dirpath, _, files in os.walk(os.path.join(repo, "data")):
        for f in files:
            if f.isdigit() and int(f) > last:
                continue
            if os.lstat(os.path.join(dirpath, f)).st_mtime >= since:
                sys.exit(75)
    os.execvp(cmd[0], cmd)


def bytes_():
    """rclone logs its statistics as a JSON object with `stats.bytes` (fs/accounting/stats.go,
    RemoteStats); the last one is the run's total. Nothing printed when there is none."""
    total = None
    for e in _entries(sys.argv[1]):
        s = e.get("stats")
        if isinstance(s, dict) and isinstance(s.get("bytes"), int):
            total = s["bytes"]
    if total is not None:
        print(total)


def errors():
    """The last three distinct error messages, one line: what the alert and the record show."""
    msgs = []
    for e in _entries(sys.argv[1]):
        if e.get("level") in ("error", "critical", "fatal") or "Failed" in str(e.get("msg", "")):
            m = " ".join(str(e.get("msg", "")).split())
            if m and m not in msgs:
                msgs.append(m)
    print(" / ".join(msgs[-3:])[:600] or "rclone gave no error message")


def rewind():
    """A repository fetched with the objects one sync moved to its backup dir laid over it holds
    two index files: the older, N, is the transaction before that sync. borg names index, hints
    and integrity files after the segment of their commit and never rewrites a closed segment
    (https://borgbackup.readthedocs.io/en/1.2-maint/internals/data-structures.html#segments),
    so the state before the sync is every file numbered N or lower."""
    import glob, os
    d = sys.argv[1]
    numbered = lambda pat: [(int(os.path.basename(p).split(".")[-1]), p) for p in glob.glob(os.path.join(d, pat)) if os.path.basename(p).split(".")[-1].isdigit()]
    indexes = sorted(numbered("index.*"))
    if not indexes:
        sys.exit(f"{d} holds no index file: not a borg repository")
    n = indexes[0][0]
    dropped = 0
    for num, p in numbered("index.*") + numbered("hints.*") + numbered("integrity.*"):
        if num > n:
            os.remove(p)
            dropped += 1
    for p in glob.glob(os.path.join(d, "data", "*", "*")):
        name = os.path.basename(p)
        if name.isdigit() and int(name) > n:
            os.remove(p)
            dropped += 1
    print(f"transaction {n}: dropped {dropped} newer files")


COMMANDS = {"bytes": bytes_, "errors": errors, "rewind": rewind, "checked-since": checked_since, "exec-if-unchanged": exec_if_unchanged}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: cloud-copy.py " + "|".join(COMMANDS) + " ARGS...")
    COMMANDS[sys.argv.pop(1)]()
