#!/usr/bin/env python3
"""The manifest split of install-units.sh (carried with it, components/render/command.ts
CARRIED_FILES, and run by lib.sh's run_py):

    install-units.py <manifest json> <work dir> <lib dir> <etc dir>

writes each file under <work dir>/root, the list of paths and modes to <work dir>/.files and
the units to enable to <work dir>/.enable; a path outside the allowed directories, a mode that
is not octal or a unit name that is not one fails before anything is written on the host.
"""
import json, os, re, sys
manifest, work = sys.argv[1], sys.argv[2]
try:
    m = json.loads(manifest)
except ValueError as e:
    sys.exit(f"install-units: error: the manifest is not JSON ({e})")
allowed = ("/etc/systemd/system/", sys.argv[3] + "/", sys.argv[4] + "/")
with open(os.path.join(work, ".files"), "w") as lst:
    for f in m.get("files", []):
        p, mode = f["path"], f["mode"]
        if not p.startswith(allowed) or ".." in p or not re.fullmatch(r"[A-Za-z0-9_./@-]+", p):
            sys.exit(f"install-units: error: {p!r} is not a path this project installs to ({', '.join(allowed)})")
        if not re.fullmatch(r"0?[0-7]{3,4}", mode):
            sys.exit(f"install-units: error: mode {mode!r} of {p} is not octal")
        dest = os.path.join(work, "root", p.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as out:
            out.write(f["content"])
        lst.write(f"{p} {mode}\n")
with open(os.path.join(work, ".enable"), "w") as en:
    for u in m.get("enable", []):
        if not re.fullmatch(r"[A-Za-z0-9_.@-]+\.(timer|service|path|socket)", u):
            sys.exit(f"install-units: error: {u!r} is not a unit name")
        en.write(u + "\n")
