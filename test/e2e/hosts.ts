/**
 * The test hosts (test/hosts/*.sh) from TypeScript: start, stop, and run a command over SSH the
 * way @pulumi/command does (the command string goes to the login shell; stdin is piped).
 * Every connection pins the host key it is given: nothing here trusts a host on first use.
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { withPeerKey } from "../fixtures";
import { REPO, stackFileConfig } from "../harness";
import { Engine, type StateEntry } from "./engine";

export type HostName = "sark" | "clu";

export interface TestHost {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey: string;
  /** Address on the hosts' private network (what the swarm advertises). */
  readonly internalAddress: string;
  readonly container: string;
}

export interface TestHosts {
  readonly workdir: string;
  readonly privateKeyPath: string;
  readonly hosts: Record<HostName, TestHost>;
}

const HOSTS_DIR = path.join(REPO, "test", "hosts");

/** Builds (or reuses) the image and starts both hosts; throws with the script's output on failure. */
export function startHosts(): TestHosts {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-e2e-"));
  const r = spawnSync(path.join(HOSTS_DIR, "start-hosts.sh"), [workdir], { encoding: "utf8", timeout: 20 * 60_000 });
  if (r.status !== 0) throw new Error(`start-hosts.sh failed (${r.status ?? r.signal}):\n${r.stderr}\n${r.stdout}`);
  const info = JSON.parse(fs.readFileSync(path.join(workdir, "hosts.json"), "utf8")) as TestHosts & { privateKeyPath: string };
  return { workdir, privateKeyPath: info.privateKeyPath, hosts: info.hosts };
}

export function stopHosts(): void {
  spawnSync(path.join(HOSTS_DIR, "stop-hosts.sh"), [], { encoding: "utf8", timeout: 5 * 60_000 });
}

export interface SshTarget {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** `ssh-ed25519 AAAA...`: pinned for this connection. */
  readonly hostKey: string;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Loopback only: the suite must never reach anything but the hosts it started. */
function assertLoopback(address: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(address)) throw new Error(`refusing to connect to ${address}: the e2e suite only reaches its test hosts on loopback`);
}

/**
 * Runs `command` on the host over SSH with `keyPath`, stdin piped, host key pinned. `hostOpts`
 * replaces the host-key options (to test the Docker provider's own `sshOpts`).
 */
