"""The `docker run` arguments of a migration's trial container (migrate.sh step 7): a clone of the
stopped container (image, command, user, workdir, env, mounts, health check, init, shm, GPUs) with
the destination mounted where the source was.

  migrate-trial.py INSPECT_JSON SOURCE DESTINATION TRIAL_NAME ARGS_OUT ENV_OUT

ARGS_OUT gets the arguments NUL-separated; ENV_OUT the environment, one VAR=value a line, so that
no value appears in argv on the host.
"""
import json
import sys


def trial_args(c, src, dst, trial, env_path):
    cfg, host = c["Config"], c["HostConfig"]
    args = ["--name", trial, "--label", "dgx-storage.migration-trial=1", "--env-file", env_path]
    if cfg.get("User"):
        args += ["--user", cfg["User"]]
    if cfg.get("WorkingDir"):
        args += ["--workdir", cfg["WorkingDir"]]
    for m in c.get("Mounts") or []:
        source = dst if m["Source"] == src else m["Source"]
        if m["Type"] == "volume":
            source = m["Name"]
        ro = "" if m.get("RW", True) else ",readonly"
        args += ["--mount", f"type={m['Type']},source={source},target={m['Destination']}{ro}"]
    hc = cfg.get("Healthcheck")
    if hc and hc.get("Test") and hc["Test"][0] != "NONE":
        test = hc["Test"]
        cmd = test[1] if test[0] == "CMD-SHELL" else " ".join(json.dumps(t) for t in test[1:])
        args += ["--health-cmd", cmd, "--health-interval", "2s", "--health-retries", str(hc.get("Retries") or 3)]
        if hc.get("Timeout"):
            args += ["--health-timeout", f"{hc['Timeout'] // 1_000_000}ms"]
        if hc.get("StartPeriod"):
            args += ["--health-start-period", f"{hc['StartPeriod'] // 1_000_000}ms"]
    if host.get("Init"):
        args.append("--init")
    if host.get("ShmSize"):
        args += ["--shm-size", str(host["ShmSize"])]
    for r in host.get("DeviceRequests") or []:
        if r.get("DeviceIDs"):
            args += ["--gpus", "device=" + ",".join(r["DeviceIDs"])]
        elif r.get("Count"):
            args += ["--gpus", str(r["Count"]) if r["Count"] > 0 else "all"]
    if cfg.get("Entrypoint"):
        args += ["--entrypoint", cfg["Entrypoint"][0]]
    args.append(cfg["Image"])
    return args + (cfg.get("Entrypoint") or [])[1:] + (cfg.get("Cmd") or [])


def main(argv):
    if len(argv) != 6:
        sys.exit("usage: migrate-trial.py INSPECT_JSON SOURCE DESTINATION TRIAL_NAME ARGS_OUT ENV_OUT")
    inspect, src, dst, trial, args_path, env_path = argv
    with open(inspect) as f:
        c = json.load(f)[0]
    with open(env_path, "w") as f:
        for e in c["Config"].get("Env") or []:
            f.write(e + "\n")
    with open(args_path, "w") as f:
        f.write("\0".join(trial_args(c, src, dst, trial, env_path)))


if __name__ == "__main__":
    main(sys.argv[1:])
