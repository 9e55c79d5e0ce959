/**
 * The data migration on a real test host: real rsync, real containers, real faults. Each case
 * applies the test-sark stack with the e2e engine (engine.ts), as `pulumi up` would: first with
 * the service only (the engine creates its container from the stack, stopped, and the switch
 * starts it on the source), then with a `migrations` entry: the container's configuration
 * changes, so the adopt step renames the running one `<name>-previous` (it goes on serving), the
 * engine replaces the container (the provider only forgets the old one: retainOnDelete) with one
 * on the destination, created stopped, `migrate run` copies, stops the writer and starts the new
 * container (the cut-over), then the switch and `migrate finalize`. No container is made or
 * removed by hand.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundledScript, shq } from "../../components/render/command";
import { ApplyFailed, type ApplyResult, type Engine } from "./engine";
import { addOperator, asRoot, commandTarget, engineFor, mustRoot, ssh, startHosts, stopHosts, testStackConfig, type TestHosts } from "./hosts";

let hosts: TestHosts;
let keyPath: string;
let engine: Engine;
let secrets: Record<string, string>;
const started = Date.now();

interface Case {
  readonly name: string;
  readonly container: string;
  readonly source: string;
  readonly destination: string;
  readonly target: string;
  readonly mount?: string;
  readonly healthTimeout?: number;
  /** The stand-in's command. @default a memory stand-in with its data at `target` */
  readonly command?: readonly string[];
  /** A health check test (CMD-SHELL). */
  readonly health?: string;
}

/** The test-sark stack with the case's service, and with its migration when `migrate`. */
function stackConfig(c: Case, migrate: boolean): Record<string, unknown> {
  return {
    ...testStackConfig(hosts, "sark"),
    services: {
      [c.container]: {
        host: "sark",
        image: "standin:1",
        pull: false,
        overlay: false,
        command: [...(c.command ?? ["standin", "memory", "--data", c.target])],
        mounts: [{ source: c.source, target: c.target }],
        ...(c.health ? { healthcheck: { test: ["CMD-SHELL", c.health], interval: "1s", timeout: "5s", retries: 2, startPeriod: "0s" }, waitTimeout: 60 } : {}),
      },
    },
    ...(migrate
      ? {
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
        }
      : {}),
  };
}

/** `pulumi up` of the case's stack; a failed apply's result is returned, not thrown. */
async function up(c: Case, migrate: boolean, kill?: { step: string }): Promise<ApplyResult> {
  return engine.tryUp({ stack: "test-sark", config: stackConfig(c, migrate), secrets, ...(kill ? { kill } : {}) });
}

/** The service's container, created by the engine from the stack (as the provider would). */
async function service(c: Case): Promise<void> {
  const r = await up(c, false);
  if (!r.ok) throw new ApplyFailed(r);
  expect(r.step(`sark-${c.container}-container`).op).toBe("create");
}

/** Runs a command of the stack again by hand, as a trigger change would (Pulumi runs it once). */
function rerun(name: string) {
  const e = engine.stateOf("test-sark").resources.find((r) => r.name === name);
  return ssh(commandTarget(e), keyPath, String(e!.inputs.create), e!.inputs.stdin as string | undefined);
}

const sark = (cmd: string) => mustRoot(hosts, "sark", cmd);
const running = (container: string) => sark(`docker inspect -f '{{.State.Running}} {{range .Mounts}}{{.Source}}{{end}}' ${container}`).trim();

/**
 * Content, owner, mode, size, links and link targets of a tree, for comparison.
 * A directory's size is left out: it is the filesystem's bookkeeping, not content
 * (ext4 grows a directory with every name ever made in it and never shrinks it, so
 * the temporary files of a copy killed mid-way leave the destination's directory
 * one block larger than the source's: 40960 against 36864 in a CI run).
 */
function manifest(dir: string, except = ""): string {
  // every entry but those whose name starts with `except` (all of them when it is empty)
  const pick = except === "" ? "" : `! -name '${except}*'`;
  return sark(
    `cd ${dir} && { find . ${pick} \\( -type d -printf '%P %y %m %U:%G - %n %l\\n' -o -printf '%P %y %m %U:%G %s %n %l\\n' \\) | sort; find . -type f ${pick} -exec sha256sum {} + | sort -k2; find . ${pick} -print0 | sort -z | xargs -0 getfacl -p 2>/dev/null; find . ${pick} -print0 | sort -z | xargs -0 getfattr -d -m - 2>/dev/null; }`,
  );
}

