/**
 * The monitoring unit set of a host (plan phases 2.2 and 5.2): the storage-alert check on a
 * systemd timer, its config file, the script, the hook smartd calls, and util-linux's weekly
 * fstrim.timer. install-units.sh installs it (`install-units.sh apply monitoring '<manifest>'`).
 */
import { bundledScript } from "./command";
import { HOST_PATHS } from "./host-paths";
import { renderUnit, type UnitSet } from "./systemd";

export const MONITORING_SET = "monitoring";
export const LIB_DIR = HOST_PATHS.lib;
export const STORAGE_ALERT_SCRIPT = `${LIB_DIR}/storage-alert.sh`;
/** What smartd's `-M exec` runs: storage-alert.sh in its smartd mode (smartd passes no arguments). */
export const SMARTD_ALERT_HOOK = `${LIB_DIR}/smartd-alert`;
export const STORAGE_ALERT_CONFIG = `${HOST_PATHS.etc}/storage-alert.json`;
/** Where the webhook URL lives (one line, mode 0600); written by the component from a secret, not part of this set. */
export const DEFAULT_WEBHOOK_FILE = `${HOST_PATHS.etc}/alert-webhook`;
export const ALERT_SERVICE = "dgx-storage-alert.service";
export const ALERT_TIMER = "dgx-storage-alert.timer";

/** A data path whose random-read IOPS is compared with its fio baseline. */
export interface IopsTarget {
  /** The data path fio measured (the probe's small test file goes here). */
  readonly dir: string;
  /** The summary fio-baseline.sh wrote for it (its randread-4k-qd32 IOPS is the baseline). */
  readonly baselineFile: string;
}

export interface MonitoringPlan {
  /** Host name, in every alert. */
  readonly host: string;
  /** Data mount points (or directories: their filesystem is checked) for the usage alert. */
  readonly mounts: readonly string[];
  /** @default { warningPercent: 80, criticalPercent: 90 } (the plan's 80%, and 90% as its last expansion threshold) */
  readonly usage?: { readonly warningPercent: number; readonly criticalPercent: number };
  /**
   * CPU iowait over `sampleSeconds` (iostat -c). The plan gives no number for it; its one-liner
   * says 80, which CPU iowait on a many-core DGX never reaches.
   * @default { warningPercent: 20, criticalPercent: 50, sampleSeconds: 5 }
   */
  readonly iowait?: { readonly warningPercent: number; readonly criticalPercent: number; readonly sampleSeconds: number };
  /**
   * IOPS below `minFraction` of the baseline (the plan: 50%). A short fio probe (4k random read,
   * QD32, `probeSeconds` on a `probeSizeMiB` file kept in the directory) runs at most every
   * `everyMinutes`; idle traffic says nothing about what the disk can do.
   * @default { targets: [], minFraction: 0.5, probeSeconds: 5, probeSizeMiB: 256, everyMinutes: 60 }
   */
  readonly iops?: {
    readonly targets: readonly IopsTarget[];
    readonly minFraction?: number;
    readonly probeSeconds?: number;
    readonly probeSizeMiB?: number;
    readonly everyMinutes?: number;
  };
  /** Service container names: unhealthy, restarting, exited or missing is an alert. @default [] */
  readonly containers?: readonly string[];
  /** Minutes between checks. @default 5 */
  readonly intervalMinutes?: number;
  /** A persisting alert is sent to the webhook again after this many minutes (the journal gets every run). @default 60 */
  readonly repeatMinutes?: number;
  /**
   * File holding the webhook URL; no file = journal only; `null`: never POST (the alerts go
   * through the textfile metrics, Prometheus's rules and Alertmanager).
   * @default DEFAULT_WEBHOOK_FILE (under HOST_PATHS.etc)
   */
  readonly webhookFile?: string | null;
  /** node_exporter's textfile directory: every check writes its measurements there (dgx_storage.prom). Absent: no metrics. */
  readonly textfileDir?: string;
  /** Enable util-linux's weekly fstrim.timer. @default true */
  readonly fstrimTimer?: boolean;
}

/** The JSON storage-alert.sh reads (its `check` and `smartd` modes). */
export interface StorageAlertConfig {
  readonly host: string;
  readonly mounts: readonly string[];
  readonly usage: { readonly warning: number; readonly critical: number };
  readonly iowait: { readonly warning: number; readonly critical: number; readonly sampleSeconds: number };
  readonly iops: {
    readonly targets: readonly IopsTarget[];
    readonly minFraction: number;
    readonly probeSeconds: number;
    readonly probeSizeMiB: number;
    readonly everyMinutes: number;
  };
  readonly containers: readonly string[];
  readonly repeatMinutes: number;
  readonly webhookFile: string | null;
  readonly textfileDir?: string;
}

const ABS = /^\/[A-Za-z0-9_./@+-]*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function fail(msg: string): never {
  throw new Error(`monitoring: ${msg}`);
}

