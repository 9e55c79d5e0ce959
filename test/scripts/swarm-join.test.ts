/**
 * swarm-join.sh as the host receives it (the bundle, swarm-join.py inside it) against a stand-in
 * Docker Engine API on a unix socket: the join request carries the token read from stdin, which
 * is in no argv; a refusal from the engine is an error naming the manager. `docker info` is a
 * stand-in on PATH (this host is not in a swarm).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { bundledScript } from "../../components/render/command";
import { hostPathEnv } from "../../components/render/host-paths";
import { describeWith } from "../tools";

const TOKEN = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef-0123456789abcdefghijklmn";

/** An HTTP server on a unix socket that records each request and answers with `status` and `body`. */
const ENGINE = `
import http.server, json, os, socketserver, subprocess, sys
sock, log, status, body, argv = sys.argv[1:6]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        # every process's argv while the request is open: swarm-join.py is one of them
        with open(argv, "a") as f:
            f.write(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "body": json.loads(data)}) + "\\n")
        self.send_response(int(status)); self.end_headers(); self.wfile.write(body.encode())
    def log_message(self, *a): pass
    def address_string(self): return "unix"
class S(socketserver.UnixStreamServer):
    def get_request(self):
        req, _ = self.socket.accept()
        return req, ("unix", 0)
if os.path.exists(sock): os.unlink(sock)
S(sock, H).serve_forever()
`;

async function join(
  status: number,
  body: string,
): Promise<{ code: number; stdout: string; stderr: string; requests: { path: string; body: Record<string, unknown> }[]; argv: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-swarm-join-"));
  const sock = path.join(dir, "docker.sock");
  const log = path.join(dir, "requests.jsonl");
  fs.mkdirSync(path.join(dir, "bin"));
  // docker info: not in a swarm; every other call fails the test
  fs.writeFileSync(
    path.join(dir, "bin", "docker"),
    `#!/bin/bash\nps -eo args >>${dir}/argv\n[[ "$*" == *LocalNodeState* ]] && { echo inactive; exit 0; }\necho "unexpected docker $*" >&2; exit 99\n`,
    { mode: 0o755 },
  );
  const script = path.join(dir, "swarm-join.sh");
  fs.writeFileSync(script, bundledScript("swarm-join"), { mode: 0o755 });
  const engine = spawn("python3", ["-c", ENGINE, sock, log, String(status), body, path.join(dir, "argv")], { stdio: "ignore" });
  try {
    for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    const r = spawnSync("bash", [script, "127.0.0.2:2377", "nodeid0manager", "127.0.0.3"], {
      env: { ...process.env, ...hostPathEnv(), PATH: `${path.join(dir, "bin")}:${process.env.PATH}`, DOCKER_SOCKET: sock },
      input: `${TOKEN}\n`,
      encoding: "utf8",
      timeout: 60_000,
    });
    const requests = fs.existsSync(log)
      ? fs
          .readFileSync(log, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { path: string; body: Record<string, unknown> })
      : [];
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, requests, argv: fs.readFileSync(path.join(dir, "argv"), "utf8") };
  } finally {
    const exited = new Promise((r) => engine.once("exit", r));
    engine.kill();
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describeWith({ tools: ["python3"] }, "swarm-join.sh (the bundle) against a stand-in engine socket", () => {
  it("POSTs /swarm/join with the token from stdin, the manager and the advertise address; the token in no argv", async () => {
    const r = await join(200, "");
    expect(r.code, r.stderr).toBe(0);
    expect(r.requests).toEqual([
      {
        path: "/swarm/join",
        body: { ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "127.0.0.3", RemoteAddrs: ["127.0.0.2:2377"], JoinToken: TOKEN },
      },
    ]);
    expect(r.stdout).toContain("joined the swarm of 127.0.0.2:2377 as a worker (advertising 127.0.0.3)");
    expect(r.argv).toContain("127.0.0.2:2377 nodeid0manager 127.0.0.3"); // the processes were seen
    expect(r.argv).not.toContain(TOKEN);
  });

  it("a refusal from the engine is an error that names the manager and the engine's message", async () => {
    const r = await join(503, JSON.stringify({ message: "timeout was reached before node joined" }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("swarm-join: error: the engine refused to join 127.0.0.2:2377: timeout was reached before node joined");
  });
});
