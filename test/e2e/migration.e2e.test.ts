/**
 * The data migration on a real test host: real rsync, real containers, real faults. The
 * commands are the program's own (the test-sark stack with a `migrations` entry per case, under
 * mocks); the container replacement between `run` and `finalize` is done with the docker CLI
 * exactly as the Docker provider would (remove the stopped container, create it with the
 * destination mounted).
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runStack } from "../harness";
import { addOperator, asRoot, mustRoot, ssh, startHosts, stopHosts, testStackConfig, type TestHosts } from "./hosts";
import { planCommands, type PlannedCommand } from "./runner";

let hosts: TestHosts;
let keyPath: string;

interface Case {
  readonly name: string;
  readonly container: string;
  readonly source: string;
  readonly destination: string;
  readonly target: string;
  readonly mount?: string;
  readonly healthTimeout?: number;
}

/** The program's run and finalize commands for one migration. */
async function commands(c: Case): Promise<{ run: PlannedCommand; finalize: PlannedCommand }> {
  // the test stack on this host; the backup's off-site block has clu's key pinned, as an up needs
  // (its commands are not run here)
  const config = {
    ...testStackConfig(hosts, "sark"),
    services: { [c.container]: { host: "sark", image: "testbox:1", pull: false, overlay: false, mounts: [{ source: c.source, target: c.target }] } },
    migrations: [
      {
        name: c.name,
        service: c.container,
        source: c.source,
        destination: c.destination,
        marginPercent: 10,
        healthTimeout: c.healthTimeout ?? 60,
        ...(c.mount ? { mount: c.mount } : {}),
      },
    ],
  };
  const plan = planCommands(await runStack({ stack: "test-sark", config, secrets: { sshPrivateKey: fs.readFileSync(keyPath, "utf8") }, preview: false }));
  const run = plan.find((p) => p.name === `sark-migrate-${c.name}-run`)!;
  const finalize = plan.find((p) => p.name === `sark-migrate-${c.name}-finalize`)!;
  // the order Pulumi would use: the finalize step comes after the run step
  expect(plan.indexOf(finalize)).toBeGreaterThan(plan.indexOf(run));
  return { run, finalize };
}

const exec = (c: PlannedCommand) => ssh(c.target, keyPath, c.create, c.stdin);
const sark = (cmd: string) => mustRoot(hosts, "sark", cmd);

/** The container as the Docker provider would create it (docker CLI stands in for the provider). */
// --init: busybox as PID 1 ignores SIGTERM, and every docker stop would wait out its timeout
function createContainer(name: string, source: string, target: string, extra = "--init", command = "httpd -f -p 8080"): void {
  sark(`docker rm -f ${name} >/dev/null 2>&1 || true; docker run -d --name ${name} --restart unless-stopped --mount type=bind,source=${source},target=${target} ${extra} testbox:1 ${command} >/dev/null`);
}

/** Content, owner, mode, size, links and link targets of a tree, for comparison. */
function manifest(dir: string): string {
  return sark(`cd ${dir} && { find . -printf '%P %y %m %U:%G %s %n %l\\n' | sort; find . -type f -exec sha256sum {} + | sort -k2; getfacl -R -p . 2>/dev/null; getfattr -R -d -m - . 2>/dev/null; }`);
}

function state(name: string): Record<string, string> {
  const r = asRoot(hosts, "sark", `cat /var/lib/dgx-storage/migrations/${name}.json`);
  return r.code === 0 ? (JSON.parse(r.stdout) as Record<string, string>) : {};
}

beforeAll(() => {
  hosts = startHosts();
  keyPath = hosts.privateKeyPath;
  addOperator(hosts, "sark");
});

afterAll(() => {
  stopHosts();
});

