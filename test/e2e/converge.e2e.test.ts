/**
 * Converge twice (Molecule-style) on two real test hosts: systemd, sshd and their own Docker
 * engine in containers on this machine (test/hosts). The commands are the program's own, taken
 * from the stacks `test-sark` and `test-clu` (test/e2e/Pulumi.test-*.yaml) under mocks, and run
 * as the user `maxvamp` through `sudo -n`, as on the real servers.
 *
 * Before the first round the hosts are made to look like DGX OS: sark gets the override that
 * passes `-s overlay2` to dockerd, clu gets NVIDIA's daemon.json with `default-runtime: nvidia`
 * (its runtime a shim that execs runc, since the hosts have no GPU).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerSshOpts } from "../../components/host";
import { loadStackFile } from "../../components/config";
import { renderSysctl } from "../../components/render/sysctl";
import { runStack, type StackRun } from "../harness";
import { managerOutputs, addOperator, asRoot, mustRoot, ssh, startHosts, stopHosts, type HostName, type TestHosts, testStackConfig } from "./hosts";
import { applyCommands, planCommands, type Executed, type PlannedCommand } from "./runner";

const NVIDIA_DAEMON_JSON = `{
    "default-runtime": "nvidia",
    "runtimes": {
        "nvidia": {
            "path": "nvidia-container-runtime",
            "runtimeArgs": []
        }
    }
}
`;
const DGX_OVERRIDE = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS -s overlay2\n";

let hosts: TestHosts;
let key: string;
const rounds: Record<HostName, Executed[]>[] = [];
const snapshots: Record<HostName, string>[] = [];
let sarkPlan: PlannedCommand[];
let cluPlan: PlannedCommand[];

const stackConfig = (name: HostName) => testStackConfig(hosts, name);

async function program(name: HostName, managerInit?: string): Promise<StackRun> {
  return runStack({
    stack: `test-${name}`,
    config: stackConfig(name),
    secrets: { sshPrivateKey: key },
    preview: false,
    ...(managerInit ? { stackOutputs: managerOutputs(managerInit) } : {}),
  });
}

/**
 * Files, modes, owners, sizes, mtimes and hashes of what the program manages, and live state.
 * Left out: what changes without the program. The storage-alert timer's own state file (and the
 * mtime of the directory it is renamed into), and the fio baselines: the runner runs every
 * command again, where Pulumi would not re-run fio (its trigger is unchanged; monitoring.e2e
 * checks that).
 */
function snapshot(name: HostName): string {
  return mustRoot(
    hosts,
    name,
    `set -e
cd /
for d in etc/docker etc/sysctl.d var/lib/dgx-storage data etc/systemd/system/docker.service.d etc/dgx-storage usr/local/lib/dgx-storage; do
  [ -e "$d" ] && find "$d" -not -path 'var/lib/dgx-storage/fio*' -not -name 'storage-alert.state.json*' -printf '%p %y %m %U:%G %s %T@\\n'
done | sed -E 's#^(var/lib/dgx-storage d .*) [0-9.]+$#\\1 (mtime: the alert check renames its state here)#' | sort
find etc/docker etc/sysctl.d var/lib/dgx-storage etc/dgx-storage usr/local/lib/dgx-storage -type f -not -path 'var/lib/dgx-storage/fio*' -not -name 'storage-alert.state.json*' -exec sha256sum {} + 2>/dev/null | sort
echo "sysctl $(sysctl -n vm.swappiness) $(sysctl -n vm.vfs_cache_pressure)"
echo "dockerd $(systemctl show -p ExecMainPID -p ExecMainStartTimestampMonotonic docker.service | tr '\\n' ' ')"
docker info --format 'swarm {{.Swarm.NodeID}} {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} driver {{.Driver}}'
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ]; then docker node ls --format 'node {{.ID}} {{.Hostname}} {{.Status}}' | sort; fi`,
  );
}

