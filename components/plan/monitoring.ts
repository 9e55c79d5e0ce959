/**
 * Pure planning of the storage checks: the validated `monitoring`, `maintenance` and `capacity`
 * sections in, plain data out (no @pulumi import): the alert plan and its unit set, smartd's
 * file, the fio baseline files, the capacity inputs and projections, and the reading of what
 * the host commands print. The Monitoring component declares the commands; `npm run synth`
 * charts the same capacity inputs.
 */
import type { CapacityConfig, HostConfig, MaintenanceConfig, MonitoringConfig } from "../config";
import { parseDf, projectCapacity, projectFromDf, type CapacityInput, type CapacityProjection, type DfReading, type GrowthModel } from "../render/capacity";
import { compareWithTargets, parseFioSummary, type FioJobSummary, type TargetCheck } from "../render/fio";
import { HOST_PATHS } from "../render/host-paths";
import { DEFAULT_WEBHOOK_FILE, monitoringUnitSet, SMARTD_ALERT_HOOK, type MonitoringPlan } from "../render/monitoring";
import { TEXTFILE_DIR } from "../render/observability";
import { renderSmartdConf } from "../render/smartd";
import type { UnitSet } from "../render/systemd";

/** smartd's configuration file on Debian and Ubuntu (DGX OS). */
export const SMARTD_CONF = "/etc/smartd.conf";
/** Where fio-baseline.sh keeps each path's summary (the alert check's IOPS baseline). */
export const FIO_DIR = `${HOST_PATHS.var}/fio`;
/** One TB as the plan counts it (decimal, as disk vendors and df -H do). */
const TB = 1e12;