/** The checked, defaulted config. Throws on a value the script could not use. */
export function storageAlertConfig(plan: MonitoringPlan): StorageAlertConfig {
  const usage = plan.usage ?? { warningPercent: 80, criticalPercent: 90 };
  const iowait = plan.iowait ?? { warningPercent: 20, criticalPercent: 50, sampleSeconds: 5 };
  const iops = plan.iops ?? { targets: [] };
  for (const m of plan.mounts) if (!ABS.test(m)) fail(`mount '${m}' is not an absolute path`);
  for (const t of iops.targets) {
    if (!ABS.test(t.dir)) fail(`iops dir '${t.dir}' is not an absolute path`);
    if (!ABS.test(t.baselineFile)) fail(`baseline file '${t.baselineFile}' is not an absolute path`);
  }
  for (const c of plan.containers ?? []) if (!NAME.test(c)) fail(`'${c}' is not a container name`);
  const pct = (name: string, w: number, c: number) => {
    if (!(w > 0 && w <= 100 && c > 0 && c <= 100 && w <= c)) fail(`${name}: need 0 < warning <= critical <= 100, got ${w} and ${c}`);
  };
  pct("usage", usage.warningPercent, usage.criticalPercent);
  pct("iowait", iowait.warningPercent, iowait.criticalPercent);
  if (!(Number.isInteger(iowait.sampleSeconds) && iowait.sampleSeconds >= 1 && iowait.sampleSeconds <= 60))
    fail(`iowait.sampleSeconds must be 1..60, got ${iowait.sampleSeconds}`);
  const minFraction = iops.minFraction ?? 0.5;
  if (!(minFraction > 0 && minFraction < 1)) fail(`iops.minFraction must be between 0 and 1, got ${minFraction}`);
  const webhookFile = plan.webhookFile === null ? null : (plan.webhookFile ?? DEFAULT_WEBHOOK_FILE);
  if (webhookFile !== null && !ABS.test(webhookFile)) fail(`webhookFile '${webhookFile}' is not an absolute path`);
  if (plan.textfileDir !== undefined && !ABS.test(plan.textfileDir)) fail(`textfileDir '${plan.textfileDir}' is not an absolute path`);
  return {
    host: plan.host,
    mounts: [...plan.mounts],
    usage: { warning: usage.warningPercent, critical: usage.criticalPercent },
    iowait: { warning: iowait.warningPercent, critical: iowait.criticalPercent, sampleSeconds: iowait.sampleSeconds },
    iops: {
      targets: iops.targets.map((t) => ({ dir: t.dir, baselineFile: t.baselineFile })),
      minFraction,
      probeSeconds: iops.probeSeconds ?? 5,
      probeSizeMiB: iops.probeSizeMiB ?? 256,
      everyMinutes: iops.everyMinutes ?? 60,
    },
    containers: [...(plan.containers ?? [])],
    repeatMinutes: plan.repeatMinutes ?? 60,
    webhookFile,
    ...(plan.textfileDir !== undefined ? { textfileDir: plan.textfileDir } : {}),
  };
}

/** The set install-units.sh applies. */
export function monitoringUnitSet(plan: MonitoringPlan): UnitSet {
  const config = storageAlertConfig(plan);
  const interval = plan.intervalMinutes ?? 5;
  if (!(Number.isInteger(interval) && interval >= 1 && interval <= 60)) fail(`intervalMinutes must be 1..60, got ${interval}`);
  const service = renderUnit([
    [
      "Unit",
      [
        ["Description", "dgx-storage: storage alert check (usage, I/O wait, IOPS, containers)"],
        ["After", "docker.service"],
      ],
    ],
    [
      "Service",
      [
        ["Type", "oneshot"],
        // through /bin/bash: install-units.sh runs `systemd-analyze verify` before it installs the
        // set's files, and verify fails on an ExecStart binary that does not exist yet
        ["ExecStart", `/bin/bash ${STORAGE_ALERT_SCRIPT} check ${STORAGE_ALERT_CONFIG}`],
        // the iowait sample, docker and an hourly fio probe fit well inside this
        ["TimeoutStartSec", "4min"],
      ],
    ],
  ]);
  const timer = renderUnit([
    ["Unit", [["Description", `dgx-storage: storage alert check every ${interval} minutes`]]],
    [
      "Timer",
      [
        ["OnBootSec", "2min"],
        ["OnUnitActiveSec", `${interval}min`],
        ["AccuracySec", "30s"],
      ],
    ],
    ["Install", [["WantedBy", "timers.target"]]],
  ]);
  const hook = `#!/bin/sh\n# Managed by dgx-storage (Pulumi). smartd's -M exec hook: smartd passes no arguments.\nexec ${STORAGE_ALERT_SCRIPT} smartd ${STORAGE_ALERT_CONFIG}\n`;
  return {
    files: [
      { path: STORAGE_ALERT_SCRIPT, mode: "0755", content: bundledScript("storage-alert") },
      { path: SMARTD_ALERT_HOOK, mode: "0755", content: hook },
      { path: STORAGE_ALERT_CONFIG, mode: "0644", content: JSON.stringify(config, null, 2) + "\n" },
      { path: `/etc/systemd/system/${ALERT_SERVICE}`, mode: "0644", content: service },
      { path: `/etc/systemd/system/${ALERT_TIMER}`, mode: "0644", content: timer },
    ],
    enable: [ALERT_TIMER, ...((plan.fstrimTimer ?? true) ? ["fstrim.timer"] : [])],
  };
}
