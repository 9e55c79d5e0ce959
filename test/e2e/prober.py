#!/usr/bin/python3
"""What the services' clients see during an apply, on a test host: each probe runs every
--interval seconds and appends `<unix time> <name> ok|fail [<detail>]` to its log.

    prober.py --interval 0.2 --log /var/tmp/probe.log NAME=SPEC ...

SPEC is one of:
  http://127.0.0.1:8000/api/v1/heartbeat      a GET through the published port, as a client
  exec:memory-service|memory-service-pre-dgx-storage:http://127.0.0.1:8080/health
                                              a GET inside the first of those containers that
                                              runs (a service that publishes nothing: its clients
                                              on the network reach whichever container runs with
                                              the service's alias, and a rename keeps aliases)
  remember:memory-service                     a POST /remember of the next sequence number inside
                                              that container; `ok <n>` means the service
                                              acknowledged record n (it must survive the move)

Runs until SIGTERM. Docker is reached on /var/run/docker.sock (the Engine API, no CLI).
"""
import argparse
import http.client
import json
import signal
import socket
import sys
import threading
import time
import urllib.request


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=5)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect("/var/run/docker.sock")


def docker(method, path, body=None):
    c = UnixHTTPConnection()
    c.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def running(names):
    """The first of NAMES ('a|b') that runs, or None."""
    for name in names.split("|"):
        status, data = docker("GET", f"/containers/{name}/json")
        if status == 200 and json.loads(data)["State"]["Running"]:
            return name
    return None


def exec_in(names, code):
    """Runs python3 -c CODE in the first running container of NAMES; True when it exits 0."""
    container = running(names)
    if container is None:
        return False, "none running"
    status, data = docker("POST", f"/containers/{container}/exec", {"Cmd": ["python3", "-c", code], "AttachStdout": True, "AttachStderr": True})
    if status != 201:
        return False, f"exec create {status}"
    exec_id = json.loads(data)["Id"]
    status, _ = docker("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    if status != 200:
        return False, f"exec start {status}"
    _, data = docker("GET", f"/exec/{exec_id}/json")
    code = json.loads(data).get("ExitCode")
    return code == 0, f"exit {code}"


def probe(spec, state):
    if spec.startswith("http://"):
        try:
            with urllib.request.urlopen(spec, timeout=2) as r:
                return r.status == 200, str(r.status)
        except Exception as e:  # noqa: BLE001 - any failure is a failed probe
            return False, type(e).__name__
    kind, _, rest = spec.partition(":")
    if kind == "exec":
        container, _, url = rest.partition(":")
        return exec_in(container, f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)")
    if kind == "remember":
        n = state.get("n", 0) + 1
        ok, detail = exec_in(rest, f"import urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8080/remember', data=b'record-{n}'), timeout=2)")
        if ok:
            state["n"] = n
            return True, str(n)
        return False, detail
    return False, f"unknown spec {spec}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--log", required=True)
    p.add_argument("probes", nargs="+")
    a = p.parse_args()
    probes = [x.split("=", 1) for x in a.probes]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    out = open(a.log, "a", buffering=1)

    def loop(name, spec):
        state = {}
        while not stop.is_set():
            t = time.time()
            try:
                ok, detail = probe(spec, state)
            except Exception as e:  # noqa: BLE001 - a probe that raises failed; the loop goes on
                ok, detail = False, type(e).__name__
            with lock:
                out.write(f"{t:.3f} {name} {'ok' if ok else 'fail'} {detail}\n")
            stop.wait(max(0.0, a.interval - (time.time() - t)))

    threads = [threading.Thread(target=loop, args=(n, s)) for n, s in probes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