/** The file-name and resource-name part for a data path: `/data/enhanced` -> `data-enhanced`, `/` -> `root`. */
export function pathSlug(p: string): string {
  return p === "/" ? "root" : p.slice(1).replace(/\//g, "-");
}

/** The baseline summary file of a data path. */
export function baselineFile(p: string): string {
  return `${FIO_DIR}/${pathSlug(p)}.json`;
}

/** The storage-alert plan of a host from its config. */
export function monitoringPlan(host: string, mon: MonitoringConfig, containers: readonly string[], fstrimTimer: boolean, metrics = false): MonitoringPlan {
  return {
    host,
    mounts: mon.mounts,
    usage: { warningPercent: mon.usage.warning, criticalPercent: mon.usage.critical },
    iowait: { warningPercent: mon.iowait.warning, criticalPercent: mon.iowait.critical, sampleSeconds: mon.iowait.sampleSeconds },
    iops: {
      targets: (mon.baseline?.paths ?? []).map((dir) => ({ dir, baselineFile: baselineFile(dir) })),
      minFraction: (100 - mon.iopsDropPercent) / 100,
    },
    containers,
    intervalMinutes: mon.intervalMinutes,
    repeatMinutes: mon.repeatMinutes,
    // with metrics the alerts go through Prometheus and Alertmanager alone: no POST from the check
    webhookFile: metrics ? null : DEFAULT_WEBHOOK_FILE,
    ...(metrics ? { textfileDir: TEXTFILE_DIR } : {}),
    fstrimTimer,
  };
}

/**
 * The monitoring unit set: the alert check and its timer, the smartd hook, fstrim.timer. Without
 * a monitoring section only util-linux's timer, when wanted; nothing without either section.
 */
export function monitoringUnits(
  host: string,
  mon: MonitoringConfig | undefined,
  maintenance: MaintenanceConfig | undefined,
  containers: readonly string[],
  metrics = false,
): UnitSet | undefined {
  const fstrimTimer = maintenance?.fstrim.timer ?? true;
  if (mon) return monitoringUnitSet(monitoringPlan(host, mon, containers, fstrimTimer, metrics));
  return fstrimTimer && maintenance ? { files: [], enable: ["fstrim.timer"] } : undefined;
}

/** /etc/smartd.conf for the watched devices; undefined without devices (smartd keeps its own file). */
export function smartdConfig(mon: MonitoringConfig | undefined): string | undefined {
  if (!mon || mon.nvmeDevices.length === 0) return undefined;
  return renderSmartdConf({
    devices: mon.nvmeDevices.map((path) => ({ path })),
    alertExec: SMARTD_ALERT_HOOK,
    temperatureCriticalC: mon.temperatureCriticalC,
  });
}

/** One capacity disk of the config as the projection's input (bytes, from the plan's TB). */
export interface DiskCapacityInput {
  readonly name: string;
  readonly mount: string;
  readonly sizeTB: number;
  readonly usedTB: number;
  readonly input: CapacityInput;
}

/**
 * The projection inputs of every capacity disk: the config's figures, its growth and model,
 * starting on `capacity.asOf` or else `today`. The one place both the stack outputs and synth's
 * chart read them from.
 */
export function capacityInputs(capacity: CapacityConfig, today: Date): DiskCapacityInput[] {
  const start = capacity.asOf !== undefined ? new Date(`${capacity.asOf}T00:00:00Z`) : today;
  return capacity.disks.map((d) => ({
    name: d.name,
    mount: d.mount,
    sizeTB: d.sizeTB,
    usedTB: d.usedTB,
    input: { size: d.sizeTB * TB, used: d.usedTB * TB, annualGrowth: capacity.annualGrowth, start, model: capacity.model },
  }));
}

/** A capacity disk from config, projected. */
export interface PlannedCapacity {
  readonly name: string;
  readonly mount: string;
  readonly sizeTB: number;
  readonly usedTB: number;
  readonly projection: CapacityProjection;
}

/** Projections from the config's disk figures. */
export function plannedCapacity(capacity: CapacityConfig, today: Date): PlannedCapacity[] {
  return capacityInputs(capacity, today).map(({ input, ...disk }) => ({ ...disk, projection: projectCapacity(input) }));
}

/**
 * The capacity chart's series of every host: `<host>` for a host's first disk (its primary data
 * disk), `<host>-<disk>` for the others.
 */
export function capacitySeries(configs: readonly HostConfig[], today: Date): { host: string; input: CapacityInput }[] {
  return configs.flatMap((c) =>
    (c.capacity ? capacityInputs(c.capacity, today) : []).map((d, i) => ({ host: i === 0 ? c.host.name : `${c.host.name}-${d.name}`, input: d.input })),
  );
}

/** A live df reading of one data mount, projected when a growth rate is configured. */
export interface LiveCapacity extends DfReading {
  readonly measuredAt: string;
  readonly projection?: CapacityProjection;
}

/** The live readings from df-read.sh's stdout (`# measured <day>`, then df -P -B1). */
export function liveCapacity(stdout: string, growth?: { readonly annualGrowth: number; readonly model: GrowthModel }): LiveCapacity[] {
  const m = /^# measured (\d{4}-\d{2}-\d{2})\n/.exec(stdout);
  if (!m) return [];
  const day = m[1]!;
  return parseDf(stdout.slice(m[0].length)).map((r) => ({
    ...r,
    measuredAt: day,
    ...(growth && r.usedBytes + r.availBytes > 0 ? { projection: projectFromDf(r, growth.annualGrowth, new Date(`${day}T00:00:00Z`), growth.model) } : {}),
  }));
}

/** One data path's measured baseline, beside the plan's targets (a stack output). */
export interface BaselineOutput {
  readonly path: string;
  /** false until fio has run (a preview, or a command whose output is not known yet). */
  readonly measured: boolean;
  readonly measuredAt?: string;
  readonly fio?: string | null;
  readonly size?: string;
  readonly runtimeSeconds?: number;
  readonly jobs?: Readonly<Record<string, FioJobSummary>>;
  readonly targets?: readonly TargetCheck[];
  /** Every target of the plan met. */
  readonly allTargetsMet?: boolean;
  /** Why the output could not be read. */
  readonly error?: string;
}

/** The baseline output from fio-baseline.sh's stdout (its summary JSON). */
export function baselineOutput(p: string, stdout: string): BaselineOutput {
  if (stdout.trim() === "") return { path: p, measured: false };
  try {
    const s = parseFioSummary(stdout);
    const targets = compareWithTargets(s);
    return {
      path: p,
      measured: true,
      ...(s.measuredAt !== undefined ? { measuredAt: s.measuredAt } : {}),
      fio: s.fio,
      ...(s.size !== undefined ? { size: s.size } : {}),
      ...(s.runtimeSeconds !== undefined ? { runtimeSeconds: s.runtimeSeconds } : {}),
      jobs: s.jobs,
      targets,
      allTargetsMet: targets.every((t) => t.met),
    };
  } catch (e) {
    return { path: p, measured: false, error: (e as Error).message };
  }
}
