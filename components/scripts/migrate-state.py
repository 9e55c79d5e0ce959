"""The state file of a migration (migrate.sh): one JSON object, replaced atomically.

  migrate-state.py get MARKER KEY          prints the field, nothing when absent
  migrate-state.py [--metrics-dir DIR] set MARKER KEY=VALUE...
                                           sets fields (strings); KEY= with no value removes KEY

With --metrics-dir (node_exporter's textfile directory; nothing is written when it does not
exist), every `set` also rewrites DIR/dgx_migration_<name>.prom, <name> being MARKER's file name
without .json: the migration's state (one-hot), when it was first started, and its downtime once
it is known. The first start is kept in the marker (first_started_at): a run that fails and is
run again records a new started_at, and "not verified for N hours" counts from the first.
"""
import calendar
import json
import os
import sys
import time

# the states migrate.sh records: copying (run started), verified (the service runs from the
# destination), complete (finalize: the source read-only)
STATES = ("copying", "verified", "complete")


def load(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write_atomic(path, text, mode=None):
    """A temporary file in the same directory, synced, then renamed over PATH: never half a file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def utc(stamp):
    """migrate.sh's %Y-%m-%dT%H:%M:%SZ as Unix time; None when absent or malformed."""
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def downtime(state):
    """The service's downtime in seconds: finalize's downtime_s, or from the run's stop to its
    hand-over (both `date +%s.%N`) once the migration is verified; None before."""
    d = number(state.get("downtime_s"))
    if d is None and state.get("state") in ("verified", "complete"):
        stopped, handover = number(state.get("stopped_at")), number(state.get("handover_at"))
        if stopped is not None and handover is not None:
            d = round(handover - stopped, 1)
    return d


def metrics_text(name, state):
    """Prometheus's text format (https://prometheus.io/docs/instrumenting/exposition_formats/),
    each family once with HELP and TYPE, no sample timestamps (the textfile collector refuses
    them). The label value is a migration name: lower-case letters, digits and '-'."""
    lab = f'migration="{name}"'
    fams = [("dgx_migration_state", "1 for the state migrate.sh last recorded (copying, verified, complete)",
             [(f'{lab},state="{s}"', 1 if state.get("state") == s else 0) for s in STATES])]
    started = utc(state.get("first_started_at"))
    if started is not None:
        fams.append(("dgx_migration_started_timestamp_seconds", "Unix time the migration's first run started copying", [(lab, started)]))
    d = downtime(state)
    if d is not None:
        fams.append(("dgx_migration_downtime_seconds", "Seconds the service was stopped: the writers stopped to the new container healthy", [(lab, d)]))
    lines = []
    for metric, help_, samples in fams:
        lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} gauge"]
        lines += [f"{metric}{{{labels}}} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def write_metrics(metrics_dir, marker, state):
    name = os.path.basename(marker)
    name = name[: -len(".json")] if name.endswith(".json") else name
    path = os.path.join(metrics_dir, f"dgx_migration_{name.replace('-', '_')}.prom")
    write_atomic(path, metrics_text(name, state), 0o644)


def main(argv):
    metrics_dir = None
    if argv[:1] == ["--metrics-dir"]:
        if len(argv) < 2:
            sys.exit("migrate-state.py: --metrics-dir needs a directory")
        metrics_dir, argv = argv[1], argv[2:]
    if len(argv) < 3 or argv[0] not in ("get", "set"):
        sys.exit("usage: migrate-state.py get MARKER KEY | [--metrics-dir DIR] set MARKER KEY=VALUE...")
    mode, path = argv[0], argv[1]
    state = load(path)
    if mode == "get":
        value = state.get(argv[2])
        print("" if value is None else value)
        return
    for kv in argv[2:]:
        key, _, value = kv.partition("=")
        if value:
            state[key] = value
        else:
            state.pop(key, None)
    if state.get("state") == "copying" and "first_started_at" not in state:
        state["first_started_at"] = state.get("started_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")
    if metrics_dir and os.path.isdir(metrics_dir):
        write_metrics(metrics_dir, path, state)


if __name__ == "__main__":
    main(sys.argv[1:])
