/**
 * The rehearsal of the first `pulumi up` on the servers as they run today. The test hosts are
 * first made to look like SARK and CLU now: DGX OS's dockerd settings, the services started from
 * the plan's compose file under the plan's container names (stand-in images: nothing is pulled),
 * their data in the home directories, a live writer committing rows in ChromaDB's stand-in, the
 * plan's volumes made by hand, a borg repository on /mnt/borg-backup with a known passphrase and
 * a crontab job carrying it in clear. Then both stacks are applied by the engine (test/e2e/engine.ts:
 * the program run once, every resource applied as the provider would, in parallel wherever the
 * graph allows), while a prober on each host records what the services' clients see.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApplyFailed, type ApplyResult, type Engine } from "./engine";
import { addOperator, asRoot, asRootAsync, makeDgxLike, mustRoot, stopHosts, testStackConfig, type HostName, type TestHosts, startSuite } from "./hosts";
import { stackFileConfig } from "../harness";

/** The passphrase of the repository made by hand, which the stack's borgPassphrase secret must open. */
const PASSPHRASE = "rehearsal-borg-passphrase-7e1c";
const PROBER = fs.readFileSync(path.join(__dirname, "prober.py"), "utf8");

/** The plan's compose files as the operator runs them today (the plan's own has no image and two sources per path). */
const COMPOSE: Record<HostName, string> = {
  sark: `version: "3.8"
services:
  chromadb:
    image: standin:1
    container_name: chromadb
    command: ["standin", "chroma"]
    restart: unless-stopped
    ports: ["8000:8000"]
    volumes:
      - /home/maxvamp/chromadb-data:/chroma/chroma
`,
  clu: `version: "3.8"
services:
  memory-service:
    image: standin:1
    container_name: memory-service
    command: ["standin", "memory"]
    restart: unless-stopped
    volumes:
      - /home/maxvamp/memory-data:/app/data
  vllm:
    image: standin:1
    container_name: vllm
    command: ["standin", "vllm"]
    restart: always
    ports: ["8000:8000"]
    volumes:
      - /home/maxvamp/GLM-4.5-Air-AWQ:/models/GLM-4.5-Air-AWQ:ro
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: 1
              capabilities: [gpu]
`,
};

/**
 * The address a service's published port is bound to in the test stack (its host's address on the
 * test network): the compose containers of today publish on every interface, this project's
 * containers only there, so a client that goes on working through the switch uses it.
 */
function boundAddress(name: HostName, service: string): string {
  const services = stackFileConfig(`test/e2e/Pulumi.test-${name}.yaml`).services as Record<string, { ports: { ip: string }[] }>;
  return services[service]!.ports[0]!.ip;
}
const chromaUrl = () => `http://${boundAddress("sark", "chromadb")}:8000/api/v1/heartbeat`;
const vllmUrl = () => `http://${boundAddress("clu", "vllm")}:8000/v1/models`;

/** What the probers watch: a client of each service (published ports) and the memory service from inside. */
const PROBES: Record<HostName, () => string[]> = {
  sark: () => [`chromadb=${chromaUrl()}`],
  clu: () => [
    "memory-service=exec:memory-service|memory-service-pre-dgx-storage:http://127.0.0.1:8080/health",
    "memory-records=remember:memory-service|memory-service-pre-dgx-storage",
    `vllm=${vllmUrl()}`,
  ],
};

let hosts: TestHosts;
let key: string;
let engine: Engine;

const sark = (cmd: string, stdin?: string) => mustRoot(hosts, "sark", cmd, stdin);
const clu = (cmd: string, stdin?: string) => mustRoot(hosts, "clu", cmd, stdin);
const on = (name: HostName, cmd: string, stdin?: string) => mustRoot(hosts, name, cmd, stdin);