export function ssh(target: SshTarget, keyPath: string, command: string, stdin?: string, timeoutMs = 10 * 60_000, hostOpts?: readonly string[]): RunResult {
  assertLoopback(target.address);
  const knownHosts = path.join(path.dirname(keyPath), `known_hosts.${target.port}`);
  fs.writeFileSync(knownHosts, `[${target.address}]:${target.port} ${target.hostKey}\n`);
  const pin = hostOpts ?? ["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"];
  const r = spawnSync(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-i",
      keyPath,
      "-o",
      "IdentitiesOnly=yes",
      ...pin,
      "-o",
      "ConnectTimeout=10",
      "-o",
      "LogLevel=ERROR",
      "-p",
      String(target.port),
      `${target.user}@${target.address}`,
      command,
    ],
    { input: stdin ?? "", encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
  );
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

/** Like `asRoot`, without blocking the event loop (for checks made while the engine applies). */
export function asRootAsync(hosts: TestHosts, name: HostName, command: string): Promise<RunResult> {
  const h = hosts.hosts[name];
  assertLoopback(h.address);
  const knownHosts = path.join(path.dirname(hosts.privateKeyPath), `known_hosts.${h.port}`);
  if (!fs.existsSync(knownHosts)) asRoot(hosts, name, "true"); // writes the pinned key's file
  return new Promise((resolve) => {
    execFile(
      "ssh",
      [
        "-F",
        "/dev/null",
        "-i",
        hosts.privateKeyPath,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-p",
        String(h.port),
        `root@${h.address}`,
        command,
      ],
      { encoding: "utf8", timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** Runs a command as root on a test host (fixture set-up and inspection, not the program's commands). */
export function asRoot(hosts: TestHosts, name: HostName, command: string, stdin?: string): RunResult {
  const h = hosts.hosts[name];
  return ssh({ address: h.address, port: h.port, user: "root", hostKey: h.hostKey }, hosts.privateKeyPath, command, stdin);
}

/** Like `asRoot`, but throws with the output when the command fails. */
export function mustRoot(hosts: TestHosts, name: HostName, command: string, stdin?: string): string {
  const r = asRoot(hosts, name, command, stdin);
  if (r.code !== 0) throw new Error(`${name}: '${command.slice(0, 200)}' failed (${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * The operator account the real servers have: `maxvamp`, in the docker group, passwordless sudo,
 * logging in with the suite's key. The program's commands run as this user through `sudo -n`.
 * Also the services' data directories the servers have today (the containers bind-mount them,
 * and Docker refuses a bind mount whose source does not exist).
 */
export function addOperator(hosts: TestHosts, name: HostName): void {
  mustRoot(
    hosts,
    name,
    `set -e
id maxvamp >/dev/null 2>&1 || useradd -m -s /bin/bash -G docker maxvamp
mkdir -p ${SERVICE_DATA[name].join(" ")}
install -d -m 700 -o maxvamp -g maxvamp /home/maxvamp/.ssh
install -m 600 -o maxvamp -g maxvamp /root/.ssh/authorized_keys /home/maxvamp/.ssh/authorized_keys
echo 'maxvamp ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/maxvamp && chmod 440 /etc/sudoers.d/maxvamp`,
  );
}

/** NVIDIA's /etc/docker/daemon.json on a DGX: its runtime as the default. */
export const NVIDIA_DAEMON_JSON = `{
    "default-runtime": "nvidia",
    "runtimes": {
        "nvidia": {
            "path": "nvidia-container-runtime",
            "runtimeArgs": []
        }
    }
}
`;
export const DGX_OVERRIDE = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS -s overlay2\n";

/**
 * Makes a test host look like DGX OS before the first apply: sark's dockerd gets `-s overlay2`
 * from a systemd override, clu gets NVIDIA's daemon.json with `default-runtime: nvidia` (its
 * runtime a shim that execs runc: the hosts have no GPU). dockerd restarts on it.
 */
export function makeDgxLike(hosts: TestHosts, name: HostName): void {
  if (name === "sark") {
    mustRoot(hosts, name, "mkdir -p /etc/systemd/system/docker.service.d && cat > /etc/systemd/system/docker.service.d/override.conf", DGX_OVERRIDE);
  } else {
    mustRoot(hosts, name, "cat > /etc/docker/daemon.json", NVIDIA_DAEMON_JSON);
    mustRoot(hosts, name, "cat > /usr/local/bin/nvidia-container-runtime && chmod 755 /usr/local/bin/nvidia-container-runtime", '#!/bin/sh\nexec runc "$@"\n');
  }
  mustRoot(hosts, name, "systemctl daemon-reload && systemctl restart docker && timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'");
  // docker-restart.sh compares dockerd's start time with daemon.json's mtime in microseconds (in
  // whole seconds when this pause was added); kept, so round 1's writes come a second after this start
  mustRoot(hosts, name, "sleep 1");
}

/** The services' data directories on each server today (the test stacks mount them). */
export const SERVICE_DATA: Record<HostName, readonly string[]> = {
  sark: ["/home/maxvamp/chromadb-data"],
  clu: ["/home/maxvamp/memory-data", "/home/maxvamp/GLM-4.5-Air-AWQ"],
};

/**
 * Every file under `dirs` (relative to /; a missing one is skipped) on the host: path, type, mode,
 * owner, size and mtime, then each regular file's sha256. Equal before and after an apply: the
 * apply changed nothing there.
 */
export function installedFiles(hosts: TestHosts, name: HostName, dirs: readonly string[]): string {
  const list = dirs.join(" ");
  return mustRoot(
    hosts,
    name,
    `cd / && for d in ${list}; do
  [ -e "$d" ] && find "$d" -printf '%p %y %m %U:%G %s %T@\\n'
done | sort
find ${list} -type f -exec sha256sum {} + 2>/dev/null | sort`,
  );
}

/** What a suite starts with: both hosts, the suite's private key (the stacks' sshPrivateKey) and its engine. */
export interface Suite {
  readonly hosts: TestHosts;
  readonly key: string;
  readonly engine: Engine;
}

/**
 * Starts both hosts for a suite; with `dgxLike`, each host also gets the operator account and
 * DGX OS's dockerd settings (addOperator, makeDgxLike), as the servers have them.
 */
export function startSuite(opts: { readonly dgxLike?: boolean } = {}): Suite {
  const hosts = startHosts();
  if (opts.dgxLike) {
    for (const name of ["sark", "clu"] as const) {
      addOperator(hosts, name);
      makeDgxLike(hosts, name);
    }
  }
  return { hosts, key: fs.readFileSync(hosts.privateKeyPath, "utf8"), engine: engineFor(hosts) };
}

/** The engine for a suite: state JSON in the hosts' workdir, the Docker provider's ssh with the suite's key. */
export function engineFor(hosts: TestHosts): Engine {
  return new Engine({ workdir: hosts.workdir, keyPath: hosts.privateKeyPath });
}

/** The SSH target of a command in the engine's state (its connection), to run its create by hand. */
export function commandTarget(entry: StateEntry | undefined): SshTarget {
  const c = entry?.inputs.connection as { host: string; port: number; user: string; hostKey: string } | undefined;
  if (!c) throw new Error("no such command in the state");
  return { address: c.host, port: c.port, user: c.user, hostKey: c.hostKey };
}

/** Where the webhook receiver listens on its host; a suite's webhook URL is this plus a path. */
export const WEBHOOK_RECEIVER_URL = "http://127.0.0.1:8765";

export interface WebhookReceiver {
  /** Every POST so far, a line each: the request path, a space, the body with newlines as spaces. */
  received(): string;
}

/**
 * Starts a webhook receiver on the host (what ntfy or healthchecks would get): a transient unit
 * listening on WEBHOOK_RECEIVER_URL that appends each POST to /var/tmp/received.txt.
 */
export function startWebhookReceiver(hosts: TestHosts, name: HostName): WebhookReceiver {
  mustRoot(
    hosts,
    name,
    `cat > /usr/local/bin/e2e-receiver.py && systemd-run --unit e2e-receiver python3 /usr/local/bin/e2e-receiver.py && sleep 1`,
    `import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with open("/var/tmp/received.txt", "a") as f:
            f.write(self.path + " " + body.replace("\\n", " ") + "\\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *args):
        pass  # the request line holds the URL's secret path: never into the journal
http.server.HTTPServer(("127.0.0.1", 8765), H).serve_forever()
`,
  );
  return { received: () => mustRoot(hosts, name, "cat /var/tmp/received.txt") };
}

/**
 * A test stack file's config pointed at the running hosts: this host's SSH port and host key,
 * and the backup's off-site peer (the other host's management port and host key), from hosts.json.
 */
export function testStackConfig(hosts: TestHosts, name: HostName): Record<string, unknown> {
  const config = stackFileConfig(`test/e2e/Pulumi.test-${name}.yaml`);
  const h = hosts.hosts[name];
  const host = config.host as { ssh: Record<string, unknown> };
  const peer = hosts.hosts[name === "sark" ? "clu" : "sark"];
  return withPeerKey({ ...config, host: { ...host, ssh: { ...host.ssh, port: h.port, hostKey: h.hostKey } } }, peer.hostKey, peer.port);
}
