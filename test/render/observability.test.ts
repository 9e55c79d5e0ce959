/**
 * Every alerting rule under `promtool test rules` (https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/):
 * each fires at its threshold with its severity and labels, stays silent below it. And the
 * rendered prometheus.yml, rules and alertmanager.yml pass `promtool check` and
 * `amtool check-config`, the checks observability-config.sh runs on the host.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import YAML from "yaml";
import {
  DEFAULT_THRESHOLDS,
  renderAlertmanagerYml,
  renderConsole,
  renderPrometheusYml,
  renderRules,
  WEBHOOK_PLACEHOLDER,
  type RuleThresholds,
} from "../../components/render/observability";
import { describeWith } from "../tools";

interface Series {
  readonly series: string;
  readonly values: string;
}
interface Expected {
  readonly labels: Record<string, string>;
  readonly summary: string;
}
interface Case {
  readonly alert: string;
  /** The series' sample interval and the rules' evaluation interval. @default "1m" */
  readonly interval?: string;
  readonly series: readonly Series[];
  /** eval time -> the alerts expected then ([] = silent). */
  readonly at: readonly (readonly [string, readonly Expected[]])[];
}

function promtoolTest(rules: string, cases: readonly Case[]): { code: number; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-rules-"));
  try {
    fs.writeFileSync(path.join(dir, "rules.yml"), rules);
    const tests = cases.map((c) => ({
      interval: c.interval ?? "1m",
      input_series: c.series,
      alert_rule_test: c.at.map(([t, alerts]) => ({
        eval_time: t,
        alertname: c.alert,
        exp_alerts: alerts.map((a) => ({ exp_labels: a.labels, exp_annotations: { summary: a.summary } })),
      })),
    }));
    fs.writeFileSync(path.join(dir, "test.yml"), YAML.stringify({ rule_files: ["rules.yml"], evaluation_interval: cases[0]?.interval ?? "1m", tests }));
    const r = spawnSync("promtool", ["test", "rules", "test.yml"], { cwd: dir, encoding: "utf8" });
    return { code: r.status ?? -1, out: r.stdout + r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const T: RuleThresholds = { ...DEFAULT_THRESHOLDS, hostDownFor: "2m" };
const RULES = renderRules(T, 15);

function check(c: Case): void {
  const r = promtoolTest(RULES, [c]);
  expect(r.out).toContain("SUCCESS");
  expect(r.code, r.out).toBe(0);
}

describeWith({ tools: ["promtool"] }, "alerting rules under promtool test rules", () => {
  it("a wrong expectation fails (the harness can fail): HostDown expected while the host is up", () => {
    const r = promtoolTest(RULES, [
      {
        alert: "HostDown",
        series: [{ series: 'up{job="node",host="clu",instance="clu:9100"}', values: "1x10" }],
        at: [["5m", [{ labels: { severity: "critical" }, summary: "x" }]]],
      },
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("FAILED");
  });

  it("HostDown: critical after the scrape failed for 2m, not before, not for a host that answers", () => {
    check({
      alert: "HostDown",
      series: [
        { series: 'up{job="node",host="clu",instance="clu:9100"}', values: "1 0 0 0 0 0" },
        { series: 'up{job="node",host="sark",instance="sark:9100"}', values: "1x5" },
      ],
      at: [
        ["2m", []],
        [
          "4m",
          [
            {
              labels: { severity: "critical", job: "node", host: "clu", instance: "clu:9100" },
              summary: "clu: node_exporter at clu:9100 does not answer (host down, or node_exporter stopped)",
            },
          ],
        ],
      ],
    });
  });

  it("usage: silent at 80%, warning above 80% up to 90%, critical (alone) above 90%", () => {
    const s = (mount: string, v: number) => ({ series: `dgx_storage_used_percent{host="sark",mount="${mount}"}`, values: `${v}x3` });
    const series = [s("/a", 79.9), s("/b", 80), s("/c", 85.25), s("/d", 90), s("/e", 95)];
    const w = (mount: string, v: string) => ({ labels: { severity: "warning", host: "sark", mount }, summary: `sark ${mount}: ${v}% used, over 80%` });
    check({ alert: "StorageUsageWarning", series, at: [["1m", [w("/c", "85.2"), w("/d", "90.0")]]] });
    check({
      alert: "StorageUsageCritical",
      series,
      at: [["1m", [{ labels: { severity: "critical", host: "sark", mount: "/e" }, summary: "sark /e: 95.0% used, over 90%" }]]],
    });
  });

  it("iowait: warning above 20%, critical above 50%, silent at 20%", () => {
    const series = [
      { series: 'dgx_storage_iowait_percent{host="sark"}', values: "20 25 60" },
      { series: 'dgx_storage_iowait_percent{host="clu"}', values: "1 1 1" },
    ];
    check({
      alert: "IOWaitWarning",
      series,
      at: [
        ["0m", []],
        ["1m", [{ labels: { severity: "warning", host: "sark" }, summary: "sark: CPU iowait 25.0%, over 20%" }]],
        ["2m", []],
      ],
    });
    check({
      alert: "IOWaitCritical",
      series,
      at: [
        ["1m", []],
        ["2m", [{ labels: { severity: "critical", host: "sark" }, summary: "sark: CPU iowait 60.0%, over 50%" }]],
      ],
    });
  });

  it("IOPS: warning below 50% of the baseline, silent at 60%", () => {
    check({
      alert: "IOPSBelowBaseline",
      series: [
        { series: 'dgx_storage_iops_baseline{host="sark",dir="/data"}', values: "1000x3" },
        { series: 'dgx_storage_iops_probe{host="sark",dir="/data"}', values: "600 499" },
      ],
      at: [
        ["0m", []],
        ["1m", [{ labels: { severity: "warning", host: "sark", dir: "/data" }, summary: "sark /data: random-read IOPS 499, below 50% of the fio baseline" }]],
      ],
    });
  });

  it("SMART: critical on a failed health, an NVMe critical warning, or a smartd report of the last day", () => {
    check({
      alert: "SMARTCritical",
      series: [
        { series: 'smartmon_device_smart_healthy{host="sark",device="/dev/sda"}', values: "1 0" },
        { series: 'smartmon_device_smart_healthy{host="sark",device="/dev/sdb"}', values: "1 1" },
        { series: 'nvme_critical_warning_total{host="clu",device="nvme0"}', values: "0 1" },
      ],
      at: [
        ["0m", []],
        [
          "1m",
          [
            { labels: { severity: "critical", host: "sark", device: "/dev/sda" }, summary: "sark /dev/sda: SMART reports a critical condition" },
            { labels: { severity: "critical", host: "clu", device: "nvme0" }, summary: "clu nvme0: SMART reports a critical condition" },
          ],
        ],
      ],
    });
    check({
      alert: "SMARTCritical",
      // smartd's hook wrote the time of its report: 0 s; promtool's clock starts at 0
      series: [{ series: 'dgx_smartd_alert_timestamp_seconds{host="clu",device="/dev/nvme1n1"}', values: "0x1500" }],
      at: [
        ["1m", [{ labels: { severity: "critical", host: "clu", device: "/dev/nvme1n1" }, summary: "clu /dev/nvme1n1: SMART reports a critical condition" }]],
        ["1441m", []],
      ],
    });
  });

  it("temperature: critical above 70 °C, silent at 70", () => {
    check({
      alert: "DiskTemperatureHigh",
      series: [
        { series: 'nvme_temperature_celsius{host="clu",device="nvme0"}', values: "70 71" },
        { series: 'smartmon_temperature_celsius_raw_value{host="sark",device="/dev/sda",smart_id="194"}', values: "40 40" },
      ],
      at: [
        ["0m", []],
        ["1m", [{ labels: { severity: "critical", host: "clu", device: "nvme0" }, summary: "clu nvme0: 71 °C, over 70 °C" }]],
      ],
    });
  });

  it("backup failed (critical) and warning or skipped (warning), silent after a success", () => {
    const series = [
      { series: 'dgx_backup_last_status{host="sark",backup_job="create-daily",status="error"}', values: "0 1" },
      { series: 'dgx_backup_last_status{host="sark",backup_job="create-daily",status="ok"}', values: "1 0" },
      { series: 'dgx_backup_last_status{host="clu",backup_job="check",status="skipped"}', values: "0 1" },
    ];
    check({
      alert: "BackupFailed",
      series,
      at: [
        ["0m", []],
        [
          "1m",
          [
            {
              labels: { severity: "critical", host: "sark", backup_job: "create-daily", status: "error" },
              summary: "sark: backup job create-daily failed (journal tag dgx-backup)",
            },
          ],
        ],
      ],
    });
    check({
      alert: "BackupWarning",
      series,
      at: [
        ["0m", []],
        [
          "1m",
          [
            {
              labels: { severity: "warning", host: "clu", backup_job: "check", status: "skipped" },
              summary: "clu: backup job check ended with a warning or was skipped",
            },
          ],
        ],
      ],
    });
  });

  it("backup missed: critical once the last success is older than the job's maximum age, silent before", () => {
    check({
      alert: "BackupMissed",
      series: [
        { series: 'dgx_backup_max_age_seconds{host="sark",backup_job="create-hourly"}', values: "10800x300" },
        { series: 'dgx_backup_last_success_timestamp_seconds{host="sark",backup_job="create-hourly"}', values: "0x300" },
        { series: 'dgx_backup_max_age_seconds{host="sark",backup_job="create-daily"}', values: "129600x300" },
        { series: 'dgx_backup_last_success_timestamp_seconds{host="sark",backup_job="create-daily"}', values: "0x300" },
      ],
      at: [
        ["180m", []],
        [
          "181m",
          [
            {
              labels: { severity: "critical", host: "sark", backup_job: "create-hourly" },
              summary: "sark: backup job create-hourly last succeeded 3h 1m 0s ago, longer than its period allows",
            },
          ],
        ],
      ],
    });
  });

  it("the cloud copy and drill (cloud-copy-<target>, cloud-drill-<target>): failed fires BackupFailed, missed fires BackupMissed at the weekly maximum age; a fresh ok target stays silent", () => {
    const status = (job: string, st: string, values: string) => ({ series: `dgx_backup_last_status{host="sark",backup_job="${job}",status="${st}"}`, values });
    const failed = (job: string) => ({
      labels: { severity: "critical", host: "sark", backup_job: job, status: "error" },
      summary: `sark: backup job ${job} failed (journal tag dgx-backup)`,
    });
    check({
      alert: "BackupFailed",
      series: [
        status("cloud-copy-s3-main", "ok", "1 0 0"),
        status("cloud-copy-s3-main", "error", "0 1 1"),
        status("cloud-drill-s3-main", "ok", "1 1 0"),
        status("cloud-drill-s3-main", "error", "0 0 1"),
        status("cloud-copy-az-main", "ok", "1 1 1"),
        status("cloud-copy-az-main", "error", "0 0 0"),
        status("cloud-drill-az-main", "ok", "1 1 1"),
        status("cloud-drill-az-main", "error", "0 0 0"),
      ],
      at: [
        ["0m", []],
        ["1m", [failed("cloud-copy-s3-main")]],
        ["2m", [failed("cloud-copy-s3-main"), failed("cloud-drill-s3-main")]],
      ],
    });
    // the maximum ages the static textfile gives a weekly copy and a monthly drill (render/backup.ts
    // maxAgeSeconds: the period and half a period); s3-main last succeeded at 0, az-main succeeds
    // every hour. Hourly samples and evaluations: ten days of them in a second.
    const week = 7 * 86400 + 3.5 * 86400;
    const month = 31 * 86400 + 15.5 * 86400;
    const steps = week / 3600 + 2;
    check({
      alert: "BackupMissed",
      interval: "1h",
      series: [
        { series: 'dgx_backup_max_age_seconds{host="sark",backup_job="cloud-copy-s3-main"}', values: `${week}x${steps}` },
        { series: 'dgx_backup_last_success_timestamp_seconds{host="sark",backup_job="cloud-copy-s3-main"}', values: `0x${steps}` },
        { series: 'dgx_backup_max_age_seconds{host="sark",backup_job="cloud-drill-s3-main"}', values: `${month}x${steps}` },
        { series: 'dgx_backup_last_success_timestamp_seconds{host="sark",backup_job="cloud-drill-s3-main"}', values: `0x${steps}` },
        { series: 'dgx_backup_max_age_seconds{host="sark",backup_job="cloud-copy-az-main"}', values: `${week}x${steps}` },
        { series: 'dgx_backup_last_success_timestamp_seconds{host="sark",backup_job="cloud-copy-az-main"}', values: `0+3600x${steps}` },
      ],
      at: [
        [`${week / 3600}h`, []],
        [
          `${week / 3600 + 1}h`,
          [
            {
              labels: { severity: "critical", host: "sark", backup_job: "cloud-copy-s3-main" },
              summary: "sark: backup job cloud-copy-s3-main last succeeded 10d 13h 0m 0s ago, longer than its period allows",
            },
          ],
        ],
      ],
    });
  });

  it("abnormal backup growth: warning", () => {
    check({
      alert: "BackupGrowthAbnormal",
      series: [{ series: 'dgx_backup_growth_abnormal{host="clu",backup_job="create-daily"}', values: "0 1" }],
      at: [
        ["0m", []],
        [
          "1m",
          [
            {
              labels: { severity: "warning", host: "clu", backup_job: "create-daily" },
              summary: "clu: backup job create-daily added far more than its recent median",
            },
          ],
        ],
      ],
    });
  });

  it("migration stuck: warning once a migration still copying started more than 24 h ago; silent before, once verified, or when it started recently", () => {
    const steps = 24 * 60 + 5;
    const mig = (name: string, started: string, copying: string, verified: string) => [
      { series: `dgx_migration_started_timestamp_seconds{host="clu",migration="${name}"}`, values: started },
      { series: `dgx_migration_state{host="clu",migration="${name}",state="copying"}`, values: copying },
      { series: `dgx_migration_state{host="clu",migration="${name}",state="verified"}`, values: verified },
      { series: `dgx_migration_state{host="clu",migration="${name}",state="complete"}`, values: `0x${steps}` },
    ];
    check({
      alert: "MigrationStuck",
      series: [
        // started at 0, still copying (a failed run, re-run or not, keeps its first start)
        ...mig("chroma", `0x${steps}`, `1x${steps}`, `0x${steps}`),
        // started at 0, verified after 23 h
        ...mig("vllm", `0x${steps}`, `1x${23 * 60} 0x${steps - 23 * 60 - 1}`, `0x${23 * 60} 1x${steps - 23 * 60 - 1}`),
        // started 12 h after the others
        ...mig("ollama", `43200x${steps}`, `1x${steps}`, `0x${steps}`),
      ],
      at: [
        ["1440m", []],
        [
          "1441m",
          [
            {
              labels: { severity: "warning", host: "clu", migration: "chroma" },
              summary:
                "clu: migration chroma started 1d 0h 1m 0s ago and is not verified (failed or stuck: journalctl -u dgx-migrate-chroma; the next pulumi up resumes it)",
            },
          ],
        ],
      ],
    });
  });

  it("containers: not running and unhealthy are critical, restarting (now or a restart within 15 min) a warning", () => {
    const series = [
      { series: 'dgx_container_running{host="sark",container="chromadb"}', values: "1 0 1 1" },
      { series: 'dgx_container_unhealthy{host="sark",container="chromadb"}', values: "0 0 1 0" },
      { series: 'dgx_container_restarting{host="clu",container="vllm"}', values: "0 1 0 0" },
      { series: 'dgx_container_restarts_total{host="clu",container="vllm"}', values: "3 3 3 3" },
    ];
    const c = (summary: string) => ({ labels: { severity: "critical", host: "sark", container: "chromadb" }, summary });
    check({
      alert: "ContainerDown",
      series,
      at: [
        ["0m", []],
        ["1m", [c("sark: service container chromadb is not running")]],
        ["2m", []],
      ],
    });
    check({
      alert: "ContainerUnhealthy",
      series,
      at: [
        ["1m", []],
        ["2m", [c("sark: service container chromadb is unhealthy")]],
      ],
    });
    check({
      alert: "ContainerRestarting",
      series,
      at: [
        ["0m", []],
        ["1m", [{ labels: { severity: "warning", host: "clu", container: "vllm" }, summary: "clu: service container vllm is restarting" }]],
        ["3m", []],
      ],
    });
    check({
      alert: "ContainerRestarting",
      series: [{ series: 'dgx_container_restarts_total{host="clu",container="vllm"}', values: "3 3 4 4" }],
      at: [
        ["1m", []],
        ["3m", [{ labels: { severity: "warning", host: "clu", container: "vllm" }, summary: "clu: service container vllm is restarting" }]],
      ],
    });
  });

  it("the storage check's own failures: warning", () => {
    check({
      alert: "StorageCheckFailed",
      series: [{ series: 'dgx_storage_check_error{host="sark",what="usage",where="/mnt/x"}', values: "1" }],
      at: [
        [
          "0m",
          [
            {
              labels: { severity: "warning", host: "sark", what: "usage", where: "/mnt/x" },
              summary: "sark: the storage check could not measure usage of /mnt/x",
            },
          ],
        ],
      ],
    });
  });

  it("capacity: info when 80% is projected within 90 days, silent when later", () => {
    check({
      alert: "CapacityThresholdNear",
      series: [
        { series: 'dgx_capacity_projected_timestamp_seconds{host="sark",mount="/data",percent="80"}', values: `${89 * 86400}` },
        { series: 'dgx_capacity_projected_timestamp_seconds{host="clu",mount="/data",percent="80"}', values: `${91 * 86400}` },
        { series: 'dgx_capacity_projected_timestamp_seconds{host="clu",mount="/data",percent="60"}', values: `${1 * 86400}` },
      ],
      at: [
        ["0m", [{ labels: { severity: "info", host: "sark", mount: "/data", percent: "80" }, summary: "sark /data: projected to reach 80% within 90 days" }]],
      ],
    });
  });

  it("every rule is covered by a case above and has a severity of the plan's three", () => {
    const rules = YAML.parse(RULES).groups[0].rules as { alert: string; labels: { severity: string } }[];
    const src = fs.readFileSync(__filename, "utf8");
    for (const r of rules) {
      expect(src, r.alert).toContain(`alert: "${r.alert}"`);
      expect(["critical", "warning", "info"]).toContain(r.labels.severity);
    }
    expect(rules.map((r) => r.alert)).toHaveLength(18);
  });

  it("thresholds come from the config: migrationStuckHours 2 fires MigrationStuck after two hours", () => {
    const r = promtoolTest(renderRules({ ...T, migrationStuckHours: 2 }, 15), [
      {
        alert: "MigrationStuck",
        series: [
          { series: 'dgx_migration_started_timestamp_seconds{host="sark",migration="m"}', values: "0x130" },
          { series: 'dgx_migration_state{host="sark",migration="m",state="copying"}', values: "1x130" },
        ],
        at: [
          ["120m", []],
          [
            "121m",
            [
              {
                labels: { severity: "warning", host: "sark", migration: "m" },
                summary:
                  "sark: migration m started 2h 1m 0s ago and is not verified (failed or stuck: journalctl -u dgx-migrate-m; the next pulumi up resumes it)",
              },
            ],
          ],
        ],
      },
    ]);
    expect(r.code, r.out).toBe(0);
  });

  it("thresholds come from the config: usage 70/85 moves both alerts", () => {
    const rules = renderRules({ ...T, usage: { warning: 70, critical: 85 } }, 15);
    const r = promtoolTest(rules, [
      {
        alert: "StorageUsageCritical",
        series: [{ series: 'dgx_storage_used_percent{host="sark",mount="/a"}', values: "86" }],
        at: [["0m", [{ labels: { severity: "critical", host: "sark", mount: "/a" }, summary: "sark /a: 86.0% used, over 85%" }]]],
      },
    ]);
    expect(r.code, r.out).toBe(0);
  });
});

describeWith({ tools: ["promtool", "amtool", "prometheus-alertmanager"] }, "rendered configs pass promtool check and amtool check-config", () => {
  const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), "dgx-prom-"));
  it("prometheus.yml with its rules file: promtool check config (which also checks the rules)", () => {
    const d = dir();
    const yml = renderPrometheusYml({
      targets: [
        { host: "sark", address: "192.168.68.70:9100" },
        { host: "clu", address: "192.168.68.71:9100" },
      ],
      scrapeIntervalSeconds: 15,
      evaluationIntervalSeconds: 15,
    });
    fs.writeFileSync(path.join(d, "prometheus.yml"), yml.replace("/etc/prometheus/rules/dgx-storage.rules.yml", path.join(d, "rules.yml")));
    fs.writeFileSync(path.join(d, "rules.yml"), RULES);
    const r = spawnSync("promtool", ["check", "config", path.join(d, "prometheus.yml")], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("SUCCESS: 18 rules found");
    const bad = spawnSync("promtool", ["check", "rules", "/dev/stdin"], {
      input: RULES.replace("dgx_storage_used_percent >", "dgx_storage_used_percent >>"),
      encoding: "utf8",
    });
    expect(bad.status).toBe(1);
    fs.rmSync(d, { recursive: true });
  });

  it("alertmanager.yml with a webhook URL in place of the placeholder, and without a webhook: amtool check-config", () => {
    const d = dir();
    for (const [name, text] of [
      [
        "with.yml",
        renderAlertmanagerYml({ webhook: true, groupWaitSeconds: 30, groupIntervalSeconds: 300, repeatIntervalMinutes: 240 }).replace(
          WEBHOOK_PLACEHOLDER,
          JSON.stringify("https://ntfy.example/topic"),
        ),
      ],
      ["without.yml", renderAlertmanagerYml({ webhook: false, groupWaitSeconds: 30, groupIntervalSeconds: 300, repeatIntervalMinutes: 240 })],
    ] as const) {
      fs.writeFileSync(path.join(d, name), text);
      const r = spawnSync("amtool", ["check-config", path.join(d, name)], { encoding: "utf8" });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    const parsed = YAML.parse(fs.readFileSync(path.join(d, "with.yml"), "utf8"));
    expect(parsed.receivers).toEqual([{ name: "webhook", webhook_configs: [{ url: "https://ntfy.example/topic", send_resolved: true }] }]);
    expect(parsed.route.group_by).toEqual(["alertname", "host"]);
    fs.rmSync(d, { recursive: true });
  });

  it("Alertmanager itself (on loopback): a critical alert holds back the warning of its own mount, and no warning without a mount", async () => {
    const d = dir();
    fs.writeFileSync(
      path.join(d, "am.yml"),
      renderAlertmanagerYml({ webhook: false, groupWaitSeconds: 30, groupIntervalSeconds: 300, repeatIntervalMinutes: 240 }),
    );
    const port = 19093 + Math.floor(Math.random() * 500);
    const am = spawn(
      "prometheus-alertmanager",
      [`--config.file=${path.join(d, "am.yml")}`, `--storage.path=${d}`, `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address="],
      { stdio: "ignore" },
    );
    try {
      const base = `http://127.0.0.1:${port}/api/v2`;
      const deadline = Date.now() + 30_000;
      while (
        !(await fetch(`${base}/status`).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) throw new Error("alertmanager did not start");
        await new Promise((r) => setTimeout(r, 200));
      }
      const alert = (labels: Record<string, string>) => ({ labels: { host: "clu", ...labels }, startsAt: new Date().toISOString() });
      const posted = await fetch(`${base}/alerts`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify([
          alert({ alertname: "BackupMissed", severity: "critical", backup_job: "create-daily" }),
          alert({ alertname: "MigrationStuck", severity: "warning", migration: "chroma" }),
          alert({ alertname: "StorageUsageCritical", severity: "critical", mount: "/a" }),
          alert({ alertname: "StorageUsageHigh", severity: "warning", mount: "/a" }),
          alert({ alertname: "StorageUsageHigh", severity: "warning", mount: "/b" }),
        ]),
      });
      expect(posted.status).toBe(200);
      const inhibited = async () => {
        const alerts = (await (await fetch(`${base}/alerts`)).json()) as { labels: Record<string, string>; status: { inhibitedBy: string[] } }[];
        return Object.fromEntries(alerts.map((a) => [`${a.labels.alertname} ${a.labels.mount ?? "-"}`, a.status.inhibitedBy.length > 0]));
      };
      expect(await inhibited()).toEqual({
        "BackupMissed -": false,
        "MigrationStuck -": false,
        "StorageUsageCritical /a": false,
        "StorageUsageHigh /a": true,
        "StorageUsageHigh /b": false,
      });
    } finally {
      const exited = new Promise((r) => am.once("exit", r));
      am.kill();
      await exited;
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it("the console page parses as a Go template for Prometheus (promtool has no console check: the e2e renders it)", () => {
    const html = renderConsole(T, 6);
    expect(html).toContain('{{ range query "dgx_storage_used_percent" | sortByLabel "host" }}');
    expect(html.match(/{{/g)!.length).toBe(html.match(/}}/g)!.length);
  });
});