/** The servers as they run today (see the file's comment). */
function today(): void {
  for (const name of ["sark", "clu"] as const) {
    addOperator(hosts, name);
    makeDgxLike(hosts, name);
  }
  sark(`set -e
mkdir -p /data/chroma /home/maxvamp/dgx
docker volume create chroma-data >/dev/null && docker volume create backup-data >/dev/null
docker volume create --name chroma-persistent --opt type=none --opt device=/data/chroma --opt o=bind >/dev/null
BORG_PASSPHRASE='${PASSPHRASE}' borg init --encryption=repokey /mnt/borg-backup
cat > /home/maxvamp/borg-daily.sh <<'EOF'
#!/bin/bash
export BORG_RSH='ssh -o BatchMode=yes'
export BORG_PASSPHRASE='${PASSPHRASE}'
borg create --compression lz4 /mnt/borg-backup::daily-{now} /home/maxvamp/chromadb-data
borg prune --keep-daily=7 --keep-weekly=4 --keep-monthly=6 /mnt/borg-backup
EOF
chmod 755 /home/maxvamp/borg-daily.sh
echo '0 2 * * * /home/maxvamp/borg-daily.sh' | crontab -`);
  clu(`set -e
mkdir -p /data/memory /home/maxvamp/dgx && echo weights > /home/maxvamp/GLM-4.5-Air-AWQ/model.safetensors
docker volume create memory-data >/dev/null && docker volume create vllm-models >/dev/null
docker volume create --name memory-persistent --opt type=none --opt device=/data/memory --opt o=bind >/dev/null`);
  for (const name of ["sark", "clu"] as const) {
    on(name, "cat > /home/maxvamp/dgx/docker-compose.yml && chown -R maxvamp: /home/maxvamp/dgx", COMPOSE[name]);
    // as the operator: docker compose up in the project directory
    on(name, "cd /home/maxvamp/dgx && runuser -u maxvamp -- docker-compose up -d 2>&1");
  }
  sark(`timeout 60 sh -c 'until python3 -c \"import urllib.request; urllib.request.urlopen(\\\"${chromaUrl()}\\\")\" 2>/dev/null; do sleep 1; done'`);
  clu(`timeout 60 sh -c 'until python3 -c \"import urllib.request; urllib.request.urlopen(\\\"${vllmUrl()}\\\")\" 2>/dev/null; do sleep 1; done'`);
}

/** The test stacks with what the real ones add for these services: the migrations, archived first, and the repository made by hand. */
function rehearsalConfig(name: HostName): Record<string, unknown> {
  const c = testStackConfig(hosts, name);
  const backup = c.backup as Record<string, unknown>;
  if (name === "sark") {
    return {
      ...c,
      migrations: [
        {
          name: "chromadb",
          service: "chromadb",
          source: "/home/maxvamp/chromadb-data",
          destination: "/data/enhanced/chromadb",
          healthTimeout: 60,
          snapshot: "borg",
        },
      ],
      backup: {
        ...backup,
        repository: { path: "/mnt/borg-backup", name: "sark" },
        paths: { daily: ["/srv/data"], hourly: ["/data/enhanced/chromadb"] },
        sqlite: ["/data/enhanced/chromadb/chroma.sqlite3"],
        existingJobs: "report",
      },
    };
  }
  return {
    ...c,
    migrations: [
      {
        name: "memory-service",
        service: "memory-service",
        source: "/home/maxvamp/memory-data",
        destination: "/data/enhanced/memory-service",
        healthTimeout: 60,
        snapshot: "borg",
      },
    ],
  };
}

const secrets = () => ({ sshPrivateKey: key, borgPassphrase: PASSPHRASE });
const apply = (name: HostName, extra: Partial<Parameters<Engine["up"]>[0]> = {}) =>
  engine.up({ stack: `test-${name}`, config: rehearsalConfig(name), secrets: secrets(), ...extra });

function startProbes(name: HostName): void {
  on(name, "cat > /usr/local/bin/e2e-prober.py && rm -f /var/tmp/probe.log", PROBER);
  on(
    name,
    `systemd-run --unit e2e-prober python3 /usr/local/bin/e2e-prober.py --interval 0.2 --log /var/tmp/probe.log ${PROBES[name]()
      .map((p) => `'${p}'`)
      .join(" ")}`,
  );
}

