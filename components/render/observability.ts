/**
 * Pure writers of the observability stack: Prometheus's scrape config and alerting rules,
 * Alertmanager's config, the storage console page, and the static textfile metrics (the backup
 * jobs' maximum ages, the plan's targets). No @pulumi import; components/observability.ts sends
 * what these return, observability-config.sh checks it with promtool and amtool on the host
 * before it replaces the live files.
 *
 * Metric names follow https://prometheus.io/docs/practices/naming/ (base units, `_seconds`,
 * `_bytes`, `_timestamp_seconds` for a Unix time as a value). The label `backup_job` names a
 * backup job because `job` is Prometheus's own target label.
 */
import YAML from "yaml";
import { HOST_PATHS } from "./host-paths";
import { MANAGED_HEADER } from "./sysctl";

/** node_exporter's textfile directory in Debian's package (`--collector.textfile.directory` default). */
export const TEXTFILE_DIR = HOST_PATHS.textfile;
/** Debian's prometheus package paths. */
export const PROMETHEUS_YML = "/etc/prometheus/prometheus.yml";
export const RULES_FILE = "/etc/prometheus/rules/dgx-storage.rules.yml";
export const ALERTMANAGER_YML = "/etc/prometheus/alertmanager.yml";
export const CONSOLE_FILE = "/etc/prometheus/consoles/dgx-storage.html";
/** The static metrics each host gets (backup maximum ages, plan targets). */
export const STATIC_METRICS_FILE = `${TEXTFILE_DIR}/dgx_static.prom`;
/**
 * Where Alertmanager listens: loopback only, its HA gossip (9094) off (observability-config.sh
 * writes its ARGS; `--cluster.listen-address=""` disables HA mode, prometheus-alertmanager --help).
 * Prometheus, on the same host, is its only client.
 */
export const ALERTMANAGER_ADDRESS = "127.0.0.1:9093";
export const ALERTMANAGER_CLUSTER_PORT = 9094;
/** Prometheus's web port (Debian's default listen address, :9090): its UI and the storage page. */
export const PROMETHEUS_PORT = 9090;
/** node_exporter's port (Debian's default listen address, :9100). */
export const NODE_EXPORTER_PORT = 9100;
/** The placeholder observability-config.sh replaces with the webhook URL read from its root-only file. */
export const WEBHOOK_PLACEHOLDER = "__DGX_ALERT_WEBHOOK_URL__";

/** One scrape target: a host's node_exporter. */
export interface ScrapeTarget {
  /** The host's name: the `host` label of every series it exports. */
  readonly host: string;
  /** `address:port` of its node_exporter. */
  readonly address: string;
}

/** The thresholds of the rules (the manager's `monitoring` section, or the plan's defaults). */
export interface RuleThresholds {
  readonly usage: { readonly warning: number; readonly critical: number };
  readonly iowait: { readonly warning: number; readonly critical: number };
  /** Warn below this fraction of the fio baseline's random-read IOPS (the plan: 0.5). */
  readonly iopsMinFraction: number;
  readonly temperatureCriticalC: number;
  /** How long a target may fail its scrape before host-down fires. */
  readonly hostDownFor: string;
  /** How long a measurement must stay over its threshold before its alert fires. */
  readonly alertFor: string;
  /** Hours a migration may stay unverified (copying) after its first start before MigrationStuck fires. */
  readonly migrationStuckHours: number;
}

export const DEFAULT_THRESHOLDS: RuleThresholds = {
  usage: { warning: 80, critical: 90 },
  iowait: { warning: 20, critical: 50 },
  iopsMinFraction: 0.5,
  temperatureCriticalC: 70,
  hostDownFor: "2m",
  alertFor: "0s",
  migrationStuckHours: 24,
};

export interface PrometheusSpec {
  readonly targets: readonly ScrapeTarget[];
  readonly scrapeIntervalSeconds: number;
  readonly evaluationIntervalSeconds: number;
}

export interface AlertmanagerSpec {
  /** Whether a webhook receiver is configured (its URL is filled in on the host, never here). */
  readonly webhook: boolean;
  readonly groupWaitSeconds: number;
  readonly groupIntervalSeconds: number;
  readonly repeatIntervalMinutes: number;
}

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: { readonly severity: "critical" | "warning" | "info" };
  readonly annotations: { readonly summary: string };
}

function fail(msg: string): never {
  throw new Error(`observability: ${msg}`);
}

const DURATION = /^\d+[smhd]$/;

