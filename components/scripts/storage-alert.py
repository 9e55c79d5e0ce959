#!/usr/bin/env python3
"""The storage checks of storage-alert.sh (its modes check, smartd and decide): measures, decides
the severity of each alert against its state, and prints "<priority>\t<text>" journal lines and
one "summary\t..." line for the shell side, which logs them. Carried with the script
(components/render/command.ts CARRIED_FILES) and run by lib.sh's run_py.

    storage-alert.py check|smartd|decide <config.json> <root> <state.json> <dry run 0|1>
"""
import json, os, re, subprocess, sys, time, urllib.request

RANK = {"info": 0, "warning": 1, "critical": 2}
PRIO = {"info": "info", "warning": "warning", "critical": "crit"}

def fmt_pct(x):
    return f"{x:.1f}%"

def human(b):
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if b >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b / 1e3:.2f} kB"

def alert(severity, what, where, value, threshold, message, key):
    return {"severity": severity, "what": what, "where": where, "value": value,
            "threshold": threshold, "message": message, "key": key}

def decide(cfg, m):
    """Pure: the config and the measurements in, the alerts out (most severe first)."""
    host = cfg["host"]
    out = []
    for u in m.get("usage", []):
        where = u["mount"]
        if "error" in u:
            out.append(alert("warning", "check", where, None, None,
                             f"cannot read disk usage of {where} on {host}: {u['error']}", f"usage-error:{where}"))
            continue
        cap = u["usedBytes"] + u["availBytes"]
        pct = 100.0 * u["usedBytes"] / cap if cap > 0 else 0.0
        for sev in ("critical", "warning"):
            th = cfg["usage"][sev]
            if pct > th:
                fs = f" (filesystem {u['fs']})" if u.get("fs") and u["fs"] != where else ""
                out.append(alert(sev, "disk usage", where, round(pct, 1), th,
                                 f"disk usage on {host} at {where}{fs}: {fmt_pct(pct)} used "
                                 f"({human(u['usedBytes'])} of {human(cap)}), threshold {th}%",
                                 f"usage:{where}"))
                break
    io = m.get("iowait")
    if io is not None:
        if "error" in io:
            out.append(alert("warning", "check", "iowait", None, None,
                             f"cannot read CPU iowait on {host}: {io['error']}", "iowait-error"))
        else:
            for sev in ("critical", "warning"):
                th = cfg["iowait"][sev]
                if io["percent"] > th:
                    out.append(alert(sev, "CPU iowait", host, io["percent"], th,
                                     f"CPU iowait on {host}: {fmt_pct(io['percent'])} over "
                                     f"{cfg['iowait']['sampleSeconds']}s, threshold {th}%", "iowait"))
                    break
    frac = cfg["iops"]["minFraction"]
    for p in m.get("iops", []):
        where = p["dir"]
        if p.get("error"):
            out.append(alert("warning", "check", where, None, None,
                             f"cannot measure IOPS in {where} on {host}: {p['error']}", f"iops-error:{where}"))
        elif p.get("baseline") is None:
            out.append(alert("info", "IOPS", where, None, None,
                             f"IOPS check in {where} on {host} skipped: no baseline yet ({p.get('baselineFile')})",
                             f"iops-nobaseline:{where}"))
        elif p.get("iops") is not None and p["iops"] < frac * p["baseline"]:
            th = round(frac * p["baseline"])
            out.append(alert("warning", "IOPS", where, round(p["iops"]), th,
                             f"random-read IOPS in {where} on {host}: {p['iops']:.0f}, below "
                             f"{frac:.0%} of the baseline {p['baseline']:.0f} (threshold {th})", f"iops:{where}"))
    for c in m.get("containers", []):
        name = c["name"]
        key = f"container:{name}"
        if c.get("error"):
            out.append(alert("warning", "check", name, None, None,
                             f"cannot inspect container {name} on {host}: {c['error']}", key))
            continue
        if c.get("missing"):
            out.append(alert("critical", "container", name, "missing", "running",
                             f"container {name} on {host} does not exist (expected running)", key))
            continue
        status, health = c.get("status"), c.get("health")
        if status in ("exited", "dead", "restarting"):
            extra = f", exit code {c.get('exitCode')}" if status != "restarting" and c.get("exitCode") is not None else ""
            restarts = f", {c['restartCount']} restarts" if c.get("restartCount") else ""
            out.append(alert("critical", "container", name, status, "running",
                             f"container {name} on {host} is {status}{extra}{restarts} (expected running)", key))
        elif status == "running" and health == "unhealthy":
            out.append(alert("critical", "container", name, "unhealthy", "healthy",
                             f"container {name} on {host} is running but unhealthy (expected healthy)", key))
        elif status in ("paused", "created", "removing"):
            out.append(alert("warning", "container", name, status, "running",
                             f"container {name} on {host} is {status} (expected running)", key))
        elif status == "running" and health == "starting":
            out.append(alert("info", "container", name, "starting", "healthy",
                             f"container {name} on {host} is starting (health check not passed yet)", key))
    out.sort(key=lambda a: -RANK[a["severity"]])
    return out

