#!/usr/bin/env python3
"""The Python side of cloud-copy.sh, one function per subcommand. Carried with the script
(components/render/command.ts CARRIED_FILES) and run by lib.sh's run_py:

    cloud-copy.py bytes <rclone json log>     the bytes of rclone's final statistics
    cloud-copy.py errors <rclone json log>    its last error lines, as one line
    cloud-copy.py rewind <repository dir>     drop what a sync added after the oldest index

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


COMMANDS = {"bytes": bytes_, "errors": errors, "rewind": rewind}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: cloud-copy.py " + "|".join(COMMANDS) + " ARGS...")
    COMMANDS[sys.argv.pop(1)]()