/**
 * The alerting rules, one group. Severities as the plan's "Alert Configuration" names them:
 * critical for data at risk (SMART, backup failed or missed, a service container down, a host
 * gone), warning for high use and degraded performance, info for capacity planning.
 */
export function alertRules(t: RuleThresholds, evaluationIntervalSeconds: number): Rule[] {
  const pct = (name: string, w: number, c: number) => {
    if (!(w > 0 && c <= 100 && w <= c)) fail(`${name}: need 0 < warning <= critical <= 100, got ${w} and ${c}`);
  };
  pct("usage", t.usage.warning, t.usage.critical);
  pct("iowait", t.iowait.warning, t.iowait.critical);
  if (!(t.iopsMinFraction > 0 && t.iopsMinFraction < 1)) fail(`iopsMinFraction must be between 0 and 1, got ${t.iopsMinFraction}`);
  if (!(Number.isInteger(t.migrationStuckHours) && t.migrationStuckHours >= 1))
    fail(`migrationStuckHours must be a whole number >= 1, got ${t.migrationStuckHours}`);
  for (const [k, v] of [
    ["hostDownFor", t.hostDownFor],
    ["alertFor", t.alertFor],
  ] as const)
    if (!DURATION.test(v)) fail(`${k} must be a duration such as '2m', got '${v}'`);
  const f = t.alertFor === "0s" ? {} : { for: t.alertFor };
  const rule = (alert: string, severity: Rule["labels"]["severity"], expr: string, summary: string, extra: { for?: string } = f): Rule => ({
    alert,
    expr,
    ...extra,
    labels: { severity },
    annotations: { summary },
  });
  // a textfile metric is as fresh as the job that wrote it; `for` stays short so a test stack's
  // short intervals show the whole path within minutes
  return [
    rule(
      "HostDown",
      "critical",
      `up{job="node"} == 0`,
      "{{ $labels.host }}: node_exporter at {{ $labels.instance }} does not answer (host down, or node_exporter stopped)",
      {
        for: t.hostDownFor,
      },
    ),
    rule(
      "StorageUsageWarning",
      "warning",
      `dgx_storage_used_percent > ${t.usage.warning} <= ${t.usage.critical}`,
      `{{ $labels.host }} {{ $labels.mount }}: {{ $value | printf "%.1f" }}% used, over ${t.usage.warning}%`,
    ),
    rule(
      "StorageUsageCritical",
      "critical",
      `dgx_storage_used_percent > ${t.usage.critical}`,
      `{{ $labels.host }} {{ $labels.mount }}: {{ $value | printf "%.1f" }}% used, over ${t.usage.critical}%`,
    ),
    rule(
      "IOWaitWarning",
      "warning",
      `dgx_storage_iowait_percent > ${t.iowait.warning} <= ${t.iowait.critical}`,
      `{{ $labels.host }}: CPU iowait {{ $value | printf "%.1f" }}%, over ${t.iowait.warning}%`,
    ),
    rule(
      "IOWaitCritical",
      "critical",
      `dgx_storage_iowait_percent > ${t.iowait.critical}`,
      `{{ $labels.host }}: CPU iowait {{ $value | printf "%.1f" }}%, over ${t.iowait.critical}%`,
    ),
    rule(
      "IOPSBelowBaseline",
      "warning",
      `dgx_storage_iops_probe < on(host, dir) (${t.iopsMinFraction} * dgx_storage_iops_baseline)`,
      `{{ $labels.host }} {{ $labels.dir }}: random-read IOPS {{ $value | printf "%.0f" }}, below ${Math.round(t.iopsMinFraction * 100)}% of the fio baseline`,
    ),
    rule(
      "SMARTCritical",
      "critical",
      `smartmon_device_smart_healthy == 0 or nvme_critical_warning_total > 0 or (time() - dgx_smartd_alert_timestamp_seconds) < 86400`,
      "{{ $labels.host }} {{ $labels.device }}: SMART reports a critical condition",
    ),
    rule(
      "DiskTemperatureHigh",
      "critical",
      `smartmon_temperature_celsius_raw_value > ${t.temperatureCriticalC} or nvme_temperature_celsius > ${t.temperatureCriticalC}`,
      `{{ $labels.host }} {{ $labels.device }}: {{ $value }} °C, over ${t.temperatureCriticalC} °C`,
    ),
    rule(
      "StorageCheckFailed",
      "warning",
      `dgx_storage_check_error == 1`,
      "{{ $labels.host }}: the storage check could not measure {{ $labels.what }} of {{ $labels.where }}",
    ),
    rule(
      "BackupFailed",
      "critical",
      `dgx_backup_last_status{status="error"} == 1`,
      "{{ $labels.host }}: backup job {{ $labels.backup_job }} failed (journal tag dgx-backup)",
    ),
    rule(
      "BackupWarning",
      "warning",
      `dgx_backup_last_status{status=~"warning|skipped"} == 1`,
      "{{ $labels.host }}: backup job {{ $labels.backup_job }} ended with a warning or was skipped",
    ),
    rule(
      "BackupMissed",
      "critical",
      `time() - dgx_backup_last_success_timestamp_seconds > on(host, backup_job) dgx_backup_max_age_seconds`,
      "{{ $labels.host }}: backup job {{ $labels.backup_job }} last succeeded {{ $value | humanizeDuration }} ago, longer than its period allows",
    ),
    rule(
      "BackupGrowthAbnormal",
      "warning",
      `dgx_backup_growth_abnormal == 1`,
      "{{ $labels.host }}: backup job {{ $labels.backup_job }} added far more than its recent median",
    ),
    // migrate-state.py's metrics: a run that failed, or hangs, leaves the state at copying (a
    // re-run keeps the first start); verified or complete ends it
    rule(
      "MigrationStuck",
      "warning",
      `(time() - dgx_migration_started_timestamp_seconds) > ${t.migrationStuckHours * 3600} and on(host, migration) dgx_migration_state{state="copying"} == 1`,
      `{{ $labels.host }}: migration {{ $labels.migration }} started {{ $value | humanizeDuration }} ago and is not verified (failed or stuck: journalctl -u dgx-migrate-{{ $labels.migration }}; the next pulumi up resumes it)`,
    ),
    rule("ContainerDown", "critical", `dgx_container_running == 0`, "{{ $labels.host }}: service container {{ $labels.container }} is not running"),
    rule("ContainerUnhealthy", "critical", `dgx_container_unhealthy == 1`, "{{ $labels.host }}: service container {{ $labels.container }} is unhealthy"),
    rule(
      "ContainerRestarting",
      "warning",
      `dgx_container_restarting == 1 or increase(dgx_container_restarts_total[${Math.max(15 * 60, 4 * evaluationIntervalSeconds)}s]) > 0`,
      "{{ $labels.host }}: service container {{ $labels.container }} is restarting",
    ),
    rule(
      "CapacityThresholdNear",
      "info",
      `(dgx_capacity_projected_timestamp_seconds{percent="80"} - time()) < 90 * 86400`,
      "{{ $labels.host }} {{ $labels.mount }}: projected to reach 80% within 90 days",
    ),
  ];
}

