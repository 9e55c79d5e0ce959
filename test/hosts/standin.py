#!/usr/bin/python3
# Stand-in for the services the stacks run (nothing can be pulled here): one script, one mode
# per service, in the image standin:1 (build-standin.sh).
#
#   standin chroma [--data DIR] [--port N]   ChromaDB: HTTP on 8000, /api/v1/heartbeat; a live
#                                            writer committing a row every few ms to
#                                            DIR/chroma.sqlite3 (WAL mode, default /chroma/chroma);
#                                            /api/v1/last: the last committed id
#   standin memory [--data DIR] [--port N]   the memory service: HTTP on 8080; POST /remember
#                                            appends the body to DIR/memories.log (default /app/data)
#   standin vllm [--port N]                  vLLM's OpenAI server: HTTP on 8000, /health, /v1/models
#
# With STANDIN_UNHEALTHY_IF=<path> in its environment, its health endpoint (/health, or chroma's
# heartbeat) answers 503 while that file exists: a service that starts but never becomes healthy,
# the fault the rehearsal of the first apply needs. The other endpoints still answer.
#
# With the real services' authentication variables (CHROMA_SERVER_AUTHN_PROVIDER with
# CHROMA_SERVER_AUTHN_CREDENTIALS, or VLLM_API_KEY) it asks for `Authorization: Bearer <token>` as
# they do: everywhere but chroma's heartbeat, on vLLM's /v1/... only; 401 otherwise.
#
# SIGTERM stops it cleanly (the writer finishes its transaction, the database is closed): what
# `docker stop` sends first.
import argparse
import http.server
import json
import os
import signal
import sqlite3
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["chroma", "memory", "vllm"])
parser.add_argument("--data")
parser.add_argument("--port", type=int)
args = parser.parse_args()

DEFAULTS = {"chroma": ("/chroma/chroma", 8000), "memory": ("/app/data", 8080), "vllm": (None, 8000)}
data_dir = args.data or DEFAULTS[args.mode][0]
port = args.port or DEFAULTS[args.mode][1]
stopping = threading.Event()
last_id = 0


def writer():
    """Commits a row every 3 ms until SIGTERM; last_id is the last committed one."""
    global last_id
    db = sqlite3.connect(os.path.join(data_dir, "chroma.sqlite3"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, at REAL)")
    while not stopping.is_set():
        cur = db.execute("INSERT INTO t(at) VALUES (?)", (time.time(),))
        last_id = cur.lastrowid
        time.sleep(0.003)
    db.close()


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        # as the real services check their token: ChromaDB's token provider everywhere but the
        # heartbeat (chromadb/server/fastapi: heartbeat authenticates nothing), vLLM's API key on
        # /v1/... only (vllm/entrypoints/openai/api_server.py: the authentication middleware)
        if args.mode == "chroma" and os.environ.get("CHROMA_SERVER_AUTHN_PROVIDER", "").endswith("TokenAuthenticationServerProvider"):
            token, public = os.environ.get("CHROMA_SERVER_AUTHN_CREDENTIALS", ""), self.path == "/api/v1/heartbeat"
        elif args.mode == "vllm" and os.environ.get("VLLM_API_KEY"):
            token, public = os.environ["VLLM_API_KEY"], not self.path.startswith("/v1")
        else:
            return True
        return public or self.headers.get("Authorization") == f"Bearer {token}"

    def do_GET(self):
        if not self.authorized():
            self.reply(401, {"error": "Unauthorized"})
            return
        routes = {
            "chroma": {"/api/v1/heartbeat": lambda: {"nanosecond heartbeat": time.time_ns()}, "/api/v1/last": lambda: {"last": last_id}},
            "memory": {"/health": lambda: {"status": "ok"}},
            "vllm": {"/health": lambda: {}, "/v1/models": lambda: {"object": "list", "data": [{"id": "standin", "object": "model"}]}},
        }[args.mode]
        unhealthy_if = os.environ.get("STANDIN_UNHEALTHY_IF")
        if self.path in ("/health", "/api/v1/heartbeat") and unhealthy_if and os.path.exists(unhealthy_if):
            self.reply(503, {"error": f"unhealthy: {unhealthy_if} exists"})
        elif self.path in routes:
            self.reply(200, routes[self.path]())
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if args.mode == "memory" and self.path == "/remember":
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with open(os.path.join(data_dir, "memories.log"), "ab") as f:
                f.write(body + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self.reply(200, {"stored": len(body)})
        else:
            self.reply(404, {"error": "not found"})

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
threads = [threading.Thread(target=server.serve_forever, daemon=True)]
if args.mode == "chroma":
    os.makedirs(data_dir, exist_ok=True)
    threads.append(threading.Thread(target=writer))
elif data_dir:
    os.makedirs(data_dir, exist_ok=True)


def stop(*_):
    stopping.set()


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
for t in threads:
    t.start()
print(f"standin {args.mode} on :{port}" + (f", data in {data_dir}" if data_dir else ""), flush=True)
stopping.wait()
server.shutdown()
for t in threads[1:]:
    t.join()
sys.exit(0)
