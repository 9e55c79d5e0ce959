/**
 * `pulumi up` twice (Molecule-style converge) on two real test hosts: systemd, sshd and their own
 * Docker engine in containers on this machine (test/hosts). The e2e engine (engine.ts) runs the
 * program of the stacks `test-sark` and `test-clu` (test/e2e/Pulumi.test-*.yaml) and applies
 * each registration as `pulumi up` and the providers would: the commands over SSH as `maxvamp`
 * through `sudo -n`, the volumes, the overlay network and the service containers through each
 * host's Docker Engine API. The second apply must find nothing to do.
 *
 * Before the first apply the hosts are made to look like DGX OS: sark gets the override that
 * passes `-s overlay2` to dockerd, clu gets NVIDIA's daemon.json with `default-runtime: nvidia`
 * (its runtime a shim that execs runc, since the hosts have no GPU).
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerSshOpts } from "../../components/dgx-host";
import { loadStackFile } from "../../components/config";
import { renderSysctl } from "../../components/render/sysctl";
import type { ApplyResult, Engine, Step } from "./engine";
import { asRoot, commandTarget, mustRoot, NVIDIA_DAEMON_JSON, ssh, stopHosts, type HostName, type TestHosts, testStackConfig, startSuite } from "./hosts";

let hosts: TestHosts;
let key: string;
let engine: Engine;
const rounds: Record<HostName, ApplyResult>[] = [];
const snapshots: Record<HostName, string>[] = [];
const started = Date.now();

const apply = (name: HostName) => engine.up({ stack: `test-${name}`, config: testStackConfig(hosts, name), secrets: { sshPrivateKey: key } });

/**
 * Files, modes, owners, sizes, mtimes and hashes of what the program manages, and live state.
 * Left out: what changes without the program. The storage-alert timer's own state file (and the
 * mtime of the directory it is renamed into), and the fio baselines.
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
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ]; then docker node ls --format 'node {{.ID}} {{.Hostname}} {{.Status}}' | sort; fi
docker ps -a --format 'container {{.ID}} {{.Names}} {{.Status}}' | sed -E 's/Up [^(]*/Up/' | sort
docker volume ls --format 'volume {{.Name}} {{.Driver}}' | sort
docker network ls --filter driver=overlay --format 'network {{.ID}} {{.Name}}' | sort`,
  );
}

function daemonJson(name: HostName): Record<string, unknown> {
  return JSON.parse(mustRoot(hosts, name, "cat /etc/docker/daemon.json")) as Record<string, unknown>;
}

/** Both stacks, the manager first (the worker's StackReference reads its outputs). */
async function converge(): Promise<Record<HostName, ApplyResult>> {
  const sark = await apply("sark");
  const clu = await apply("clu");
  return { sark, clu };
}

/** `a` ended before `b` started. */
function before(r: ApplyResult, a: string, b: string): void {
  expect(r.step(a).end, `${a} ends before ${b} starts`).toBeLessThanOrEqual(r.step(b).start);
}

const overlap = (a: Step, b: Step) => a.start < b.end && b.start < a.end;

beforeAll(() => {
  ({ hosts, key, engine } = startSuite({ dgxLike: true }));
});

afterAll(() => {
  // also when a test failed: no test host outlives the suite
  stopHosts();
  console.log(`converge e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("converge on the test hosts", () => {
  it("round 1: every resource of both stacks is created, in the SDK's order, independent ones at once", async () => {
    const t0 = Date.now();
    rounds.push(await converge());
    console.log(`round 1: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { sark, clu } = rounds[0]!;
    for (const r of [sark, clu]) {
      expect(r.steps.filter((s) => s.status !== "ok")).toEqual([]);
      expect(r.steps.every((s) => s.op === "create" || s.op === "read")).toBe(true);
      for (const s of r.run.ofType("command:remote:Command")) {
        expect((s.inputs.connection as { user: string }).user).toBe("maxvamp");
        expect(String(s.inputs.create).startsWith("sudo -n bash -c ")).toBe(true);
      }
    }
    // the edges the program declares (test/components/apply-order.test.ts has all of them, from the registrations)
    before(sark, "sark-preflight", "sark-packages");
    before(sark, "sark-packages", "sark-daemon-merge");
    before(sark, "sark-daemon-merge", "sark-daemon-restart");
    before(sark, "sark-daemon-restart", "sark-kernel-apply");
    before(sark, "sark-daemon-restart", "sark-docker");
    before(sark, "sark-volumes-chroma-persistent-dir", "sark-volumes-chroma-persistent");
    before(sark, "sark-swarm-init", "sark-swarm-network");
    before(sark, "sark-swarm-network", "sark-chromadb-container");
    before(sark, "sark-chromadb-adopt", "sark-chromadb-container");
    before(sark, "sark-chromadb-container", "sark-chromadb-switch");
    before(sark, "sark-chromadb-switch", "sark-monitoring-units");
    before(sark, "sark-chromadb-switch", "sark-monitoring-fio-var-tmp");
    before(sark, "sark-backup-ssh-key", "sark-backup-offsite-receive");
    before(sark, "sark-backup-offsite-receive", "sark-backup-units");
    before(clu, "clu-swarm-manager", "clu-swarm-join");
    before(clu, "clu-swarm-join", "clu-memory-service-container");
    before(clu, "clu-volumes-vllm-models", "clu-vllm-container");
    // Pulumi's default parallelism: what does not wait for each other ran at once
    expect(overlap(sark.step("sark-daemon-merge"), sark.step("sark-backup-repo"))).toBe(true);
    expect(overlap(clu.step("clu-memory-service-switch"), clu.step("clu-vllm-switch"))).toBe(true);
    expect(sark.stdout("sark-daemon-restart")).toContain("restarting docker.service");
    // the worker read the manager's real outputs
    expect(clu.run.exports.overlayNetwork).toBe("optimized-swarm");
  });

  it("daemon.json is merged: sark leaves storage-driver to DGX OS's -s flag, clu keeps NVIDIA's runtime keys", () => {
    expect(rounds[0]!.sark.stdout("sark-daemon-merge")).toContain(
      "storage-driver: already passed to dockerd as a flag in /etc/systemd/system/docker.service.d/override.conf",
    );
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
    const init = JSON.parse(rounds[0]!.sark.stdout("sark-swarm-init").trim()) as Record<string, string>;
    expect(init.managerAddress).toBe(`${hosts.hosts.sark.internalAddress}:2377`);
    expect(init.workerToken).toMatch(/^SWMTKN-1-/);
    // the token went to the engine on stdin, never into a command line that the journal records
    const journal = mustRoot(hosts, "clu", "journalctl --no-pager -o cat");
    expect(journal).not.toContain(init.workerToken!);
  });

  it("the services run from the stack: healthy, on the overlay network, vllm with its GPU request and 16 GiB of shm", () => {
    const inspect = (name: HostName, c: string, f: string) => mustRoot(hosts, name, `docker inspect -f '${f}' ${c}`).trim();
    expect(inspect("sark", "chromadb", "{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}}")).toBe("healthy unless-stopped");
    expect(inspect("sark", "chromadb", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}")).toBe("optimized-swarm");
    expect(inspect("clu", "vllm", "{{.State.Health.Status}} {{.HostConfig.ShmSize}}")).toBe(`healthy ${16384 * 1024 * 1024}`);
    expect(inspect("clu", "vllm", "{{json .HostConfig.DeviceRequests}}")).toBe(
      '[{"Driver":"nvidia","Count":1,"DeviceIDs":null,"Capabilities":[["gpu"]],"Options":null}]',
    );
    // dockerd's nvidia driver put the GPU into the container's environment (the stand-in hook ran)
    // (in the spec of the container's first process, not in its config: docker exec does not see it)
    expect(mustRoot(hosts, "clu", "docker exec vllm cat /proc/1/environ | tr '\\0' '\\n'")).toContain("NVIDIA_VISIBLE_DEVICES=");
    expect(inspect("clu", "vllm", "{{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}} {{end}}").split(" ").sort()).toEqual([
      "bind:/models/GLM-4.5-Air-AWQ:false",
      "volume:/root/.cache/huggingface:true",
    ]);
  });

  it("round 2: every step is 'same', nothing runs, and nothing changes on either host", async () => {
    snapshots.push({ sark: snapshot("sark"), clu: snapshot("clu") });
    const t0 = Date.now();
    rounds.push(await converge());
    console.log(`round 2: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    snapshots.push({ sark: snapshot("sark"), clu: snapshot("clu") });
    for (const r of [rounds[1]!.sark, rounds[1]!.clu]) {
      expect(r.steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    }
    expect(snapshots[1]!.sark).toBe(snapshots[0]!.sark);
    expect(snapshots[1]!.clu).toBe(snapshots[0]!.clu);
    // the manager's outputs are the same, so the worker's join is not even re-run
    expect(rounds[1]!.sark.stdout("sark-swarm-init")).toBe(rounds[0]!.sark.stdout("sark-swarm-init"));
  });

  it("the memory service on clu reaches chromadb on sark by name over the attachable overlay network", () => {
    let body = "";
    for (let i = 0; i < 20 && !body.includes("heartbeat"); i++) {
      body = asRoot(
        hosts,
        "clu",
        `docker exec memory-service python3 -c "import urllib.request; print(urllib.request.urlopen('http://chromadb:8000/api/v1/heartbeat', timeout=3).read().decode())"`,
      ).stdout;
      if (!body.includes("heartbeat")) mustRoot(hosts, "clu", "sleep 1");
    }
    expect(JSON.parse(body)).toHaveProperty(["nanosecond heartbeat"]);
  });

  it("the Docker provider's ssh options reach the host with the pinned key and refuse another key", () => {
    const config = loadStackFile(path.join(__dirname, "Pulumi.test-sark.yaml"));
    const h = hosts.hosts.sark;
    const pinned = { ...config, host: { ...config.host, ssh: { ...config.host.ssh, port: h.port, hostKey: h.hostKey } } };
    const opts = dockerSshOpts(pinned);
    const run = (o: string[]) =>
      ssh(
        { address: h.address, port: h.port, user: "maxvamp", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBLrQgIozjqCs7hQKWbqXbleEIsOrirOHJPcW56vBRA4" },
        hosts.privateKeyPath,
        "docker version --format '{{.Server.Version}}'",
        undefined,
        60_000,
        o,
      );
    const ok = run(opts);
    expect(ok.stderr).toBe("");
    expect(ok.stdout.trim()).toMatch(/^\d+\.\d+/);
    const other = { ...pinned, host: { ...pinned.host, ssh: { ...pinned.host.ssh, hostKey: hosts.hosts.clu.hostKey } } };
    const refused = run(dockerSshOpts(other));
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/Host key verification failed/);
  });

  it("a daemon.json that dockerd rejects is rolled back by the restart command, and dockerd runs again", () => {
    const restart = engine.stateOf("test-clu").resources.find((r) => r.name === "clu-daemon-restart");
    const good = mustRoot(hosts, "clu", "cat /etc/docker/daemon.json");
    // what the merge does before it writes: the previous file goes to the backups
    mustRoot(hosts, "clu", "cp -p /etc/docker/daemon.json /var/lib/dgx-storage/backups/daemon.json.29990101T000000Z.1");
    mustRoot(
      hosts,
      "clu",
      `python3 -c 'import json; d=json.load(open("/etc/docker/daemon.json")); d["no-such-directive"]=True; json.dump(d, open("/etc/docker/daemon.json","w"))'`,
    );
    const r = ssh(commandTarget(restart), hosts.privateKeyPath, String(restart!.inputs.create));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("The previous daemon.json was restored");
    expect(mustRoot(hosts, "clu", "cat /etc/docker/daemon.json")).toBe(good);
    expect(mustRoot(hosts, "clu", "docker info --format '{{.Driver}} {{.Swarm.LocalNodeState}}'").trim()).toBe("overlay2 active");
    expect(mustRoot(hosts, "clu", "cat /var/lib/dgx-storage/daemon.json.rejected")).toContain("no-such-directive");
  });
});
