"""The state file of a migration (migrate.sh): one JSON object, replaced atomically.

  migrate-state.py get MARKER KEY          prints the field, nothing when absent
  migrate-state.py set MARKER KEY=VALUE... sets fields (strings); KEY= with no value removes KEY
"""
import json
import os
import sys


def load(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def main(argv):
    if len(argv) < 3 or argv[0] not in ("get", "set"):
        sys.exit("usage: migrate-state.py get MARKER KEY | set MARKER KEY=VALUE...")
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
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv[1:])
