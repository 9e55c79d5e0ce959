/**
 * Keeping the disks healthy and the plan's numbers honest (plan phases 1.2, 2.2, 5, 6): the
 * storage-alert check and util-linux's fstrim.timer, a one-off trim, smartd, the fio baseline and
 * the capacity projections of one host. Its packages and the alert webhook file are the host's
 * (DgxHost), since the backup jobs need them too.
 */
import * as pulumi from "@pulumi/pulumi";
import type { CapacityConfig, MaintenanceConfig, MonitoringConfig } from "./config";
import { hostCommand, unitSetCommand, type HostAccess } from "./host-command";
import type { HostFile } from "./host";
import { parseDf, projectCapacity, projectFromDf, type CapacityProjection, type DfReading, type GrowthModel } from "./render/capacity";
import { sha256 } from "./render/command";
import { compareWithTargets, parseFioSummary, type FioJobSummary, type TargetCheck } from "./render/fio";
import { DEFAULT_WEBHOOK_FILE, MONITORING_SET, monitoringUnitSet, SMARTD_ALERT_HOOK, type MonitoringPlan } from "./render/monitoring";
import { renderSmartdConf } from "./render/smartd";
import type { UnitSet } from "./render/systemd";

/** smartd's configuration file on Debian and Ubuntu (DGX OS). */
export const SMARTD_CONF = "/etc/smartd.conf";
/** Where fio-baseline.sh keeps each path's summary (the alert check's IOPS baseline). */
export const FIO_DIR = "/var/lib/dgx-storage/fio";
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

export interface MonitoringArgs {
  /** How to reach the host. */
  readonly access: HostAccess;
  /** Host name, in every alert. */
  readonly host: string;
  /** The `monitoring` section; absent: no packages, alerts, smartd, baseline or live df. */
  readonly monitoring?: MonitoringConfig;
  /** The `maintenance` section; absent: no one-off trim, and fstrim.timer only with `monitoring`. */
  readonly maintenance?: MaintenanceConfig;
  /** The `capacity` section: the projections from config, and the growth the live df is projected with. */
  readonly capacity?: CapacityConfig;
  /** This host's service container names: unhealthy, restarting, exited or missing is an alert. @default [] */
  readonly containers?: readonly string[];
  /** The host's command that writes the alert webhook file: the alert check runs after it. Absent: journal only. */
  readonly webhook?: pulumi.Resource;
  /**
   * What every command waits for: the host's packages (smartmontools, sysstat, fio) and every
   * service switched over and every migration finished. The trim and the fio baseline load the
   * data disks, the alert check would report the containers a migration has stopped: none runs
   * while a migration copies or is in its downtime. Set on each child.
   */
  readonly after: readonly pulumi.Resource[];
  /** The start day of the projections from config when `capacity.asOf` is not set. @default today */
  readonly today?: Date;
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

/** A capacity disk from config, projected. */
export interface PlannedCapacity {
  readonly name: string;
  readonly mount: string;
  readonly sizeTB: number;
  readonly usedTB: number;
  readonly projection: CapacityProjection;
}

/** Projections from the config's disk figures (pure). */
export function plannedCapacity(capacity: CapacityConfig, today: Date): PlannedCapacity[] {
  const start = capacity.asOf !== undefined ? new Date(`${capacity.asOf}T00:00:00Z`) : today;
  return capacity.disks.map((d) => ({
    name: d.name,
    mount: d.mount,
    sizeTB: d.sizeTB,
    usedTB: d.usedTB,
    projection: projectCapacity({ size: d.sizeTB * TB, used: d.usedTB * TB, annualGrowth: capacity.annualGrowth, start, model: capacity.model }),
  }));
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

/** The storage-alert plan of a host from its config. */
export function monitoringPlan(host: string, mon: MonitoringConfig, containers: readonly string[], fstrimTimer: boolean): MonitoringPlan {
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
    webhookFile: DEFAULT_WEBHOOK_FILE,
    fstrimTimer,
  };
}

/** fstrim, SMART, the storage alerts, the fio baseline and capacity on one host. */
export class Monitoring extends pulumi.ComponentResource {
  /** The monitoring unit set (install-units.sh): alert check and timer, smartd hook, fstrim.timer. */
  public readonly units?: pulumi.Resource;
  /** `fstrim-once.sh` over maintenance.fstrim.mounts. */
  public readonly fstrim?: pulumi.Resource;
  /** `smartd-config.sh`: /etc/smartd.conf. */
  public readonly smartd?: pulumi.Resource;
  /** One fio baseline command per path. */
  public readonly baselines: readonly pulumi.Resource[];
  /** The read-only df of the data mounts. */
  public readonly df?: pulumi.Resource;
  /** The unit set installed (for review). */
  public readonly unitSet?: UnitSet;
  /** /etc/smartd.conf's content, when there are devices. */
  public readonly smartdConf?: string;
  /** Per path: the plan's targets, measured. */
  public readonly baseline: pulumi.Output<BaselineOutput[]>;
  /** Projections from the config's figures. */
  public readonly capacityPlanned: PlannedCapacity[];
  /** Projections from the live df of the data mounts (read on the first apply and when the mounts change). */
  public readonly capacityLive: pulumi.Output<LiveCapacity[]>;
  /** What the host receives, for synth. */
  public readonly hostFiles: readonly HostFile[];

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:Monitoring", name, {}, opts);
    const { access, monitoring: mon, maintenance, capacity } = args;
    const child = { parent: this, dependsOn: [...args.after] };
    const fstrimTimer = maintenance?.fstrim.timer ?? true;
    const hostFiles: HostFile[] = [];