/** The rules file (Prometheus's YAML rule format). */
export function renderRules(t: RuleThresholds, evaluationIntervalSeconds: number): string {
  return `${MANAGED_HEADER}\n${YAML.stringify({ groups: [{ name: "dgx-storage", rules: alertRules(t, evaluationIntervalSeconds) }] }, { lineWidth: 0 })}`;
}

const HOST = /^[a-z][a-z0-9-]*$/;
const ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$/;

/** prometheus.yml: the node job over every host, the rules, Alertmanager on loopback. */
export function renderPrometheusYml(p: PrometheusSpec): string {
  if (p.targets.length === 0) fail("at least one scrape target");
  for (const t of p.targets) {
    if (!HOST.test(t.host)) fail(`'${t.host}' is not a host name`);
    if (!ADDRESS.test(t.address)) fail(`'${t.address}' is not address:port`);
  }
  for (const [k, v] of [
    ["scrapeIntervalSeconds", p.scrapeIntervalSeconds],
    ["evaluationIntervalSeconds", p.evaluationIntervalSeconds],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 1 && v <= 3600)) fail(`${k} must be 1..3600, got ${v}`);
  }
  const config = {
    global: { scrape_interval: `${p.scrapeIntervalSeconds}s`, evaluation_interval: `${p.evaluationIntervalSeconds}s` },
    rule_files: [RULES_FILE],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [ALERTMANAGER_ADDRESS] }] }] },
    scrape_configs: [
      {
        job_name: "node",
        static_configs: p.targets.map((t) => ({ targets: [t.address], labels: { host: t.host } })),
      },
      { job_name: "prometheus", static_configs: [{ targets: ["127.0.0.1:9090"], labels: { host: "manager" } }] },
    ],
  };
  return `${MANAGED_HEADER}\n${YAML.stringify(config, { lineWidth: 0 })}`;
}

