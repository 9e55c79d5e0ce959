/**
 * Keeping the disks healthy and the plan's numbers honest (plan phases 1.2, 2.2, 5, 6): the
 * storage-alert check and util-linux's fstrim.timer, a one-off trim, smartd, the fio baseline and
 * the capacity projections of one host. Its packages and the alert webhook file are the host's
 * (DgxHost), since the backup jobs need them too.
 */
import * as pulumi from "@pulumi/pulumi";
import type { CapacityConfig, MaintenanceConfig, MonitoringConfig } from "./config";
import { hostCommand, unitSetCommand, type HostAccess } from "./host-command";
import { unitSetFiles, type HostFile } from "./plan/host";
import {
  baselineFile,
  baselineOutput,
  liveCapacity,
  monitoringUnits,
  pathSlug,
  plannedCapacity,
  smartdConfig,
  SMARTD_CONF,
  type BaselineOutput,
  type LiveCapacity,
  type PlannedCapacity,
} from "./plan/monitoring";
import { sha256 } from "./render/command";
import { MONITORING_SET } from "./render/monitoring";
import type { UnitSet } from "./render/systemd";

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
  /** Write the checks' measurements as textfile metrics and leave alerting to Prometheus and Alertmanager (the `observability` section). @default false */
  readonly metrics?: boolean;
  /** The start day of the projections from config when `capacity.asOf` is not set. @default today */
  readonly today?: Date;
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
    const hostFiles: HostFile[] = [];

    const unitSet = monitoringUnits(args.host, mon, maintenance, args.containers ?? [], args.metrics ?? false);
    if (unitSet) {
      // the alert check may run as soon as its timer is enabled: the webhook file first
      this.units = unitSetCommand(`${name}-units`, access, MONITORING_SET, unitSet, {
        ...child,
        dependsOn: [...args.after, ...(args.webhook ? [args.webhook] : [])],
      });
      this.unitSet = unitSet;
      hostFiles.push(...unitSetFiles(unitSet));
    }
    const trimMounts = maintenance?.fstrim.mounts ?? [];
    if (trimMounts.length > 0) {
      this.fstrim = hostCommand(`${name}-fstrim`, { access, script: "fstrim-once", createArgs: [...trimMounts], triggers: [trimMounts.join(" ")] }, child);
    }
    const conf = smartdConfig(mon);
    if (mon && conf !== undefined && this.units) {
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