# ---- measuring (check mode) ----------------------------------------------------------------

def run(argv, timeout=120):
    env = dict(os.environ, LC_ALL="C")  # a decimal point, not a comma, in every number
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)

def measure_usage(root, mount):
    try:
        r = run(["df", "-P", "-B1", "--", root + mount])
    except (OSError, subprocess.SubprocessError) as e:
        return {"mount": mount, "error": str(e)}
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or len(lines) < 2:
        return {"mount": mount, "error": (r.stderr.strip() or "df printed nothing")}
    f = lines[-1].split()
    fs = " ".join(f[5:])
    if root and fs.startswith(root):
        fs = fs[len(root):] or "/"
    return {"mount": mount, "fs": fs, "usedBytes": int(f[2]), "availBytes": int(f[3])}

def parse_iostat_c(text):
    """%iowait of the last avg-cpu report of `iostat -c`."""
    last = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("avg-cpu:") and i + 1 < len(lines):
            cols = line.split()[1:]
            vals = lines[i + 1].split()
            if "%iowait" in cols and len(vals) == len(cols):
                last = float(vals[cols.index("%iowait")])
    if last is None:
        raise ValueError("no avg-cpu report with %iowait in iostat's output")
    return last

def measure_iowait(seconds):
    try:
        r = run(["iostat", "-c", str(seconds), "2"], timeout=seconds + 30)
        if r.returncode != 0:
            return {"error": r.stderr.strip() or f"iostat exited {r.returncode}"}
        return {"percent": parse_iostat_c(r.stdout)}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return {"error": str(e)}

def measure_container(name):
    try:
        r = run(["docker", "inspect", "--type", "container", "--format",
                 "{{json .State}}|{{.RestartCount}}", name], timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return {"name": name, "error": str(e)}
    if r.returncode != 0:
        if "no such" in r.stderr.lower():
            return {"name": name, "missing": True}
        return {"name": name, "error": r.stderr.strip() or f"docker exited {r.returncode}"}
    try:
        state_json, _, restarts = r.stdout.strip().rpartition("|")
        st = json.loads(state_json)
    except ValueError as e:
        return {"name": name, "error": f"unexpected docker inspect output: {e}"}
    return {"name": name, "status": st.get("Status"), "health": (st.get("Health") or {}).get("Status"),
            "exitCode": st.get("ExitCode"), "restartCount": int(restarts or 0)}

def fio_probe(root, target, cfg):
    probe = cfg["iops"]
    path = os.path.join(root + target["dir"], ".dgx-storage-probe")
    # the probe file stays between runs: laying it out again every hour would be a write load of its own
    r = run(["fio", "--output-format=json", "--name=probe", f"--filename={path}",
             f"--size={probe['probeSizeMiB']}M", "--rw=randread", "--bs=4k", "--iodepth=32",
             "--direct=1", "--ioengine=libaio", "--time_based", f"--runtime={probe['probeSeconds']}"],
            timeout=probe["probeSeconds"] + 120)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip() or f"fio exited {r.returncode}").splitlines()[-1])
    text = r.stdout
    return float(json.loads(text[text.index("{"):])["jobs"][0]["read"]["iops"])

def measure_iops(root, cfg, state, now):
    out = []
    probes = state.setdefault("probes", {})
    for t in cfg["iops"]["targets"]:
        entry = {"dir": t["dir"], "baselineFile": t["baselineFile"], "baseline": None, "iops": None}
        try:
            with open(root + t["baselineFile"]) as f:
                entry["baseline"] = float(json.load(f)["jobs"]["randread-4k-qd32"]["iops"])
        except FileNotFoundError:
            out.append(entry)
            continue
        except (OSError, ValueError, KeyError, TypeError) as e:
            entry["error"] = f"unreadable baseline {t['baselineFile']}: {e}"
            out.append(entry)
            continue
        last = probes.get(t["dir"])
        if last and now - last["at"] < cfg["iops"]["everyMinutes"] * 60:
            entry["iops"] = last["iops"]
        else:
            try:
                entry["iops"] = fio_probe(root, t, cfg)
                probes[t["dir"]] = {"at": now, "iops": entry["iops"]}
            except (OSError, subprocess.SubprocessError, RuntimeError, ValueError, KeyError, IndexError) as e:
                entry["error"] = str(e)
        out.append(entry)
    return out

# ---- textfile metrics (node_exporter's textfile collector) --------------------------------------