/**
 * alertmanager.yml: alerts grouped per alert name and host, to the webhook with resolved
 * notices; a critical alert silences the warning of the same name family on the same host and
 * mount. Without a webhook the receiver is empty (alerts visible in Alertmanager's UI only).
 */
export function renderAlertmanagerYml(a: AlertmanagerSpec): string {
  for (const [k, v] of [
    ["groupWaitSeconds", a.groupWaitSeconds],
    ["groupIntervalSeconds", a.groupIntervalSeconds],
    ["repeatIntervalMinutes", a.repeatIntervalMinutes],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 1)) fail(`${k} must be a whole number >= 1, got ${v}`);
  }
  const receiver = a.webhook
    ? // https://prometheus.io/docs/alerting/0.25/configuration/#webhook_config (0.25: no url_file yet)
      { name: "webhook", webhook_configs: [{ url: WEBHOOK_PLACEHOLDER, send_resolved: true }] }
    : { name: "webhook" };
  const config = {
    route: {
      receiver: "webhook",
      group_by: ["alertname", "host"],
      group_wait: `${a.groupWaitSeconds}s`,
      group_interval: `${a.groupIntervalSeconds}s`,
      repeat_interval: `${a.repeatIntervalMinutes}m`,
    },
    receivers: [receiver],
    inhibit_rules: [
      // a critical alert of a mount holds back the warning of that same mount. Both must have a
      // mount: Alertmanager counts a label missing on both sides as equal ("equal", configuration
      // docs, inhibit_rule), which would let any critical alert of a host silence all its other warnings
      { source_matchers: ['severity="critical"', 'mount=~".+"'], target_matchers: ['severity="warning"', 'mount=~".+"'], equal: ["host", "mount"] },
      { source_matchers: ['alertname="HostDown"'], target_matchers: ['alertname!="HostDown"'], equal: ["host"] },
    ],
  };
  return `${MANAGED_HEADER}\n${YAML.stringify(config, { lineWidth: 0 })}`;
}

/** One static series for the textfile. */
export interface StaticSample {
  readonly name: string;
  readonly help: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/**
 * Prometheus's text exposition format (https://prometheus.io/docs/instrumenting/exposition_formats/),
 * every family once with HELP and TYPE gauge, no sample timestamps (node_exporter's textfile
 * collector refuses them).
 */
export function renderTextfile(samples: readonly StaticSample[]): string {
  const families = new Map<string, StaticSample[]>();
  for (const s of samples) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(s.name)) fail(`not a metric name: ${s.name}`);
    if (!Number.isFinite(s.value)) fail(`${s.name}: not a finite value`);
    families.set(s.name, [...(families.get(s.name) ?? []), s]);
  }
  const lines: string[] = [];
  for (const [name, list] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`# HELP ${name} ${list[0]!.help}`, `# TYPE ${name} gauge`);
    for (const s of list) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${labelValue(v)}"`)
        .join(",");
      lines.push(`${name}${labels ? `{${labels}}` : ""} ${s.value}`);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * The storage page: a Prometheus console template (https://prometheus.io/docs/visualization/consoles/).
 * The tables come from the template's instant queries (server side, one row per host and
 * mount, job or path); the charts are SVG drawn by a few lines of plain script from Prometheus's
 * own HTTP API (`/api/v1/query_range`), since Debian's package ships no console graph libraries.
 */
const IOPS_QUERY = 'label_replace(dgx_storage_iops_probe, "series", "probe", "", "") or label_replace(dgx_storage_iops_baseline, "series", "baseline", "", "")';

