/**
 * Pure planning of the observability stack (no @pulumi import): the packages, the rule
 * thresholds from the `monitoring` section, the static textfile series (each backup job's
 * maximum age, the capacity projection's threshold dates) and the manager's rendered files.
 */
import type { BackupConfig, HostConfig, MonitoringConfig, ObservabilityConfig } from "../config";
import { backupUnitSet } from "../render/backup";
import {
  DEFAULT_THRESHOLDS,
  renderAlertmanagerYml,
  renderConsole,
  renderPrometheusYml,
  renderRules,
  renderTextfile,
  type RuleThresholds,
  type StaticSample,
} from "../render/observability";
import { backupPlan } from "./backup";
import { plannedCapacity } from "./monitoring";

/** Debian's packages: node_exporter and the smartmon/nvme collectors on every host (moreutils: their units' `sponge`); Prometheus and Alertmanager on the manager. */
export function observabilityPackages(obs: ObservabilityConfig): string[] {
  return ["prometheus-node-exporter", "prometheus-node-exporter-collectors", "moreutils", ...(obs.prometheus ? ["prometheus", "prometheus-alertmanager"] : [])];
}

/** The rules' thresholds: the manager's `monitoring` levels, or the plan's defaults. */
export function ruleThresholds(mon: MonitoringConfig | undefined, obs: ObservabilityConfig): RuleThresholds {
  return {
    ...DEFAULT_THRESHOLDS,
    ...(mon
      ? {
          usage: { warning: mon.usage.warning, critical: mon.usage.critical },
          iowait: { warning: mon.iowait.warning, critical: mon.iowait.critical },
          iopsMinFraction: (100 - mon.iopsDropPercent) / 100,
          temperatureCriticalC: mon.temperatureCriticalC,
        }
      : {}),
    hostDownFor: obs.prometheus?.hostDownFor ?? DEFAULT_THRESHOLDS.hostDownFor,
    migrationStuckHours: obs.prometheus?.migrationStuckHours ?? DEFAULT_THRESHOLDS.migrationStuckHours,
  };
}

/**
 * Each watched backup job's maximum age, as the missed-schedule watch has it: read from the
 * watch unit's `watch <job>=<seconds>...` arguments that render/backup.ts writes, so the rule
 * and the watch can never disagree.
 */
export function backupMaxAges(host: string, backup: BackupConfig): { job: string; seconds: number }[] {
  const set = backupUnitSet(backupPlan(host, backup));
  const watch = set.files.find((f) => f.path === "/etc/systemd/system/dgx-backup-watch.service");
  if (!watch) return [];
  const exec = /^ExecStart=.* watch (.+)$/m.exec(watch.content);
  return (exec?.[1] ?? "")
    .split(" ")
    .map((w) => /^([a-z][a-z0-9-]*)=(\d+)$/.exec(w))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ job: m[1]!, seconds: Number(m[2]) }));
}

/** The static series of a host: backup maximum ages, capacity threshold dates (config figures, from `capacity.asOf`). */
export function staticSamples(config: HostConfig, today: Date): StaticSample[] {
  const out: StaticSample[] = [];
  if (config.backup) {
    for (const a of backupMaxAges(config.host.name, config.backup)) {
      out.push({
        name: "dgx_backup_max_age_seconds",
        help: "How old a backup job's last success may be before it counts as missed",
        labels: { backup_job: a.job },
        value: a.seconds,
      });
    }
  }
  // only with capacity.asOf: a projection started "today" would move its dates (and this file) every day
  for (const d of config.capacity?.asOf !== undefined ? plannedCapacity(config.capacity, today) : []) {
    for (const t of d.projection.thresholds) {
      if (t.date === null || t.date === "now") continue;
      out.push({
        name: "dgx_capacity_projected_timestamp_seconds",
        help: "Unix time the capacity projection (config figures) reaches the percentage",
        labels: { mount: d.mount, percent: String(t.percent) },
        value: Date.parse(`${t.date}T00:00:00Z`) / 1000,
      });
    }
  }
  return out;
}

/** The static textfile's content. */
export function staticTextfile(config: HostConfig, today: Date): string {
  return renderTextfile(staticSamples(config, today));
}

/** The manager's four files. */
export function managerFiles(
  config: HostConfig,
  obs: ObservabilityConfig,
  webhook: boolean,
): { prometheus: string; rules: string; alertmanager: string; console: string } | undefined {
  const p = obs.prometheus;
  if (!p) return undefined;
  const t = ruleThresholds(config.monitoring, obs);
  return {
    prometheus: renderPrometheusYml({
      targets: p.targets,
      scrapeIntervalSeconds: p.scrapeIntervalSeconds,
      evaluationIntervalSeconds: p.evaluationIntervalSeconds,
    }),
    rules: renderRules(t, p.evaluationIntervalSeconds),
    alertmanager: renderAlertmanagerYml({
      webhook,
      groupWaitSeconds: p.groupWaitSeconds,
      groupIntervalSeconds: p.groupIntervalSeconds,
      repeatIntervalMinutes: p.repeatIntervalMinutes,
    }),
    console: renderConsole(t, p.consoleHours),
  };
}