def esc(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

def metrics_text(cfg, m):
    """The measurements in Prometheus's text format, no sample timestamps (the textfile collector
    refuses them): https://prometheus.io/docs/instrumenting/exposition_formats/"""
    fam = {}
    def add(name, help_, labels, value):
        fam.setdefault(name, (help_, []))[1].append((labels, value))
    for u in m.get("usage", []):
        if "error" in u:
            add("dgx_storage_check_error", "1 when the storage check could not measure something", {"what": "usage", "where": u["mount"]}, 1)
            continue
        cap = u["usedBytes"] + u["availBytes"]
        add("dgx_storage_used_bytes", "Used bytes of the data mount's filesystem (df)", {"mount": u["mount"]}, u["usedBytes"])
        add("dgx_storage_avail_bytes", "Bytes available to unprivileged users (df)", {"mount": u["mount"]}, u["availBytes"])
        add("dgx_storage_used_percent", "used / (used + available), percent, as df's Use%", {"mount": u["mount"]}, round(100.0 * u["usedBytes"] / cap, 3) if cap > 0 else 0)
    io = m.get("iowait")
    if io is not None:
        if "error" in io:
            add("dgx_storage_check_error", "1 when the storage check could not measure something", {"what": "iowait", "where": cfg["host"]}, 1)
        else:
            add("dgx_storage_iowait_percent", "CPU iowait over the check's sample, percent (iostat -c)", {}, io["percent"])
    for p in m.get("iops", []):
        if p.get("baseline") is not None:
            add("dgx_storage_iops_baseline", "randread-4k-qd32 IOPS of the fio baseline", {"dir": p["dir"]}, p["baseline"])
        if p.get("error"):
            add("dgx_storage_check_error", "1 when the storage check could not measure something", {"what": "iops", "where": p["dir"]}, 1)
        elif p.get("iops") is not None:
            add("dgx_storage_iops_probe", "randread-4k-qd32 IOPS of the last short fio probe", {"dir": p["dir"]}, p["iops"])
    for c in m.get("containers", []):
        name = c["name"]
        if c.get("error"):
            add("dgx_storage_check_error", "1 when the storage check could not measure something", {"what": "container", "where": name}, 1)
            continue
        status = "missing" if c.get("missing") else (c.get("status") or "unknown")
        add("dgx_container_running", "1 when the service container is running", {"container": name}, 1 if status == "running" else 0)
        add("dgx_container_restarting", "1 when the service container is restarting", {"container": name}, 1 if status == "restarting" else 0)
        add("dgx_container_unhealthy", "1 when the service container's health check fails", {"container": name}, 1 if c.get("health") == "unhealthy" else 0)
        if not c.get("missing"):
            add("dgx_container_restarts_total", "Docker's restart count of the service container", {"container": name}, c.get("restartCount") or 0)
    lines = []
    for name in sorted(fam):
        help_, samples = fam[name]
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}"]
        for labels, value in samples:
            lab = ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")
    return "\n".join(lines) + "\n"