    // the monitoring set; without a monitoring section only util-linux's timer, when wanted
    const unitSet: UnitSet | undefined = mon
      ? monitoringUnitSet(monitoringPlan(args.host, mon, args.containers ?? [], fstrimTimer))
      : fstrimTimer && maintenance
        ? { files: [], enable: ["fstrim.timer"] }
        : undefined;
    if (unitSet) {
      // the alert check may run as soon as its timer is enabled: the webhook file first
      this.units = unitSetCommand(`${name}-units`, access, MONITORING_SET, unitSet, { ...child, dependsOn: [...args.after, ...(args.webhook ? [args.webhook] : [])] });
      this.unitSet = unitSet;
      for (const f of unitSet.files) hostFiles.push({ path: f.path, content: f.content, kind: "file" });
    }
    const trimMounts = maintenance?.fstrim.mounts ?? [];
    if (trimMounts.length > 0) {
      this.fstrim = hostCommand(`${name}-fstrim`, { access, script: "fstrim-once", createArgs: [...trimMounts], triggers: [trimMounts.join(" ")] }, child);
    }
    if (mon && mon.nvmeDevices.length > 0 && this.units) {
      const conf = renderSmartdConf({
        devices: mon.nvmeDevices.map((path) => ({ path })),
        alertExec: SMARTD_ALERT_HOOK,
        temperatureCriticalC: mon.temperatureCriticalC,
      });
      this.smartd = hostCommand(
        `${name}-smartd`,
        {
          access,
          script: "smartd-config",
          createArgs: ["apply", SMARTD_CONF, conf, ...(mon.allowMissingDevices ? ["--allow-missing-devices"] : [])],
          deleteArgs: ["remove", SMARTD_CONF],
          triggers: [sha256(conf)],
        },
        // smartd's first check may already call the hook, which the unit set installs
        { ...child, dependsOn: [...args.after, this.units] },
      );
      this.smartdConf = conf;
      hostFiles.push({ path: SMARTD_CONF, content: conf, kind: "file" });
    }
    const b = mon?.baseline;
    const runs: { path: string; cmd: ReturnType<typeof hostCommand> }[] = [];
    if (b) {
      for (const p of b.paths) {
        runs.push({
          path: p,
          cmd: hostCommand(
            `${name}-fio-${pathSlug(p)}`,
            {
              access,
              script: "fio-baseline",
              createArgs: [p, b.size, String(b.runtimeSeconds), baselineFile(p)],
              // fio runs on the first apply and when one of these changes: never on a plain re-apply
              triggers: [p, b.size, String(b.runtimeSeconds), b.trigger],
            },
            child,
          ),
        });
      }
    }
    this.baselines = runs.map((r) => r.cmd);
    this.baseline = pulumi.all(runs.map((r) => r.cmd.stdout.apply((out) => baselineOutput(r.path, out ?? ""))));

    this.capacityPlanned = capacity ? plannedCapacity(capacity, args.today ?? new Date()) : [];
    if (mon) {
      const df = hostCommand(`${name}-df`, { access, script: "df-read", createArgs: [...mon.mounts], triggers: [mon.mounts.join(" ")] }, child);
      this.df = df;
      const growth = capacity ? { annualGrowth: capacity.annualGrowth, model: capacity.model } : undefined;
      this.capacityLive = df.stdout.apply((out) => liveCapacity(out ?? "", growth));
    } else {
      this.capacityLive = pulumi.output([]);
    }
    this.hostFiles = hostFiles;
    this.registerOutputs({ baseline: this.baseline, capacityPlanned: this.capacityPlanned, capacityLive: this.capacityLive });
  }
}