interface ProbeLine {
  readonly t: number;
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

function stopProbes(name: HostName): ProbeLine[] {
  on(name, "systemctl stop e2e-prober; true");
  return on(name, "cat /var/tmp/probe.log")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [t, n, ok, ...rest] = l.split(" ");
      return { t: Number(t), name: n!, ok: ok === "ok", detail: rest.join(" ") };
    });
}

/** The longest time a probe failed: from its last success before the gap to its first success after it. */
function downtime(lines: readonly ProbeLine[], name: string): number {
  const mine = lines.filter((l) => l.name === name);
  let worst = 0;
  let lastOk: number | undefined;
  let failing = false;
  for (const l of mine) {
    if (!l.ok) failing = true;
    else {
      if (failing && lastOk !== undefined) worst = Math.max(worst, l.t - lastOk);
      failing = false;
      lastOk = l.t;
    }
  }
  if (failing) return Infinity; // never came back
  return worst;
}

const migrationDowntime = (r: ApplyResult, step: string) => Number(/downtime ([\d.]+) s/.exec(r.stdout(step))?.[1] ?? NaN);

beforeAll(() => {
  ({ hosts, key, engine } = startSuite());
  today();
});

afterAll(() => {
  stopHosts();
});

describe("the first apply on the servers as they run today", () => {
  const first: Partial<Record<HostName, ApplyResult>> = {};
  const probes: Partial<Record<HostName, ProbeLine[]>> = {};
  const rowsBefore: { sark?: number } = {};

  it("applies both stacks, manager first, while the services keep being used", async () => {
    rowsBefore.sark = Number(sark("sqlite3 /home/maxvamp/chromadb-data/chroma.sqlite3 'SELECT count(*) FROM t'"));
    expect(rowsBefore.sark).toBeGreaterThan(10);
    startProbes("sark");
    startProbes("clu");
    try {
      first.sark = await apply("sark");
      first.clu = await apply("clu");
    } finally {
      probes.sark = stopProbes("sark");
      probes.clu = stopProbes("clu");
    }
  });

  it("every service runs healthy in this project's container, on its new data", () => {
    const inspect = (name: HostName, c: string) =>
      on(
        name,
        `docker inspect -f '{{index .Config.Labels "managed-by"}} {{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}' ${c}`,
      ).trim();
    expect(inspect("sark", "chromadb")).toBe("dgx-storage true healthy /data/enhanced/chromadb:/chroma/chroma");
    expect(inspect("clu", "memory-service")).toMatch(/^dgx-storage true +\/data\/enhanced\/memory-service:\/app\/data$/);
    expect(inspect("clu", "vllm")).toMatch(/^dgx-storage true healthy /);
    // the GPU request reached the engine (no GPU is attached here: test/hosts/README.md)
    expect(clu("docker inspect -f '{{json .HostConfig.DeviceRequests}}' vllm").trim()).toBe(
      '[{"Driver":"nvidia","Count":1,"DeviceIDs":null,"Capabilities":[["gpu"]],"Options":null}]',
    );
  });

  it("no committed row is lost: every row of the old database is in the new one, and the writer goes on", () => {
    const missing = sark(
      "sqlite3 /data/enhanced/chromadb/chroma.sqlite3 \"ATTACH 'file:/home/maxvamp/chromadb-data/chroma.sqlite3?immutable=1' AS s; SELECT count(*) FROM s.t WHERE id NOT IN (SELECT id FROM main.t)\"",
    ).trim();
    expect(missing).toBe("0");
    // the source is a read-only bind mount now (SQLite cannot make its -shm there): read it immutable
    const old = Number(sark("sqlite3 'file:/home/maxvamp/chromadb-data/chroma.sqlite3?immutable=1' 'SELECT count(*) FROM t'"));
    expect(old).toBeGreaterThan(rowsBefore.sark!);
    const now = Number(sark("sqlite3 /data/enhanced/chromadb/chroma.sqlite3 'SELECT count(*) FROM t'"));
    expect(now).toBeGreaterThan(old);
    expect(sark("sqlite3 /data/enhanced/chromadb/chroma.sqlite3 'PRAGMA integrity_check'").trim()).toBe("ok");
    // every record the memory service acknowledged during the apply is in its new data
    const acked = Math.max(0, ...probes.clu!.filter((l) => l.name === "memory-records" && l.ok).map((l) => Number(l.detail)));
    expect(acked).toBeGreaterThan(5);
    const stored = new Set(clu("cat /data/enhanced/memory-service/memories.log").split("\n"));
    const lost = Array.from({ length: acked }, (_, i) => `record-${i + 1}`).filter((r) => !stored.has(r));
    expect(lost).toEqual([]);
  });

  it("each service was down only for its migration's downtime and the switch, not the whole apply (printed)", () => {
    const rows = [
      {
        service: "chromadb",
        down: downtime(probes.sark!, "chromadb"),
        migration: migrationDowntime(first.sark!, "sark-chromadb-migrate-chromadb-run"),
        apply: first.sark!.steps.at(-1)!.end / 1000,
      },
      {
        service: "memory-service",
        down: downtime(probes.clu!, "memory-service"),
        migration: migrationDowntime(first.clu!, "clu-memory-service-migrate-memory-service-run"),
        apply: first.clu!.steps.at(-1)!.end / 1000,
      },
      { service: "vllm", down: downtime(probes.clu!, "vllm"), migration: 0, apply: first.clu!.steps.at(-1)!.end / 1000 },
    ];
    console.log(
      [
        "service         down (s)  migration downtime (s)  whole apply (s)",
        ...rows.map(
          (r) =>
            `${r.service.padEnd(16)}${r.down.toFixed(1).padStart(8)}  ${String(Number.isNaN(r.migration) ? "-" : r.migration.toFixed(1)).padStart(22)}  ${r.apply.toFixed(1).padStart(15)}`,
        ),
      ].join("\n"),
    );
    for (const r of rows) {
      expect(r.down, r.service).toBeLessThan(Infinity);
      // the switch adds a stop and a health wait: at most 20 s beyond the migration's own downtime
      expect(r.down, r.service).toBeLessThan((Number.isNaN(r.migration) ? 0 : r.migration) + 20);
      expect(r.down, r.service).toBeLessThan(r.apply / 2);
    }
  });

  it("the old containers are kept stopped and renamed, restart policy no; the compose files cannot start them again", () => {
    for (const [name, c] of [
      ["sark", "chromadb"],
      ["clu", "memory-service"],
      ["clu", "vllm"],
    ] as const) {
      expect(
        on(
          name,
          `docker inspect -f '{{.State.Running}} {{.HostConfig.RestartPolicy.Name}} {{index .Config.Labels "com.docker.compose.project"}}' ${c}-pre-dgx-storage`,
        ).trim(),
      ).toBe("false no dgx");
    }
    for (const name of ["sark", "clu"] as const) {
      expect(on(name, "ls /home/maxvamp/dgx").trim().split("\n")).toEqual(["docker-compose.yml.pre-dgx-storage"]);
      const up = asRoot(hosts, name, "cd /home/maxvamp/dgx && runuser -u maxvamp -- docker-compose up -d 2>&1");
      expect(up.code).not.toBe(0);
      expect(up.stdout + up.stderr).toMatch(/Can't find a suitable configuration file/);
    }
    expect(first.sark!.stdout("sark-chromadb-adopt")).toContain(
      "chromadb-pre-dgx-storage belongs to the docker compose project 'dgx' (/home/maxvamp/dgx/docker-compose.yml)",
    );
  });

  it("the hand-made borg job is reported, with its passphrase in clear; it is left running (existingJobs: report)", () => {
    // line 4: crontab(1) writes its three "DO NOT EDIT" comment lines first
    expect(first.sark!.run.exports.existingBackupJobs).toEqual([
      "/var/spool/cron/crontabs/root line 4: 0 2 * * * /home/maxvamp/borg-daily.sh (the borg passphrase is in clear in /home/maxvamp/borg-daily.sh)",
    ]);
    expect(first.sark!.stderr("sark-backup-existing-jobs")).toContain("backup.existingJobs: disable");
    expect(sark("crontab -l")).toBe("0 2 * * * /home/maxvamp/borg-daily.sh\n");
    // the migration's archive went into the repository made by hand, with the stack's passphrase
    expect(sark(`BORG_PASSPHRASE='${PASSPHRASE}' borg list --short /mnt/borg-backup`)).toMatch(/^sark-migration-chromadb-\S+$/m);
  });

  it("a second apply changes nothing, commands and Docker resources alike", async () => {
    for (const name of ["sark", "clu"] as const) {
      const r = await apply(name);
      const changed = r.steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`);
      expect(changed, name).toEqual([]);
    }
  });

  it("after one service's env changes, a third apply replaces only that container (its adopt and switch run again, both no-ops for the name)", async () => {
    const config = rehearsalConfig("clu");
    const services = structuredClone(config.services) as Record<string, Record<string, unknown>>;
    services.vllm!.env = { ...(services.vllm!.env as Record<string, string> | undefined), VLLM_LOGGING_LEVEL: "DEBUG" };
    const r = await engine.up({ stack: "test-clu", config: { ...config, services }, secrets: secrets() });
    const changed = r.steps
      .filter((s) => s.op !== "same" && s.op !== "read")
      .map((s) => `${s.op} ${s.name}`)
      .sort();
    // the adopt command is replaced create-first (its delete-replaced step has nothing to run); the
    // container delete-first, which for a retainOnDelete resource only forgets the old one
    expect(changed).toEqual(["delete clu-vllm-adopt", "replace clu-vllm-adopt", "replace clu-vllm-container", "update clu-vllm-switch"].sort());
    expect(clu("docker inspect -f '{{.State.Running}} {{.State.Health.Status}}' vllm").trim()).toBe("true healthy");
    expect(clu("docker inspect -f '{{json .Config.Env}}' vllm")).toContain("VLLM_LOGGING_LEVEL=DEBUG");
    // the running predecessor was renamed across the overlay (moby/moby#42351), then stopped by the switch
    expect(r.stdout("clu-vllm-adopt")).toContain("renamed vllm");
    expect(r.stdout("clu-vllm-adopt")).toContain("left and rejoined 1 swarm-scoped network(s) for the rename");
    expect(clu("docker inspect -f '{{.State.Running}} {{.HostConfig.RestartPolicy.Name}} {{index .Config.Labels \"managed-by\"}}' vllm-previous").trim()).toBe(
      "false no dgx-storage",
    );
    expect(clu("docker inspect -f '{{.State.Running}}' memory-service").trim()).toBe("true");
  });
});

describe("faults of the first apply: each leaves every service running on whole data", () => {
  beforeAll(() => {
    stopHosts();
    ({ hosts, key, engine } = startSuite());
    today();
  });

  it("GIVEN a volume with the plan's name but other options THEN a clear error and nothing on the host changed", async () => {
    sark(
      "docker volume rm chroma-persistent && mkdir -p /data/elsewhere && docker volume create --name chroma-persistent --opt type=none --opt device=/data/elsewhere --opt o=bind >/dev/null",
    );
    const before = sark(
      "cat /etc/docker/daemon.json 2>/dev/null; docker ps -a --format '{{.Names}} {{.Status}}' | sed -E 's/Up [^(]*/Up/' | sort; ls /etc/systemd/system /var/lib/dgx-storage 2>&1; true",
    );
    const err = await apply("sark").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyFailed);
    const r = (err as ApplyFailed).result;
    expect(r.step("sark-preflight").status).toBe("error");
    expect(r.step("sark-preflight").error).toContain(
      "volume chroma-persistent exists with driver local and options 'device=/data/elsewhere;o=bind;type=none;'",
    );
    expect(r.step("sark-preflight").error).toContain("nothing was changed");
    // no resource was created or changed (the components themselves are only registrations)
    expect(r.steps.filter((s) => s.status === "ok" && s.op !== "read" && !s.type.startsWith("dgx-storage:")).map((s) => s.name)).toEqual([]);
    expect(
      sark(
        "cat /etc/docker/daemon.json 2>/dev/null; docker ps -a --format '{{.Names}} {{.Status}}' | sed -E 's/Up [^(]*/Up/' | sort; ls /etc/systemd/system /var/lib/dgx-storage 2>&1; true",
      ),
    ).toBe(before);
    // put it right, as the operator would: the next apply goes through
    sark(
      "docker volume rm chroma-persistent && docker volume create --name chroma-persistent --opt type=none --opt device=/data/chroma --opt o=bind >/dev/null",
    );
  });

  it("GIVEN the apply killed during the migration's downtime THEN the service runs, and the next apply resumes and loses nothing", async () => {
    startProbes("sark");
    // killed once the old container has stopped: the migration's downtime has begun
    const r = await engine.tryUp({
      stack: "test-sark",
      config: rehearsalConfig("sark"),
      secrets: secrets(),
      killWhen: async () => (await asRootAsync(hosts, "sark", "docker ps --format '{{.Names}}' | grep -qx 'chromadb\\|chromadb-pre-dgx-storage'")).code !== 0,
    });
    expect(r.killed).toBe(true);
    // whatever the host-side script did after losing its session, a service answers within its health timeout
    sark(`timeout 90 sh -c 'until python3 -c \"import urllib.request; urllib.request.urlopen(\\\"${chromaUrl()}\\\")\" 2>/dev/null; do sleep 1; done'`);
    const again = await apply("sark");
    const lines = stopProbes("sark");
    expect(again.step("sark-chromadb-switch").status).toBe("ok");
    expect(sark("docker inspect -f '{{index .Config.Labels \"managed-by\"}} {{.State.Health.Status}}' chromadb").trim()).toBe("dgx-storage healthy");
    const missing = sark(
      "sqlite3 /data/enhanced/chromadb/chroma.sqlite3 \"ATTACH 'file:/home/maxvamp/chromadb-data/chroma.sqlite3?immutable=1' AS s; SELECT count(*) FROM s.t WHERE id NOT IN (SELECT id FROM main.t)\"",
    ).trim();
    expect(missing).toBe("0");
    expect(downtime(lines, "chromadb")).toBeLessThan(Infinity);
  });

  it("GIVEN the new container never becomes healthy THEN the old one is back under its name, and the next apply succeeds once the cause is gone", async () => {
    // vLLM's stand-in answers 503 on /health while this file exists (STANDIN_UNHEALTHY_IF)
    clu("touch /home/maxvamp/GLM-4.5-Air-AWQ/UNHEALTHY");
    const config = rehearsalConfig("clu");
    const services = structuredClone(config.services) as Record<string, Record<string, unknown>>;
    services.vllm!.env = { STANDIN_UNHEALTHY_IF: "/models/GLM-4.5-Air-AWQ/UNHEALTHY" };
    services.vllm!.waitTimeout = 20;
    const cfg = { ...config, services };
    const err = await engine.up({ stack: "test-clu", config: cfg, secrets: secrets() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyFailed);
    const r = (err as ApplyFailed).result;
    expect(r.step("clu-vllm-switch").status).toBe("error");
    expect(r.step("clu-vllm-switch").error).toContain("did not become healthy within 20 s");
    // the old one: its name, its restart policy, running, answering
    expect(
      clu("docker inspect -f '{{index .Config.Labels \"com.docker.compose.project\"}} {{.HostConfig.RestartPolicy.Name}} {{.State.Running}}' vllm").trim(),
    ).toBe("dgx always true");
    clu(`python3 -c \"import urllib.request; urllib.request.urlopen('${vllmUrl()}')\"`);
    expect(clu("docker inspect -f '{{.State.Running}} {{index .Config.Labels \"managed-by\"}}' vllm-unhealthy").trim()).toBe("false dgx-storage");
    // the compose file is still there: the project was not taken over
    expect(clu("ls /home/maxvamp/dgx")).toContain("docker-compose.yml");
    clu("rm /home/maxvamp/GLM-4.5-Air-AWQ/UNHEALTHY");
    const again = await engine.up({ stack: "test-clu", config: cfg, secrets: secrets() });
    expect(again.step("clu-vllm-switch").status).toBe("ok");
    expect(clu("docker inspect -f '{{index .Config.Labels \"managed-by\"}} {{.State.Health.Status}}' vllm").trim()).toBe("dgx-storage healthy");
    expect(clu("docker inspect -f '{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}' vllm-pre-dgx-storage").trim()).toBe("false no");
  });
});