function prepareHost(name: HostName): void {
  addOperator(hosts, name);
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

function daemonJson(name: HostName): Record<string, unknown> {
  return JSON.parse(mustRoot(hosts, name, "cat /etc/docker/daemon.json")) as Record<string, unknown>;
}

async function converge(): Promise<Record<HostName, Executed[]>> {
  const sarkRun = await program("sark");
  sarkPlan = planCommands(sarkRun);
  const sark = applyCommands(sarkPlan, path.join(hosts.workdir, "id_ed25519"));
  const init = sark.find((r) => r.name === "sark-swarm-init")!;
  const cluRun = await program("clu", init.stdout);
  cluPlan = planCommands(cluRun);
  const clu = applyCommands(cluPlan, path.join(hosts.workdir, "id_ed25519"));
  return { sark, clu };
}

beforeAll(() => {
  hosts = startHosts();
  key = fs.readFileSync(hosts.privateKeyPath, "utf8");
  prepareHost("sark");
  prepareHost("clu");
});

afterAll(() => {
  // also when a test failed: no test host outlives the suite
  stopHosts();
});

describe("converge on the test hosts", () => {
  it("round 1: every command of both stacks applies, in dependency order, as maxvamp through sudo -n", async () => {
    rounds.push(await converge());
    const order = (plan: PlannedCommand[]) => plan.map((c) => c.name);
    expect(order(sarkPlan)).toEqual([
      "sark-monitoring-packages",
      "sark-monitoring-fstrim",
      "sark-monitoring-df",
      "sark-backup-ssh-key",
      "sark-daemon-merge",
      "sark-kernel-apply",
      "sark-backup-repo",
      "sark-monitoring-fio-var-tmp",
      "sark-monitoring-units",
      "sark-daemon-restart",
      "sark-monitoring-smartd",
      "sark-volumes-chroma-persistent-dir",
      "sark-swarm-init",
      // on clu's management SSH: the receiving side of sark's off-site copy
      "sark-backup-offsite-receive",
      "sark-backup-units",
    ]);
    expect(order(cluPlan)).toEqual([
      "clu-monitoring-packages",
      "clu-monitoring-df",
      "clu-backup-ssh-key",
      "clu-daemon-merge",
      "clu-kernel-apply",
      "clu-backup-repo",
      "clu-monitoring-units",
      "clu-daemon-restart",
      "clu-volumes-memory-persistent-dir",
      // on sark's management SSH: the receiving side of clu's off-site copy
      "clu-backup-offsite-receive",
      "clu-backup-units",
      "clu-swarm-join",
    ]);
    for (const c of [...sarkPlan, ...cluPlan]) {
      expect(c.target.user).toBe("maxvamp");
      expect(c.create.startsWith("sudo -n bash -c ")).toBe(true);
    }
    expect(rounds[0]!.sark.find((r) => r.name === "sark-daemon-restart")!.stdout).toContain("restarting docker.service");
  });

  it("daemon.json is merged: sark leaves storage-driver to DGX OS's -s flag, clu keeps NVIDIA's runtime keys", () => {
    const merge = rounds[0]!.sark.find((r) => r.name === "sark-daemon-merge")!;
    expect(merge.stdout).toContain("storage-driver: already passed to dockerd as a flag in /etc/systemd/system/docker.service.d/override.conf");
    expect(daemonJson("sark")).toEqual({ "live-restore": false, "log-driver": "json-file", "log-opts": { "max-file": "5", "max-size": "100m" } });
    expect(daemonJson("clu")).toEqual({
      ...JSON.parse(NVIDIA_DAEMON_JSON),
      "live-restore": false,
      "log-driver": "json-file",
      "log-opts": { "max-file": "5", "max-size": "100m" },
      "storage-driver": "overlay2",
    });
    for (const name of ["sark", "clu"] as const) {
      expect(mustRoot(hosts, name, "docker info --format '{{.Driver}} {{.LoggingDriver}}'").trim()).toBe("overlay2 json-file");
    }
    expect(mustRoot(hosts, "clu", "docker info --format '{{.DefaultRuntime}}'").trim()).toBe("nvidia");
    expect(mustRoot(hosts, "clu", "ls /var/lib/dgx-storage/backups").trim()).toMatch(/^daemon\.json\.\d{8}T\d{6}Z\.\d+$/);
  });

  it("sysctl values are persisted and read back on both hosts", () => {
    const content = renderSysctl({ "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 });
    for (const name of ["sark", "clu"] as const) {
      expect(mustRoot(hosts, name, "cat /etc/sysctl.d/90-dgx-storage.conf")).toBe(content);
      expect(mustRoot(hosts, name, "sysctl -n vm.swappiness vm.vfs_cache_pressure").split("\n").slice(0, 2)).toEqual(["10", "50"]);
    }
  });

  it("the bind volumes' directories exist with the configured owner and mode", () => {
    expect(mustRoot(hosts, "sark", "stat -c '%U:%G %a' /data/chroma").trim()).toBe("root:root 755");
    expect(mustRoot(hosts, "clu", "stat -c '%U:%G %a' /data/memory").trim()).toBe("root:root 755");
  });

  it("the swarm has two nodes: sark the manager, clu a worker", () => {
    const nodes = mustRoot(hosts, "sark", "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'").trim().split("\n").sort();
    expect(nodes).toEqual(["clu Ready ", "sark Ready Leader"]);
    const init = JSON.parse(rounds[0]!.sark.find((r) => r.name === "sark-swarm-init")!.stdout.trim()) as Record<string, string>;
    expect(init.managerAddress).toBe(`${hosts.hosts.sark.internalAddress}:2377`);
    expect(init.workerToken).toMatch(/^SWMTKN-1-/);
    // the token went to the engine on stdin, never into a command line that the journal records
    const journal = mustRoot(hosts, "clu", "journalctl --no-pager -o cat");
    expect(journal).not.toContain(init.workerToken!);
  });

  it("round 2 changes nothing on either host: files, mtimes, sysctl values, dockerd's process, swarm membership", async () => {
    snapshots.push({ sark: snapshot("sark"), clu: snapshot("clu") });
    rounds.push(await converge());
    snapshots.push({ sark: snapshot("sark"), clu: snapshot("clu") });
    expect(snapshots[1]!.sark).toBe(snapshots[0]!.sark);
    expect(snapshots[1]!.clu).toBe(snapshots[0]!.clu);
    const says = (name: string) => [...rounds[1]!.sark, ...rounds[1]!.clu].find((r) => r.name === name)!;
    expect(says("sark-daemon-merge").stdout).toContain("daemon.json: unchanged");
    expect(says("clu-daemon-restart").stdout).toContain("no restart");
    expect(says("sark-kernel-apply").stdout).toContain("unchanged; live values already match");
    expect(says("sark-volumes-chroma-persistent-dir").stdout).toContain("unchanged");
    expect(says("sark-swarm-init").stderr).toContain("nothing to do");
    expect(says("clu-swarm-join").stdout).toContain("nothing to do");
    // the manager's outputs are the same, so the worker's command would not even be re-run
    expect(says("sark-swarm-init").stdout).toBe(rounds[0]!.sark.find((r) => r.name === "sark-swarm-init")!.stdout);
  });

  it("a container on clu reaches one on sark over the attachable overlay network (created with the docker CLI, as the provider would)", () => {
    mustRoot(hosts, "sark", "docker network inspect optimized-swarm >/dev/null 2>&1 || docker network create -d overlay --attachable optimized-swarm");
    mustRoot(hosts, "sark", "docker run -d --name e2e-web --network optimized-swarm testbox:1 sh -c 'mkdir -p /www && echo hello-from-sark > /www/index.html && httpd -f -p 8080 -h /www'");
    let body = "";
    for (let i = 0; i < 20 && !body.includes("hello-from-sark"); i++) {
      // busybox-static's wget crashes in these images; nc speaks the HTTP request instead
      body = asRoot(hosts, "clu", `docker run --rm --network optimized-swarm testbox:1 sh -c 'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 3 e2e-web 8080'`).stdout;
      if (!body.includes("hello-from-sark")) mustRoot(hosts, "clu", "sleep 1");
    }
    expect(body).toMatch(/^HTTP\/1\.[01] 200 OK/);
    expect(body.trim().split("\n").pop()).toBe("hello-from-sark");
  });

  it("the Docker provider's ssh options reach the host with the pinned key and refuse another key", () => {
    const config = loadStackFile(path.join(__dirname, "Pulumi.test-sark.yaml"));
    const h = hosts.hosts.sark;
    const pinned = { ...config, host: { ...config.host, ssh: { ...config.host.ssh, port: h.port, hostKey: h.hostKey } } };
    const opts = dockerSshOpts(pinned);
    const run = (o: string[]) =>
      ssh({ address: h.address, port: h.port, user: "maxvamp", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBLrQgIozjqCs7hQKWbqXbleEIsOrirOHJPcW56vBRA4" }, hosts.privateKeyPath, "docker version --format '{{.Server.Version}}'", undefined, 60_000, o);
    const ok = run(opts);
    expect(ok.stderr).toBe("");
    expect(ok.stdout.trim()).toMatch(/^\d+\.\d+/);
    const other = { ...pinned, host: { ...pinned.host, ssh: { ...pinned.host.ssh, hostKey: hosts.hosts.clu.hostKey } } };
    const refused = run(dockerSshOpts(other));
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/Host key verification failed/);
  });

  it("a daemon.json that dockerd rejects is rolled back by the restart command, and dockerd runs again", () => {
    const restart = cluPlan.find((c) => c.name === "clu-daemon-restart")!;
    const good = mustRoot(hosts, "clu", "cat /etc/docker/daemon.json");
    // what the merge does before it writes: the previous file goes to the backups
    mustRoot(hosts, "clu", "cp -p /etc/docker/daemon.json /var/lib/dgx-storage/backups/daemon.json.29990101T000000Z.1");
    mustRoot(hosts, "clu", `python3 -c 'import json; d=json.load(open("/etc/docker/daemon.json")); d["no-such-directive"]=True; json.dump(d, open("/etc/docker/daemon.json","w"))'`);
    const r = ssh(restart.target, path.join(hosts.workdir, "id_ed25519"), restart.create);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("The previous daemon.json was restored");
    expect(mustRoot(hosts, "clu", "cat /etc/docker/daemon.json")).toBe(good);
    expect(mustRoot(hosts, "clu", "docker info --format '{{.Driver}} {{.Swarm.LocalNodeState}}'").trim()).toBe("overlay2 active");
    expect(mustRoot(hosts, "clu", "cat /var/lib/dgx-storage/daemon.json.rejected")).toContain("no-such-directive");
  });
});
