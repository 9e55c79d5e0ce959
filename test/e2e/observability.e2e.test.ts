/**
 * Observability on the test hosts: both stacks with an `observability` section (sark runs
 * Prometheus and Alertmanager with short intervals, clu is scraped), applied by the e2e engine
 * (engine.ts). Then, through the real path (textfile -> node_exporter -> Prometheus rule ->
 * Alertmanager -> the webhook receiver on sark): a filesystem filled past 80% fires the usage
 * alert and resolves; a backup success aged past its period fires "backup missed"; node_exporter
 * stopped on clu fires host-down; the storage page rendered by headless Chromium shows both
 * hosts' series; a second apply changes nothing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALERTMANAGER_WEBHOOK_FILE } from "../../components/observability";
import { SCRIPTS_DIR } from "../../components/render/command";
import type { ApplyResult, Engine } from "./engine";
import {
  addOperator,
  installedFiles,
  mustRoot,
  startSuite,
  startWebhookReceiver,
  stopHosts,
  testStackConfig,
  WEBHOOK_RECEIVER_URL,
  type HostName,
  type TestHosts,
} from "./hosts";

const WEBHOOK = `${WEBHOOK_RECEIVER_URL}/alerts/e2e-observability-token`;
const ALERT_MOUNT = "/mnt/alert-test";
const SARK_IP = "172.31.250.10";
const PROM = `http://${SARK_IP}:9090`;
/** Short intervals: the whole alert path within seconds (the stack's defaults are 15 s, 30 s, 5 min). */
const OBSERVABILITY: Record<HostName, Record<string, unknown>> = {
  sark: {
    prometheus: {
      targets: [
        { host: "sark", address: `${SARK_IP}:9100` },
        { host: "clu", address: "172.31.250.11:9100" },
      ],
      scrapeIntervalSeconds: 2,
      evaluationIntervalSeconds: 2,
      hostDownFor: "6s",
      groupWaitSeconds: 1,
      groupIntervalSeconds: 2,
      repeatIntervalMinutes: 60,
      consoleHours: 1,
    },
  },
  clu: {},
};

let hosts: TestHosts;
let key: string;
let engine: Engine;
const rounds: Record<HostName, ApplyResult>[] = [];
const started = Date.now();

const apply = (name: HostName) =>
  engine.up({
    stack: `test-${name}`,
    config: { ...testStackConfig(hosts, name), observability: OBSERVABILITY[name] },
    secrets: { sshPrivateKey: key, ...(name === "sark" ? { alertWebhook: WEBHOOK } : {}) },
  });

async function converge(): Promise<void> {
  const sark = await apply("sark");
  const clu = await apply("clu");
  rounds.push({ sark, clu });
}

interface Notification {
  readonly status: "firing" | "resolved";
  readonly alerts: { status: string; labels: Record<string, string> }[];
}

/** What Alertmanager POSTed to the receiver (its webhook JSON, one POST a line). */
function notifications(): Notification[] {
  const text = mustRoot(hosts, "sark", "cat /var/tmp/received.txt 2>/dev/null || true");
  return text
    .split("\n")
    .filter((l) => l.startsWith("/alerts/e2e-observability-token "))
    .map((l) => JSON.parse(l.slice(l.indexOf(" ") + 1)) as Notification);
}

