#!/usr/bin/env python3
"""The join request of swarm-join.sh (carried with it, components/render/command.ts CARRIED_FILES,
and run by lib.sh's run_py): POST /swarm/join to the engine's socket, the join token read from
stdin so that it never appears in any argv (Docker Engine API, "Join an existing swarm").

    swarm-join.py <docker socket> <manager address:port> <advertise address>   (the token on stdin)
"""
import json, socket, sys, http.client
sock_path, manager, advertise = sys.argv[1:4]
token = sys.stdin.read()
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(sock_path)
body = json.dumps({"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": advertise,
                   "RemoteAddrs": [manager], "JoinToken": token})
c = Conn("localhost")
c.request("POST", "/swarm/join", body=body, headers={"Content-Type": "application/json"})
r = c.getresponse()
text = r.read().decode()
if r.status != 200:
    msg = json.loads(text).get("message", text) if text.startswith("{") else text
    sys.exit(f"swarm-join: error: the engine refused to join {manager}: {msg}")