def write_textfile(path, text):
    """Atomically: a temporary file in the same directory, then rename, so node_exporter never
    reads half a file (https://github.com/prometheus/node_exporter#textfile-collector)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

# ---- sending ---------------------------------------------------------------------------------

def webhook_url(root, cfg):
    if not cfg.get("webhookFile"):
        return None  # alerts go through Prometheus and Alertmanager: the textfile metrics below
    try:
        with open(root + cfg["webhookFile"]) as f:
            for line in f:
                if line.strip():
                    url = line.strip()
                    if not re.match(r"^https?://", url):
                        raise ValueError(f"{cfg['webhookFile']} does not hold an http(s) URL")
                    return url
    except FileNotFoundError:
        return None
    return None

def webhook_or_warn(root, cfg):
    """The webhook URL, or None (no file, or an unusable one: then a journal warning says why)."""
    try:
        return webhook_url(root, cfg)
    except (OSError, ValueError) as e:
        emit("warning", f"warning: webhook not used: {e}")
        return None

def post(url, host, severity, text):
    # plain text with ntfy's headers: ntfy shows title and priority, other receivers
    # (healthchecks, a chat webhook relay) take the body as it is
    req = urllib.request.Request(url, data=text.encode(), method="POST", headers={
        "Content-Type": "text/plain; charset=utf-8",
        "Title": f"storage-alert {host}: {severity}",
        "Priority": {"critical": "5", "warning": "4", "info": "3"}[severity],
        "Tags": f"storage,{severity}",
    })
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()

def emit(line_sev, text):
    print(f"{PRIO[line_sev]}\t{' '.join(text.split())}", flush=True)

def load_state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}

def save_state(path, state):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)

def deliver(alerts, cfg, root, state, now, dry_run):
    """Journal lines for all alerts; the webhook for new, changed, due and resolved ones."""
    for a in alerts:
        emit(a["severity"], f"{a['severity']}: {a['message']}")
    url = webhook_or_warn(root, cfg)
    if not url:
        return  # journal only; nothing is marked as sent, so a webhook added later gets the current alerts
    sent = state.setdefault("alerts", {})
    current = {a["key"]: a for a in alerts if a["severity"] != "info"}
    outbox = []
    for key, a in current.items():
        prev = sent.get(key)
        if prev is None or prev["severity"] != a["severity"] or now - prev["sentAt"] >= cfg["repeatMinutes"] * 60:
            outbox.append((key, a["severity"], f"{a['severity']}: {a['message']}"))
    for key in [k for k in sent if k not in current]:
        outbox.append((key, "info", f"resolved: {sent[key]['message']}"))
    for key, sev, text in outbox:
        ok = True
        if not dry_run:
            try:
                post(url, cfg["host"], sev, text)
            except Exception as e:  # noqa: BLE001 - any failure to send is reported the same way
                ok = False
                emit("warning", f"warning: webhook delivery failed ({e.__class__.__name__}: {e}); will retry next run")
        else:
            emit("info", f"dry run: would POST to the webhook: {text}")
        if not ok:
            continue
        if sev == "info" and text.startswith("resolved: "):
            sent.pop(key, None)
        else:
            sent[key] = {"severity": sev, "sentAt": now, "message": current[key]["message"]}

def main():
    mode, cfg_path, root, state_path, dry_run = sys.argv[1:6]
    dry_run = dry_run == "1"
    try:
        with open(root + cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"storage-alert: error: cannot read the config {cfg_path}: {e}")
    if mode == "decide":
        print(json.dumps(decide(cfg, json.load(sys.stdin)), indent=1))
        return
    if mode == "smartd":
        ft = os.environ.get("SMARTD_FAILTYPE", "unknown")
        dev = os.environ.get("SMARTD_DEVICESTRING") or os.environ.get("SMARTD_DEVICE", "unknown device")
        msg = os.environ.get("SMARTD_MESSAGE", "(no message)")
        sev = "info" if ft == "EmailTest" else "critical"
        a = alert(sev, f"SMART {ft}", dev, ft, "none", f"SMART {ft} on {cfg['host']} at {dev}: {msg}", f"smart:{dev}:{ft}")
        emit(sev, f"{sev}: {a['message']}")
        url = webhook_or_warn(root, cfg)
        if url and not dry_run:
            try:
                post(url, cfg["host"], sev, f"{sev}: {a['message']}")
            except Exception as e:  # noqa: BLE001
                emit("warning", f"warning: webhook delivery failed ({e})")
        tdir = cfg.get("textfileDir")
        if sev == "critical" and tdir and os.path.isdir(root + tdir) and not dry_run:
            # one series per device and failure type, valued at the time of smartd's last report
            # (the SMARTCritical rule looks back one day); earlier reports of other devices kept
            path = os.path.join(root + tdir, "dgx_smartd.prom")
            name = "dgx_smartd_alert_timestamp_seconds"
            try:
                old = [l for l in open(path).read().splitlines() if l.startswith(name + "{")]
            except FileNotFoundError:
                old = []
            series = f'{name}{{device="{esc(dev)}",failtype="{esc(ft)}"}}'
            keep = [l for l in old if not l.startswith(series + " ")]
            write_textfile(path, "\n".join([f"# HELP {name} Unix time of smartd's last report of a SMART problem",
                                             f"# TYPE {name} gauge", *keep, f"{series} {int(time.time())}"]) + "\n")
        return
    now = time.time()
    state = load_state(state_path)
    m = {"usage": [measure_usage(root, p) for p in cfg["mounts"]],
         "iowait": measure_iowait(cfg["iowait"]["sampleSeconds"]),
         "iops": measure_iops(root, cfg, state, now),
         "containers": [measure_container(c) for c in cfg["containers"]]}
    alerts = decide(cfg, m)
    deliver(alerts, cfg, root, state, now, dry_run)
    tdir = cfg.get("textfileDir")
    if tdir and os.path.isdir(root + tdir):
        if dry_run:
            emit("info", f"dry run: would write {tdir}/dgx_storage.prom")
        else:
            write_textfile(os.path.join(root + tdir, "dgx_storage.prom"), metrics_text(cfg, m))
    if not dry_run:
        save_state(state_path, state)
    counts = {s: sum(1 for a in alerts if a["severity"] == s) for s in RANK}
    print(f"summary\t{len(cfg['mounts'])} mounts, {len(cfg['containers'])} containers, "
          f"{len(cfg['iops']['targets'])} IOPS targets checked: {counts['critical']} critical, "
          f"{counts['warning']} warning, {counts['info']} info", flush=True)

main()