/** The first alert with these labels and status Alertmanager sent, waiting up to `seconds`. */
async function waitForAlert(
  labels: Record<string, string>,
  status: "firing" | "resolved",
  seconds: number,
): Promise<{ labels: Record<string, string>; after: number }> {
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    for (const n of notifications()) {
      const a = n.alerts.find((x) => x.status === status && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      if (a) return { labels: a.labels, after: (Date.now() - t0) / 1000 };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`no ${status} alert ${JSON.stringify(labels)} within ${seconds} s; received:\n${JSON.stringify(notifications(), null, 1).slice(0, 3000)}`);
}

async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${PROM}/api/v1/query?${new URLSearchParams({ query: q })}`);
  const body = (await r.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  expect(body.status).toBe("success");
  return body.data.result;
}

async function waitForQuery(q: string, ok: (r: Awaited<ReturnType<typeof query>>) => boolean, seconds: number): Promise<Awaited<ReturnType<typeof query>>> {
  const t0 = Date.now();
  let last: Awaited<ReturnType<typeof query>> = [];
  while (Date.now() - t0 < seconds * 1000) {
    try {
      last = await query(q);
      if (ok(last)) return last;
    } catch {
      // Prometheus (re)starting
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`${q}: not as expected within ${seconds} s: ${JSON.stringify(last)}`);
}

const runCheck = (name: HostName) => mustRoot(hosts, name, "systemctl start dgx-storage-alert.service");

beforeAll(() => {
  ({ hosts, key, engine } = startSuite());
  // the stacks log in as the operator (test stacks: host.ssh.user maxvamp)
  addOperator(hosts, "sark");
  addOperator(hosts, "clu");
  mustRoot(
    hosts,
    "sark",
    `set -e; mkdir -p ${ALERT_MOUNT}; truncate -s 64M /var/tmp/alert-test.img; mkfs.ext4 -q -F /var/tmp/alert-test.img; mount -o loop /var/tmp/alert-test.img ${ALERT_MOUNT}`,
  );
  startWebhookReceiver(hosts, "sark");
});

afterAll(() => {
  stopHosts();
  console.log(`observability e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("observability on the test hosts", () => {
  it("round 1: both stacks apply; the config is checked and installed; the webhook URL only in Alertmanager's root-only file", async () => {
    const t0 = Date.now();
    await converge();
    console.log(`round 1: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(rounds[0]!.sark.stdout("sark-observability-prometheus")).toMatch(/Prometheus and Alertmanager configs checked and installed/);
    expect(mustRoot(hosts, "sark", `stat -c '%a %U' ${ALERTMANAGER_WEBHOOK_FILE}; stat -c '%a %U:%G' /etc/prometheus/alertmanager.yml`)).toBe(
      "600 root\n640 root:prometheus\n",
    );
    expect(mustRoot(hosts, "sark", "grep -c e2e-observability-token /etc/prometheus/alertmanager.yml")).toBe("1\n");
    expect(mustRoot(hosts, "sark", "ls /etc/dgx-storage")).not.toMatch(/^alert-webhook$/m);
    expect(mustRoot(hosts, "sark", "journalctl --no-pager -o cat")).not.toContain("e2e-observability-token");
    for (const name of ["sark", "clu"] as const) {
      expect(mustRoot(hosts, name, "systemctl is-active prometheus-node-exporter")).toBe("active\n");
    }
    expect(mustRoot(hosts, "sark", "systemctl is-active prometheus prometheus-alertmanager")).toBe("active\nactive\n");
  });

  it("Prometheus on sark scrapes both hosts' node_exporter, and the checks' textfile series arrive from both", async () => {
    runCheck("sark");
    runCheck("clu");
    const up = await waitForQuery('up{job="node"}', (r) => r.length === 2 && r.every((s) => s.value[1] === "1"), 60);
    expect(up.map((s) => s.metric.host).sort()).toEqual(["clu", "sark"]);
    const used = await waitForQuery("dgx_storage_used_percent", (r) => new Set(r.map((s) => s.metric.host)).size === 2, 60);
    expect(used.map((s) => `${s.metric.host} ${s.metric.mount}`).sort()).toEqual(["clu /", "sark /", `sark ${ALERT_MOUNT}`]);
    const ages = await query("dgx_backup_max_age_seconds");
    expect(new Set(ages.map((s) => s.metric.host))).toEqual(new Set(["sark", "clu"]));
    // the rules loaded are the project's 18
    const rules = (await (await fetch(`${PROM}/api/v1/rules`)).json()) as { data: { groups: { name: string; rules: unknown[] }[] } };
    expect(rules.data.groups.map((g) => `${g.name} ${g.rules.length}`)).toEqual(["dgx-storage 18"]);
  });

  it("a filesystem filled past 80% fires StorageUsageWarning through Alertmanager to the webhook, then resolves", async () => {
    const [used, avail] = mustRoot(hosts, "sark", `df -P -B1 ${ALERT_MOUNT} | tail -1`).trim().split(/\s+/).slice(2, 4).map(Number);
    mustRoot(hosts, "sark", `fallocate -l ${Math.ceil(0.85 * (used! + avail!) - used!)} ${ALERT_MOUNT}/fill && sync`);
    runCheck("sark");
    const fired = await waitForAlert({ alertname: "StorageUsageWarning", host: "sark", mount: ALERT_MOUNT }, "firing", 90);
    expect(fired.labels.severity).toBe("warning");
    console.log(`usage alert at the receiver ${fired.after.toFixed(1)} s after the check`);
    mustRoot(hosts, "sark", `rm -f ${ALERT_MOUNT}/fill && sync`);
    runCheck("sark");
    const resolved = await waitForAlert({ alertname: "StorageUsageWarning", host: "sark", mount: ALERT_MOUNT }, "resolved", 120);
    console.log(`resolved notice ${resolved.after.toFixed(1)} s after the check`);
    // and the storage check itself sent nothing: every POST the receiver got is Alertmanager's JSON
    const raw = mustRoot(hosts, "sark", "cat /var/tmp/received.txt");
    for (const line of raw.trim().split("\n")) expect(JSON.parse(line.slice(line.indexOf(" ") + 1)).receiver).toBe("webhook");
  });

  it("a backup success aged past its period fires BackupMissed (the real record writer, run with an old time)", async () => {
    const maxAge = Number((await query('dgx_backup_max_age_seconds{host="clu",backup_job="create-daily"}'))[0]!.value[1]);
    const start = Math.floor(Date.now() / 1000) - maxAge - 3600;
    // borg-run.py's record, as borg-run.sh calls it, on clu: the status history in a scratch dir,
    // the metrics into node_exporter's textfile directory
    mustRoot(
      hosts,
      "clu",
      `d=$(mktemp -d) && python3 - record "$d" create-daily clu ${start} ${start + 60} ok 0 1000 clu-daily-old '' 4 '' /var/lib/prometheus/node-exporter >/dev/null`,
      fs.readFileSync(path.join(SCRIPTS_DIR, "borg-run.py"), "utf8"),
    );
    expect(mustRoot(hosts, "clu", "cat /var/lib/prometheus/node-exporter/dgx_backup_create_daily.prom")).toContain(
      `dgx_backup_last_success_timestamp_seconds{backup_job="create-daily"} ${start + 60}\n`,
    );
    const fired = await waitForAlert({ alertname: "BackupMissed", host: "clu", backup_job: "create-daily" }, "firing", 90);
    expect(fired.labels.severity).toBe("critical");
  });

  it("a migration still copying 25 h after its first start fires MigrationStuck (migrate-state.py, as migrate.sh calls it)", async () => {
    // on sark, apart from clu's BackupMissed (critical) firing from the case above (the inhibition
    // of warnings by critical alerts needs a mount on both: test/render/observability.test.ts)
    const started = new Date(Date.now() - 25 * 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
    mustRoot(
      hosts,
      "sark",
      `d=$(mktemp -d) && python3 - --metrics-dir /var/lib/prometheus/node-exporter set "$d/e2e-stuck.json" state=copying source=/a destination=/b started_at=${started}`,
      fs.readFileSync(path.join(SCRIPTS_DIR, "migrate-state.py"), "utf8"),
    );
    expect(mustRoot(hosts, "sark", "cat /var/lib/prometheus/node-exporter/dgx_migration_e2e_stuck.prom")).toContain(
      'dgx_migration_state{migration="e2e-stuck",state="copying"} 1\n',
    );
    const fired = await waitForAlert({ alertname: "MigrationStuck", host: "sark", migration: "e2e-stuck" }, "firing", 90);
    expect(fired.labels.severity).toBe("warning");
    mustRoot(hosts, "sark", "rm /var/lib/prometheus/node-exporter/dgx_migration_e2e_stuck.prom");
  });

  it("node_exporter stopped on clu fires HostDown; started again, it resolves", async () => {
    mustRoot(hosts, "clu", "systemctl stop prometheus-node-exporter");
    const fired = await waitForAlert({ alertname: "HostDown", host: "clu" }, "firing", 90);
    expect(fired.labels.severity).toBe("critical");
    console.log(`host-down at the receiver ${fired.after.toFixed(1)} s after node_exporter stopped`);
    mustRoot(hosts, "clu", "systemctl start prometheus-node-exporter");
    await waitForAlert({ alertname: "HostDown", host: "clu" }, "resolved", 90);
  });

  it("the storage page, rendered by headless Chromium, shows both hosts' series in its tables and charts", () => {
    const url = `${PROM}/consoles/dgx-storage.html`;
    const common = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", "--window-size=1000,1600"];
    const dom = spawnSync("chromium", [...common, "--dump-dom", url], { encoding: "utf8", timeout: 120_000 });
    expect(dom.status, dom.stderr).toBe(0);
    expect(dom.stdout).toContain('data-drawn="yes"');
    // the server-side tables: a row per host and mount
    expect(dom.stdout).toMatch(/<td>clu<\/td><td>\/<\/td>/);
    expect(dom.stdout).toMatch(/<td>sark<\/td><td>\/mnt\/alert-test<\/td>/);
    expect(dom.stdout).toMatch(/<td>sark<\/td><td>\/var\/tmp<\/td><td>baseline<\/td>/);
    expect(dom.stdout).toMatch(/<td>sark<\/td><td>\/var\/tmp<\/td><td>probe<\/td>/);
    expect(dom.stdout).toMatch(/<td>clu<\/td><td>create-daily<\/td><td>\d+d /);
    // the charts: one polyline per series, named by host
    const series = [...dom.stdout.matchAll(/<polyline [^>]*data-series="([^"]+)"/g)].map((m) => m[1]);
    expect(series).toEqual(expect.arrayContaining(["sark /", "clu /", `sark ${ALERT_MOUNT}`]));
    const shot = path.join(os.tmpdir(), "dgx-storage-page.png");
    const s = spawnSync("chromium", [...common, `--screenshot=${shot}`, url], { encoding: "utf8", timeout: 120_000 });
    expect(s.status, s.stderr).toBe(0);
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    console.log(`storage page screenshot: ${shot}`);
  });

  it("round 2 changes nothing: no command runs, no installed file changes", async () => {
    const dirs = ["etc/prometheus", "etc/dgx-storage", "etc/default"];
    const before = {
      sark: installedFiles(hosts, "sark", dirs),
      clu: installedFiles(hosts, "clu", [...dirs, "var/lib/prometheus/node-exporter/dgx_static.prom"]),
    };
    await converge();
    for (const name of ["sark", "clu"] as const) {
      expect(rounds[1]![name].steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    }
    expect(installedFiles(hosts, "sark", dirs)).toBe(before.sark);
    expect(installedFiles(hosts, "clu", [...dirs, "var/lib/prometheus/node-exporter/dgx_static.prom"])).toBe(before.clu);
  });
});
