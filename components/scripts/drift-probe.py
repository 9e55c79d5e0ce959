"""The drift probe's comparison (drift-probe.sh): the expectation (components/render/drift.ts,
DriftExpectation) on stdin, a JSON list of differences {"kind","what","expected","actual"} on
stdout. It only reads. DGX_ROOT and DGX_STATE_DIR come from drift-probe.sh."""
import hashlib, json, os, shutil, subprocess, sys
exp = json.load(sys.stdin)
root, state_dir = os.environ["DGX_ROOT"], os.environ["DGX_STATE_DIR"]
drifts = []
def add(kind, what, expected, actual):
    drifts.append({"kind": kind, "what": what, "expected": str(expected), "actual": str(actual)})
def run(*argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    return r.returncode, r.stdout.strip()
def sha(b):
    return hashlib.sha256(b).hexdigest()[:12]

for f in exp["files"]:
    path = root + f["path"]
    try:
        data = open(path, "rb").read()
    except OSError:
        add("file", f["path"], "present", "missing")
        continue
    if f["kind"] == "file":
        if data != f["content"].encode():
            add("file", f["path"], "sha256 " + sha(f["content"].encode()), "sha256 " + sha(data) + " (edited on the host?)")
        continue
    # daemon.json: the managed keys the merge wrote must hold the declared values
    try:
        live = json.loads(data or b"{}")
    except ValueError:
        add("daemon.json", f["path"], "valid JSON", "invalid JSON")
        continue
    try:
        managed = json.load(open(os.path.join(state_dir, "daemon-json.state.json")))["managed"]
    except (OSError, ValueError, KeyError):
        managed = None
    for key, value in json.loads(f["content"]).items():
        if managed is not None and key not in managed:
            continue  # left to a dockerd flag by the merge
        if live.get(key) != value:
            add("daemon.json", key, json.dumps(value, sort_keys=True), json.dumps(live.get(key), sort_keys=True) if key in live else "missing")

for key, value in exp["sysctl"].items():
    try:
        live = " ".join(open(root + "/proc/sys/" + key.replace(".", "/")).read().split())
    except OSError:
        live = "missing"
    if live != str(value):
        add("sysctl", key, value, live)

have_systemd = not root and shutil.which("systemctl")
for unit in exp["enabledUnits"]:
    if have_systemd:
        _, out = run("systemctl", "is-enabled", unit)
        if out not in ("enabled", "static", "alias"):
            add("unit", unit, "enabled", out or "unknown")

have_docker = not root and shutil.which("docker")
if exp.get("swarmRole") and have_docker:
    _, out = run("docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
    state, control = (out.split() + ["", ""])[:2]
    role = ("manager" if control == "true" else "worker") if state == "active" else state
    if role != exp["swarmRole"]:
        add("swarm", "membership", exp["swarmRole"], role or "unknown")
for c in exp["containers"]:
    if not have_docker:
        break
    rc, out = run("docker", "inspect", c["name"])
    if rc != 0:
        add("container", c["name"], "running", "missing")
        continue
    info = json.loads(out)[0]
    if not info["State"]["Running"]:
        add("container", c["name"], "running", info["State"]["Status"])
    live = sorted((m.get("Name") if m["Type"] == "volume" else m["Source"], m["Destination"]) for m in info.get("Mounts") or [])
    want = sorted((m["source"], m["target"]) for m in c["mounts"])
    if live != want:
        add("container", c["name"] + " mounts", want, live)
for name in exp["migrations"]:
    try:
        state = json.load(open(os.path.join(state_dir, "migrations", name + ".json"))).get("state")
    except (OSError, ValueError):
        state = "missing"
    if state != "complete":
        add("migration", name, "complete", state)
print(json.dumps(drifts))