describe("data migration on a test host", () => {
  it("moves a live SQLite writer's data: nothing committed is lost, integrity ok, source read-only, re-runs change nothing", async () => {
    const c: Case = { name: "chromadb", container: "chromadb", source: "/home/maxvamp/chromadb-data", destination: "/data/enhanced/chromadb", target: "/chroma/chroma" };
    // a fidelity tree beside the database: hard links, symlinks, xattrs, ACLs, setuid, foreign owner, FIFO, sparse, empty
    sark(`set -e
mkdir -p ${c.source}/a/b/c && cd ${c.source}
for i in $(seq 1 200); do head -c 65536 /dev/urandom > a/b/f$i.bin; done
echo hello > a/file.txt && ln a/file.txt a/b/hard.txt && ln -s ../file.txt a/b/rel-link
: > empty && printf x > owned && chown 100:200 owned && printf '#!/bin/sh\\n' > setuid && chmod 4755 setuid
mkfifo fifo && truncate -s 64M sparse && setfattr -n user.origin -v sark a/file.txt && setfacl -m u:1234:r a/b/c`);
    // the service: a writer committing a row every few milliseconds (WAL mode), stopped by docker stop
    const writer =
      "python3 -c 'import sqlite3,signal,sys,time\n" +
      "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n" +
      'db=sqlite3.connect("/chroma/chroma/chroma.sqlite3", isolation_level=None)\n' +
      'db.execute("PRAGMA journal_mode=WAL"); db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, at REAL)")\n' +
      "while True:\n" +
      ' db.execute("INSERT INTO t(at) VALUES (?)", (time.time(),)); time.sleep(0.003)\'';
    // the host's python3 inside a busybox container: /usr, /lib and /lib64 of the host, read-only
    // (no --init: the writer handles SIGTERM itself, and docker-init cannot go into a read-only /usr)
    const runtime = "-v /usr:/usr:ro -v /usr/lib:/lib:ro -v /usr/lib64:/lib64:ro";
    createContainer(c.container, c.source, c.target, runtime, writer);
    sark("sleep 2");
    const before = Number(sark(`sqlite3 ${c.source}/chroma.sqlite3 'SELECT count(*) FROM t'`));
    expect(before).toBeGreaterThan(50);

    const { run, finalize } = await commands(c);
    const r = exec(run);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("pass 1 (service running)");
    expect(r.stdout).toMatch(/to-chk/); // progress: bytes, %, rate, files
    expect(r.stdout).toContain("the service is healthy on /data/enhanced/chromadb");
    expect(state(c.name).state).toBe("verified");
    // the old container stays stopped for Pulumi to replace
    expect(sark(`docker inspect -f '{{.State.Running}}' ${c.container}`).trim()).toBe("false");

    // every committed row of the source (its final state, the writer stopped) is in the destination
    const missing = sark(`sqlite3 ${c.destination}/chroma.sqlite3 "ATTACH '${c.source}/chroma.sqlite3' AS s; SELECT count(*) FROM s.t WHERE id NOT IN (SELECT id FROM main.t)"`).trim();
    expect(missing).toBe("0");
    expect(sark(`sqlite3 ${c.destination}/chroma.sqlite3 'PRAGMA integrity_check'`).trim()).toBe("ok");
    const rows = Number(sark(`sqlite3 ${c.source}/chroma.sqlite3 'SELECT count(*) FROM t'`));
    expect(rows).toBeGreaterThan(before);
    // the tree came over whole (the database itself moved on in the trial run, so it is left out)
    const tree = (dir: string) => manifest(dir).split("\n").filter((l) => !l.includes("chroma.sqlite3")).join("\n");
    expect(tree(c.destination)).toBe(tree(c.source));

    // Pulumi replaces the container: the same service, the destination mounted
    createContainer(c.container, c.destination, c.target, runtime, writer);
    const f = exec(finalize);
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/migration chromadb complete: \d+ bytes copied, \d+ files verified, downtime [\d.]+ s/);
    const downtime = Number(/downtime ([\d.]+) s/.exec(f.stdout)![1]);
    expect(downtime).toBeLessThan(60);
    expect(state(c.name).state).toBe("complete");
    // the source is read-only, also for root, and stays so across a reboot (a mount unit)
    expect(asRoot(hosts, "sark", `touch ${c.source}/new-file`).code).not.toBe(0);
    expect(sark("systemctl is-enabled home-maxvamp-chromadb\\\\x2ddata.mount").trim()).toBe("enabled");

    // re-running both steps changes nothing and copies nothing over the live destination
    const marker = sark(`cat /var/lib/dgx-storage/migrations/${c.name}.json`);
    const again = exec(run);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to do (the source is never copied again)");
    expect(exec(finalize).stdout).toContain("nothing to do");
    expect(sark(`cat /var/lib/dgx-storage/migrations/${c.name}.json`)).toBe(marker);
    sark(`docker rm -f ${c.container}`);
  });

  it("GIVEN the copy killed mid-way THEN the service keeps running on the source and a re-run resumes and completes", async () => {
    const c: Case = { name: "resume", container: "resumesvc", source: "/srv/resume-src", destination: "/srv/resume-dst", target: "/data" };
    sark(`mkdir -p ${c.source} && cd ${c.source} && for i in $(seq 1 1500); do head -c 262144 /dev/urandom > f$i.bin; done`);
    createContainer(c.container, c.source, c.target);
    const { run, finalize } = await commands(c);
    // a watcher on the host kills rsync and the script once part of the tree has arrived
    sark(
      `nohup sh -c 'for i in $(seq 1 600); do n=$(ls ${c.destination} 2>/dev/null | wc -l); if [ "$n" -ge 100 ]; then pkill -TERM -f "rsync.*${c.source}"; pkill -TERM -f "migrate run ${c.name}"; exit 0; fi; sleep 0.02; done' >/dev/null 2>&1 &`,
    );
    const killed = exec(run);
    expect(killed.code).not.toBe(0);
    expect(state(c.name).state).toBe("copying");
    const copied = Number(sark(`ls ${c.destination} | wc -l`));
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(1500);
    expect(sark(`docker inspect -f '{{.State.Running}}' ${c.container}`).trim()).toBe("true");

    const resumed = exec(run);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain("resuming migration resume");
    expect(manifest(c.destination)).toBe(manifest(c.source));
    createContainer(c.container, c.destination, c.target);
    expect(exec(finalize).code).toBe(0);
    sark(`docker rm -f ${c.container}`);
  });

  it("GIVEN a destination filesystem too small THEN pre-flight stops with the sizes and nothing is touched", async () => {
    const c: Case = { name: "small", container: "smallsvc", source: "/srv/small-src", destination: "/mnt/small/data", target: "/data", mount: "/mnt/small" };
    sark(`set -e
mkdir -p ${c.source} /mnt/small && head -c 50000000 /dev/urandom > ${c.source}/big.bin
truncate -s 20M /var/tmp/small.img && mkfs.ext4 -q -F /var/tmp/small.img && mount -o loop /var/tmp/small.img /mnt/small`);
    createContainer(c.container, c.source, c.target);
    const { run } = await commands(c);
    const r = exec(run);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not enough room for \/mnt\/small\/data: .* are free; nothing was touched/);
    expect(sark("ls -A /mnt/small").trim()).toBe("lost+found");
    expect(state(c.name)).toEqual({});
    expect(sark(`docker inspect -f '{{.State.Running}}' ${c.container}`).trim()).toBe("true");
    sark(`docker rm -f ${c.container}; umount /mnt/small`);
  });

  it("GIVEN the service unhealthy on the destination THEN it is brought back on the untouched source and the command fails", async () => {
    const c: Case = { name: "unhealthy", container: "healthsvc", source: "/srv/health-src", destination: "/mnt/other/data", target: "/data", mount: "/mnt/other", healthTimeout: 30 };
    sark(`set -e
mkdir -p ${c.source} /mnt/other && echo payload > ${c.source}/file.txt
truncate -s 64M /var/tmp/other.img && mkfs.ext4 -q -F /var/tmp/other.img && mount -o loop /var/tmp/other.img /mnt/other`);
    // healthy only on the filesystem it started on: fails on the new one, like a service that
    // cannot work with the destination
    const dev = sark(`stat -c %d ${c.source}`).trim();
    createContainer(c.container, c.source, c.target, `--init --health-cmd 'test "$(stat -c %d /data)" = "${dev}"' --health-interval 1s --health-retries 2`);
    sark(`timeout 30 sh -c 'until [ "$(docker inspect -f {{.State.Health.Status}} ${c.container})" = healthy ]; do sleep 1; done'`);
    const source = manifest(c.source);
    const { run } = await commands(c);
    const r = exec(run);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the service did not become healthy on /mnt/other/data within 30s (trial container)");
    expect(r.stderr).toContain(`healthsvc runs on ${c.source} again`);
    expect(sark(`docker inspect -f '{{.State.Running}} {{range .Mounts}}{{.Source}}{{end}}' ${c.container}`).trim()).toBe(`true ${c.source}`);
    expect(manifest(c.source)).toBe(source);
    expect(asRoot(hosts, "sark", "docker inspect healthsvc-migration-trial").code).not.toBe(0); // the trial is gone
    sark(`docker rm -f ${c.container}; umount /mnt/other`);
  });

  it("GIVEN a file changed in the destination after verification THEN a re-run reports it and does not overwrite it", async () => {
    const c: Case = { name: "changed", container: "changedsvc", source: "/srv/changed-src", destination: "/srv/changed-dst", target: "/data" };
    sark(`mkdir -p ${c.source} && echo original > ${c.source}/file.txt`);
    createContainer(c.container, c.source, c.target);
    const { run } = await commands(c);
    expect(exec(run).code).toBe(0);
    sark(`echo changed-after-verification > ${c.destination}/file.txt`);
    const r = exec(run);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("the destination /srv/changed-dst changed after migration changed was verified; not copying over it");
    expect(sark(`cat ${c.destination}/file.txt`).trim()).toBe("changed-after-verification");
    sark(`docker rm -f ${c.container}`);
  });

  it("GIVEN an unknown container THEN a clear error and nothing touched", async () => {
    const c: Case = { name: "nocontainer", container: "notthere", source: "/srv/nc-src", destination: "/srv/nc-dst", target: "/data" };
    sark(`mkdir -p ${c.source} && echo x > ${c.source}/f`);
    const { run } = await commands(c);
    const r = exec(run);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("there is no container 'notthere'");
    expect(asRoot(hosts, "sark", `test -e ${c.destination}`).code).not.toBe(0);
    expect(state(c.name)).toEqual({});
  });
});
