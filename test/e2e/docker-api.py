# One Docker Engine API request over the host's /var/run/docker.sock, as the Docker provider
# makes it through `docker system dial-stdio` over SSH: run by the e2e engine as the ssh user
# (in the docker group). argv: METHOD PATH; the JSON body, if any, on stdin. Prints one JSON
# line: {"status": <HTTP status>, "body": <response text>}.
import http.client
import json
import socket
import sys


class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect("/var/run/docker.sock")


method, path = sys.argv[1], sys.argv[2]
body = sys.stdin.read()
conn = UnixConnection("localhost", timeout=600)
conn.request(method, path, body=body.encode() if body else None, headers={"Content-Type": "application/json"} if body else {})
resp = conn.getresponse()
sys.stdout.write(json.dumps({"status": resp.status, "body": resp.read().decode("utf-8", "replace")}) + "\n")