export function renderConsole(t: RuleThresholds, hours: number): string {
  const charts = [
    {
      id: "usage",
      title: "Used space per mount, % (lines at the warning and critical levels)",
      query: "dgx_storage_used_percent",
      label: ["host", "mount"],
      lines: [t.usage.warning, t.usage.critical],
      max: 100,
    },
    { id: "iops", title: "Random-read IOPS probe against the fio baseline", query: IOPS_QUERY, label: ["host", "dir", "series"], lines: [], max: 0 },
    {
      id: "backup-age",
      title: "Hours since each backup job last succeeded",
      query: "(time() - dgx_backup_last_success_timestamp_seconds) / 3600",
      label: ["host", "backup_job"],
      lines: [],
      max: 0,
    },
  ];
  const table = (title: string, query: string, cols: readonly string[], value: string) =>
    [
      `<h2>${title}</h2>`,
      `<table class="table" id="${cols.join("-")}-${value.replace(/\W+/g, "")}"><tr>${cols.map((c) => `<th>${c}</th>`).join("")}<th>value</th></tr>`,
      `{{ range query "${query.replace(/"/g, '\\"')}" | sortByLabel "host" }}<tr>${cols.map((c) => `<td>{{ .Labels.${c} }}</td>`).join("")}<td>{{ .Value | ${value} }}</td></tr>{{ else }}<tr><td colspan="${cols.length + 1}">no data</td></tr>{{ end }}`,
      `</table>`,
    ].join("\n");
  return [
    `{{/* ${MANAGED_HEADER.replace(/^#\s*/, "")} */}}`,
    `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Storage - dgx-storage</title>`,
    `<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}svg{border:1px solid #ccc;background:#fff}.legend span{margin-right:1em}</style></head><body>`,
    `<h1>Storage</h1>`,
    table("Used space now", "dgx_storage_used_percent", ["host", "mount"], `printf "%.1f%%"`),
    // `or` matches on the labels without the name: a "series" label keeps probe and baseline apart
    table("IOPS probe and baseline", IOPS_QUERY, ["host", "dir", "series"], `printf "%.0f"`),
    table("Backup age (since the last success)", "time() - dgx_backup_last_success_timestamp_seconds", ["host", "backup_job"], "humanizeDuration"),
    table("Scrape targets", 'up{job="node"}', ["host", "instance"], `printf "%.0f"`),
    ...charts.map(
      (c) => `<h2>${c.title}</h2><svg id="chart-${c.id}" width="720" height="220" viewBox="0 0 720 220"></svg><div class="legend" id="legend-${c.id}"></div>`,
    ),
    `<script>`,
    `const CHARTS = ${JSON.stringify(charts)}, HOURS = ${hours};`,
    `const COLORS = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#17becf"];`,
    `async function draw(c) {`,
    `  const end = Date.now() / 1000, start = end - HOURS * 3600, step = Math.max(15, Math.round(HOURS * 3600 / 240));`,
    `  const r = await fetch("/api/v1/query_range?" + new URLSearchParams({ query: c.query, start, end, step }));`,
    `  const series = (await r.json()).data.result;`,
    `  const svg = document.getElementById("chart-" + c.id), legend = document.getElementById("legend-" + c.id), ns = "http://www.w3.org/2000/svg";`,
    `  let max = c.max || Math.max(1, ...series.flatMap((s) => s.values.map((v) => Number(v[1])))) * 1.1;`,
    `  const x = (t) => 10 + (700 * (t - start)) / (end - start), y = (v) => 210 - (200 * v) / max;`,
    `  const txt = (x0, y0, t) => { const e = document.createElementNS(ns, "text"); e.setAttribute("x", x0); e.setAttribute("y", y0); e.setAttribute("font-size", "11"); e.textContent = t; svg.appendChild(e); };
  txt(14, 22, String(Math.round(max))); txt(14, 206, "0"); txt(600, 206, "last " + HOURS + " h");
  for (const l of c.lines) { const e = document.createElementNS(ns, "line"); Object.entries({ x1: 10, x2: 710, y1: y(l), y2: y(l), stroke: l === c.lines[c.lines.length - 1] ? "#d62728" : "#ff7f0e", "stroke-dasharray": "4" }).forEach(([k, v]) => e.setAttribute(k, v)); svg.appendChild(e); }`,
    `  series.forEach((s, i) => {`,
    `    const name = c.label.map((k) => s.metric[k]).filter(Boolean).join(" ");`,
    `    const p = document.createElementNS(ns, "polyline");`,
    `    p.setAttribute("points", s.values.map((v) => x(v[0]).toFixed(1) + "," + y(Number(v[1])).toFixed(1)).join(" "));`,
    `    p.setAttribute("fill", "none"); p.setAttribute("stroke", COLORS[i % COLORS.length]); p.setAttribute("stroke-width", "2"); p.setAttribute("data-series", name);`,
    `    svg.appendChild(p);`,
    `    const l = document.createElement("span"); l.style.color = COLORS[i % COLORS.length]; l.className = "series"; l.textContent = name; legend.appendChild(l);`,
    `  });`,
    `  if (series.length === 0) legend.textContent = "no data";`,
    `}`,
    `Promise.all(CHARTS.map(draw)).then(() => document.body.setAttribute("data-drawn", "yes"), (e) => document.body.setAttribute("data-drawn", "error: " + e));`,
    `</script></body></html>`,
    "",
  ].join("\n");
}