function state(name: string): Record<string, string> {
  const r = asRoot(hosts, "sark", `cat /var/lib/dgx-storage/migrations/${name}.json`);
  return r.code === 0 ? (JSON.parse(r.stdout) as Record<string, string>) : {};
}

beforeAll(() => {
  hosts = startHosts();
  keyPath = hosts.privateKeyPath;
  engine = engineFor(hosts);
  secrets = { sshPrivateKey: fs.readFileSync(keyPath, "utf8") };
  addOperator(hosts, "sark");
  // the backup's off-site receiving side is installed on clu by sark's stack
  addOperator(hosts, "clu");
});

afterAll(() => {
  stopHosts();
  console.log(`migration e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("data migration on a test host", () => {
  it("moves a live SQLite writer's data: nothing committed is lost, integrity ok, source read-only, re-runs change nothing", async () => {
    const c: Case = {
      name: "chromadb",
      container: "chromadb",
      source: "/home/maxvamp/chromadb-data",
      destination: "/data/enhanced/chromadb",
      target: "/chroma/chroma",
      command: ["standin", "chroma"],
    };
    // a fidelity tree beside the database: hard links, symlinks, xattrs, ACLs, setuid, foreign owner, FIFO, sparse, empty
    sark(`set -e
mkdir -p ${c.source}/a/b/c && cd ${c.source}
for i in $(seq 1 200); do head -c 65536 /dev/urandom > a/b/f$i.bin; done
echo hello > a/file.txt && ln a/file.txt a/b/hard.txt && ln -s ../file.txt a/b/rel-link
: > empty && printf x > owned && chown 100:200 owned && printf '#!/bin/sh\\n' > setuid && chmod 4755 setuid
mkfifo fifo && truncate -s 64M sparse && setfattr -n user.origin -v sark a/file.txt && setfacl -m u:1234:r a/b/c`);
    // the service: the chromadb stand-in, a writer committing a row every few ms (WAL mode)
    await service(c);
    sark("sleep 2");
    const before = Number(sark(`sqlite3 ${c.source}/chroma.sqlite3 'SELECT count(*) FROM t'`));
    expect(before).toBeGreaterThan(50);

    const r = await up(c, true);
    expect(r.steps.filter((s) => s.status !== "ok")).toEqual([]);
    const run = r.stdout("sark-chromadb-migrate-chromadb-run");
    expect(run).toContain("pass 1 (service running)");
    expect(run).toMatch(/ written to the destination's filesystem/); // pass 1's progress (cp -a: from the filesystem's used space)
    expect(run).toContain("stopping chromadb-previous");
    expect(run).toContain("the service is healthy on /data/enhanced/chromadb");
    expect(run).toMatch(/migration chromadb verified: .* downtime [\d.]+ s \(service stopped to healthy on \/data\/enhanced\/chromadb\)/);
    // adopt, the container replaced (created stopped), run (the cut-over), the switch, finalize
    const at = (name: string) => r.step(name);
    expect(at("sark-chromadb-adopt").end).toBeLessThanOrEqual(at("sark-chromadb-container").start);
    expect(at("sark-chromadb-container").op).toBe("replace");
    expect(at("sark-chromadb-container").end).toBeLessThanOrEqual(at("sark-chromadb-migrate-chromadb-run").start);
    expect(at("sark-chromadb-migrate-chromadb-run").end).toBeLessThanOrEqual(at("sark-chromadb-switch").start);
    expect(at("sark-chromadb-switch").end).toBeLessThanOrEqual(at("sark-chromadb-migrate-chromadb-finalize").start);
    expect(running(c.container)).toBe(`true ${c.destination}`);
    // the old one: stopped, restart policy no, kept for a manual rollback
    expect(sark("docker inspect -f '{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}' chromadb-previous").trim()).toBe("false no");

    // every committed row of the source (its final state, the writer stopped) is in the destination;
    // the source is read-only by now (finalize ran), so it is opened immutable (no -shm to create)
    const src = `file:${c.source}/chroma.sqlite3?immutable=1`;
    const missing = sark(
      `sqlite3 ${c.destination}/chroma.sqlite3 "ATTACH '${src}' AS s; SELECT count(*) FROM s.t WHERE id NOT IN (SELECT id FROM main.t)"`,
    ).trim();
    expect(missing).toBe("0");
    expect(sark(`sqlite3 ${c.destination}/chroma.sqlite3 'PRAGMA integrity_check'`).trim()).toBe("ok");
    const rows = Number(sark(`sqlite3 '${src}' 'SELECT count(*) FROM t'`));
    expect(rows).toBeGreaterThan(before);
    // the tree came over whole (the database itself moved on in the trial run, so it is left out)
    const tree = (dir: string) => manifest(dir, "chroma.sqlite3");
    expect(tree(c.destination)).toBe(tree(c.source));

    const f = r.stdout("sark-chromadb-migrate-chromadb-finalize");
    expect(f).toMatch(/migration chromadb complete: \d+ bytes copied, \d+ files verified, downtime [\d.]+ s/);
    const downtime = Number(/downtime ([\d.]+) s/.exec(f)![1]);
    expect(downtime).toBeLessThan(60);
    expect(state(c.name).state).toBe("complete");
    // the source is read-only, also for root, and stays so across a reboot (a mount unit)
    expect(asRoot(hosts, "sark", `touch ${c.source}/new-file`).code).not.toBe(0);
    expect(sark("systemctl is-enabled home-maxvamp-chromadb\\\\x2ddata.mount").trim()).toBe("enabled");

    // pulumi up again runs nothing; running both steps again by hand changes nothing either
    const marker = sark(`cat /var/lib/dgx-storage/migrations/${c.name}.json`);
    const again = await up(c, true);
    expect(again.steps.filter((s) => s.op !== "same" && s.op !== "read")).toEqual([]);
    const rerunRun = rerun("sark-chromadb-migrate-chromadb-run");
    expect(rerunRun.code).toBe(0);
    expect(rerunRun.stdout).toContain("nothing to do (the source is never copied again)");
    expect(rerun("sark-chromadb-migrate-chromadb-finalize").stdout).toContain("nothing to do");
    expect(sark(`cat /var/lib/dgx-storage/migrations/${c.name}.json`)).toBe(marker);
  });

  it("GIVEN the copy killed mid-way THEN the apply fails, the service keeps running on the source, and the next apply resumes and completes", async () => {
    const c: Case = { name: "resume", container: "resumesvc", source: "/srv/resume-src", destination: "/srv/resume-dst", target: "/data" };
    sark(`mkdir -p ${c.source} && cd ${c.source} && for i in $(seq 1 1500); do head -c 262144 /dev/urandom > f$i.bin; done`);
    await service(c);
    // a watcher on the host kills the copy (cp -a, or rsync on a resumed run) and the script once part of the tree has arrived
    sark(
      `nohup sh -c 'for i in $(seq 1 600); do n=$(ls ${c.destination} 2>/dev/null | wc -l); if [ "$n" -ge 100 ]; then pkill -TERM -f "(rsync|cp -a).*${c.source}"; pkill -TERM -f "migrate.sh run ${c.name}"; exit 0; fi; sleep 0.02; done' >/dev/null 2>&1 &`,
    );
    const killed = await up(c, true);
    expect(killed.ok).toBe(false);
    expect(killed.step("sark-resumesvc-migrate-resume-run").status).toBe("error");
    // the new container was created (stopped) before the copy; the switch and finalize never ran
    expect(killed.step("sark-resumesvc-container").op).toBe("replace");
    const ran = (name: string) => killed.steps.filter((s) => s.name === name && s.status !== "skipped");
    expect(ran("sark-resumesvc-switch")).toEqual([]);
    expect(ran("sark-resumesvc-migrate-resume-finalize")).toEqual([]);
    expect(state(c.name).state).toBe("copying");
    const copied = Number(sark(`ls ${c.destination} | wc -l`));
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(1500);
    // the service goes on, in the old container, on the source
    expect(running(`${c.container}-previous`)).toBe(`true ${c.source}`);

    // a failed create is not recorded: the next apply creates (runs) it again
    const resumed = await up(c, true);
    expect(resumed.steps.filter((s) => s.status !== "ok")).toEqual([]);
    expect(resumed.step("sark-resumesvc-migrate-resume-run").op).toBe("create");
    expect(resumed.stdout("sark-resumesvc-migrate-resume-run")).toContain("resuming migration resume");
    expect(manifest(c.destination)).toBe(manifest(c.source));
    expect(running(c.container)).toBe(`true ${c.destination}`);
    expect(state(c.name).state).toBe("complete");
  });

  it("GIVEN a destination filesystem too small THEN pre-flight stops with the sizes and nothing is touched", async () => {
    const c: Case = { name: "small", container: "smallsvc", source: "/srv/small-src", destination: "/mnt/small/data", target: "/data", mount: "/mnt/small" };
    sark(`set -e
mkdir -p ${c.source} /mnt/small && head -c 50000000 /dev/urandom > ${c.source}/big.bin
truncate -s 20M /var/tmp/small.img && mkfs.ext4 -q -F /var/tmp/small.img && mount -o loop /var/tmp/small.img /mnt/small`);
    await service(c);
    const r = await up(c, true);
    expect(r.step("sark-smallsvc-migrate-small-run").status).toBe("error");
    expect(r.step("sark-smallsvc-migrate-small-run").error).toMatch(/not enough room for \/mnt\/small\/data: .* are free; nothing was touched/);
    // only the empty destination directory (the new container mounts it)
    expect(sark("ls -A /mnt/small; ls -A /mnt/small/data").trim().split("\n")).toEqual(["data", "lost+found"]);
    expect(state(c.name)).toEqual({});
    expect(running(`${c.container}-previous`)).toBe(`true ${c.source}`);
  });

  it("GIVEN the service unhealthy on the destination THEN it is brought back on the untouched source and the apply fails", async () => {
    const c0: Case = {
      name: "unhealthy",
      container: "healthsvc",
      source: "/srv/health-src",
      destination: "/mnt/other/data",
      target: "/data",
      mount: "/mnt/other",
      healthTimeout: 30,
    };
    sark(`set -e
mkdir -p ${c0.source} /mnt/other && echo payload > ${c0.source}/file.txt
truncate -s 64M /var/tmp/other.img && mkfs.ext4 -q -F /var/tmp/other.img && mount -o loop /var/tmp/other.img /mnt/other`);
    // healthy only on the filesystem it started on: fails on the new one, like a service that
    // cannot work with the destination (the engine waits for healthy, as wait: true does)
    const dev = sark(`stat -c %d ${c0.source}`).trim();
    const c: Case = { ...c0, health: `test "$(stat -c %d /data)" = "${dev}"` };
    await service(c);
    const source = manifest(c.source);
    const r = await up(c, true);
    const run = r.step("sark-healthsvc-migrate-unhealthy-run");
    expect(run.status).toBe("error");
    expect(run.error).toContain("the service did not become healthy on /mnt/other/data within 30s");
    expect(run.error).toContain(`healthsvc-previous runs on the untouched source ${c.source} again`);
    // the old container serves, on the source, with its restart policy back; the new one is stopped
    expect(running(`${c.container}-previous`)).toBe(`true ${c.source}`);
    expect(sark(`docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' ${c.container}-previous`).trim()).toBe("unless-stopped");
    expect(running(c.container)).toBe(`false ${c.destination}`);
    expect(manifest(c.source)).toBe(source);
  });

  it("GIVEN the apply killed once the switch starts, and a file changed in the destination after the cut-over THEN a re-run reports it and does not overwrite it", async () => {
    const c: Case = { name: "changed", container: "changedsvc", source: "/srv/changed-src", destination: "/srv/changed-dst", target: "/data" };
    sark(`mkdir -p ${c.source} && echo original > ${c.source}/file.txt`);
    await service(c);
    // Ctrl-C twice as the switch starts: run completed (verified, the new container serves), finalize never ran
    const r = await up(c, true, { step: "sark-changedsvc-switch" });
    expect(r.killed).toBe(true);
    expect(r.step("sark-changedsvc-migrate-changed-run").status).toBe("ok");
    expect(r.steps.map((s) => s.name)).not.toContain("sark-changedsvc-migrate-changed-finalize");
    expect(state(c.name).state).toBe("verified");
    sark(`echo changed-after-verification > ${c.destination}/file.txt`);
    const again = rerun("sark-changedsvc-migrate-changed-run");
    expect(again.code).toBe(0);
    expect(again.stdout + again.stderr).toContain("the destination /srv/changed-dst changed after migration changed was verified; not copying over it");
    expect(sark(`cat ${c.destination}/file.txt`).trim()).toBe("changed-after-verification");
  });

  it("GIVEN a new container that does not exist THEN a clear error and nothing touched", async () => {
    const c: Case = { name: "nocontainer", container: "notthere", source: "/srv/nc-src", destination: "/srv/nc-dst", target: "/data" };
    sark(`mkdir -p ${c.source} && echo x > ${c.source}/f`);
    // the run step as the stack declares it, but naming a container id that does not exist
    const missing = "0123456789ab".repeat(6).slice(0, 64);
    const cmd = `sudo -n bash -c ${shq(bundledScript("migrate"))} migrate run ${c.name} ${missing} ${c.source} ${c.destination} - 10 60 none`;
    const h = hosts.hosts.sark;
    const r = ssh({ address: h.address, port: h.port, user: "maxvamp", hostKey: h.hostKey }, keyPath, cmd);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`there is no container '${missing}'`);
    expect(asRoot(hosts, "sark", `test -e ${c.destination}`).code).not.toBe(0);
    expect(state(c.name)).toEqual({});
  });
});
