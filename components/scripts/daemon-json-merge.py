#!/usr/bin/env python3
"""The merge of daemon.json for daemon-json-merge.sh (carried with it, components/render/command.ts
CARRIED_FILES, and run by lib.sh's run_py):

    daemon-json-merge.py <mode> <desired json> <daemon.json> <state file> <output> <ROOT>

exit 10: the file must change (the merged text is in <output>, the state in <output>.state);
0: it is already right; anything else: an error, said on stderr.
"""
import glob, json, os, re, shlex, sys

mode, desired_text, path, state_path, tmp_path, root = sys.argv[1:7]

def fail(msg):
    print(f"daemon-json-merge: error: {msg}", file=sys.stderr)
    sys.exit(1)

try:
    desired = json.loads(desired_text)
except ValueError as e:
    fail(f"the managed keys are not valid JSON ({e})")
if not isinstance(desired, dict):
    fail("the managed keys must be a JSON object")

# --- the file as it is ----------------------------------------------------------------------
current = {}
raw = None
if os.path.exists(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.strip():
        try:
            current = json.loads(raw)
        except ValueError as e:
            fail(f"{path[len(root):] or path} is not valid JSON ({e}); it was left untouched. "
                 "Fix or move it, then apply again.")
        if not isinstance(current, dict):
            fail(f"{path} holds a JSON {type(current).__name__}, not an object; it was left untouched")

state = {"managed": {}}
if os.path.exists(state_path):
    with open(state_path) as f:
        state = json.load(f)
managed = state.setdefault("managed", {})

# --- what dockerd already gets as flags ------------------------------------------------------
UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system"]

def unit_lines(text):
    out, buf = [], ""
    for line in text.splitlines():
        s = line.rstrip()
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        out.append(buf + s)
        buf = ""
    if buf:
        out.append(buf)
    return out

def dockerd_exec():
    """Effective ExecStart of docker.service (systemd semantics: an empty ExecStart= in a
    drop-in resets the list), with its EnvironmentFile values, and the file it came from."""
    main = next((root + d + "/docker.service" for d in UNIT_DIRS
                 if os.path.isfile(root + d + "/docker.service")), None)
    files = [main] if main else []
    dropins = {}
    for d in reversed(UNIT_DIRS):  # higher-priority dirs last, so they win on a name clash
        for p in glob.glob(root + d + "/docker.service.d/*.conf"):
            dropins[os.path.basename(p)] = p
    files += [dropins[k] for k in sorted(dropins)]
    execs, envfiles = [], []
    for p in files:
        section = None
        with open(p) as f:
            for line in unit_lines(f.read()):
                s = line.strip()
                if s.startswith("["):
                    section = s
                elif section == "[Service]" and s.startswith("ExecStart="):
                    v = s[len("ExecStart="):].strip()
                    if v == "":
                        execs = []
                    else:
                        execs.append((v.lstrip("-@:+!"), p))
                elif section == "[Service]" and s.startswith("EnvironmentFile="):
                    envfiles.append(s[len("EnvironmentFile="):].strip())
    env = {}
    for ef in envfiles:
        ef = ef.lstrip("-")
        if os.path.isfile(root + ef):
            with open(root + ef) as f:
                for line in f:
                    m = re.match(r'^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$', line)
                    if m:
                        try:
                            parts = shlex.split(m.group(2), comments=True)
                        except ValueError:
                            parts = [m.group(2)]
                        env[m.group(1)] = " ".join(parts)
    if not execs:
        return [], None
    cmd, origin = execs[-1]
    cmd = re.sub(r'\$\{?([A-Za-z_]\w*)\}?', lambda m: env.get(m.group(1), ""), cmd)
    return shlex.split(cmd), origin

FLAGS = {"storage-driver": ("-s", "--storage-driver"), "log-driver": ("--log-driver",),
         "log-opts": ("--log-opt",), "live-restore": ("--live-restore",)}

def flag_values(argv):
    found = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        for key, names in FLAGS.items():
            for n in names:
                val = None
                if a == n:
                    if key == "live-restore":
                        val = True
                    elif i + 1 < len(argv):
                        val = argv[i + 1]
                        i += 1
                elif a.startswith(n + "="):
                    val = a[len(n) + 1:]
                    if key == "live-restore":
                        val = val.lower() not in ("false", "0")
                elif n == "-s" and a.startswith("-s") and len(a) > 2 and not a.startswith("--"):
                    val = a[2:]
                if val is not None:
                    if key == "log-opts":
                        k, _, v = str(val).partition("=")
                        found.setdefault(key, {})[k] = v
                    else:
                        found[key] = val
        i += 1
    return found

argv, origin = dockerd_exec()
flags = flag_values(argv)

# --- the merge -------------------------------------------------------------------------------
new = dict(current)
notes = []
write = {}
for key, value in desired.items():
    if key in flags:
        shown = " ".join(a for a in argv if a.startswith("-"))
        if flags[key] != value:
            fail(f"dockerd is started with {key}={json.dumps(flags[key])} as a command-line flag "
                 f"(ExecStart in {origin[len(root):]}: {shown}), but the stack config wants "
                 f"{json.dumps(value)}. dockerd refuses a directive given both as a flag and in "
                 "daemon.json: change the flag in that unit file or change the stack config.")
        notes.append(f"{key}: already passed to dockerd as a flag in {origin[len(root):]}; "
                     "not written to daemon.json (dockerd refuses a directive given twice)")
        if key in new and key not in managed:
            fail(f"{key} is both a dockerd flag ({origin[len(root):]}) and a key in daemon.json, "
                 "which dockerd refuses; remove one of them by hand (this project did not write it)")
        continue
    write[key] = value

for key in list(managed):
    if key not in write:
        orig = managed.pop(key)
        if orig.get("present"):
            new[key] = orig["value"]
        else:
            new.pop(key, None)
for key, value in write.items():
    if key not in managed:
        managed[key] = {"present": key in current, "value": current.get(key)}
    new[key] = value

changes = []
for key in sorted(set(current) | set(new)):
    if key not in new:
        changes.append(f"- {key}")
    elif key not in current:
        changes.append(f"+ {key} = {json.dumps(new[key], sort_keys=True)}")
    elif current[key] != new[key]:
        changes.append(f"~ {key} = {json.dumps(new[key], sort_keys=True)} (was {json.dumps(current[key], sort_keys=True)})")

for n in notes:
    print(f"daemon-json-merge: note: {n}")
for c in changes:
    print(f"daemon-json-merge: {c}")

text = json.dumps(new, indent=2, sort_keys=True) + "\n"
with open(tmp_path, "w") as f:
    f.write(text)
with open(tmp_path + ".state", "w") as f:
    json.dump(state, f, indent=2, sort_keys=True)
    f.write("\n")
# exit 10 = the file must change; 0 = it is already right (it is then not rewritten at all,
# so its mtime stays and docker-restart.sh sees no reason to restart)
sys.exit(10 if changes else 0)
