/**
 * The borg backup schedule of one host as a unit set for install-units.sh: a service and a timer
 * per job, and the borg-run.sh helper they run. Pure: a typed plan in, file texts out.
 *
 * Every borg archive is a full, deduplicated backup, so the plan's "daily full / hourly
 * incremental" becomes two archive series (`<host>-daily-*`, `<host>-hourly-*`) pruned each by
 * its own rules. The passphrase is never here: the units name the command that reads it
 * (`BORG_PASSCOMMAND`), the file itself is written by borg-repo.sh from stdin.
 */
import { CLOUD_COPY_PATH, CLOUD_UNSET_ENV, cloudJobs, type CloudPlan } from "./cloud-copy";
import { bundledScript, knownHostsName } from "./command";
import { HOST_PATHS } from "./host-paths";
import { renderUnit, type UnitEntry, type UnitFile, type UnitSection, type UnitSet } from "./systemd";

/** Where install-units.sh puts the helper the services run. */
export const BORG_RUN_PATH = `${HOST_PATHS.lib}/borg-run.sh`;
/** The directory of the pass files, exported keys and the off-site known_hosts (root, 0700). */
export const BORG_ETC_DIR = `${HOST_PATHS.etc}/borg`;
/** borg's security dir and cache; borg-repo.sh and borg-run.sh default to the same place. */
export const BORG_BASE_DIR = `${HOST_PATHS.var}/borg`;
/** The known_hosts file that pins the off-site host's SSH key. */
export const OFFSITE_KNOWN_HOSTS_PATH = `${BORG_ETC_DIR}/offsite-known_hosts`;

/** The off-site repository on the other host, reached over SSH with a dedicated key. */
export interface OffsiteTarget {
  /** SSH user on the receiving host that owns the repository, e.g. `borg-sark`. */
  readonly user: string;
  /** Address of the receiving host, e.g. 192.168.68.71. */
  readonly host: string;
  /** SSH port. */
  readonly port: number;
  /** Absolute repository path on the receiving host, inside the key's `--restrict-to-path`. */
  readonly repoPath: string;
  /** The private key on this host (created by `borg-repo.sh ssh-key <path>`). */
  readonly sshKeyPath: string;
  /** The receiving host's SSH host key, `<type> <base64>` (as `ssh-keyscan` prints it without the host). */
  readonly hostKey: string;
}

/** Retention of one series: borg prune's `--keep-*` numbers; 0 or absent = not used. */
export interface Retention {
  readonly hourly?: number;
  readonly daily?: number;
  readonly weekly?: number;
  readonly monthly?: number;
  readonly yearly?: number;
}

/** systemd OnCalendar= expressions of the jobs. */
export interface BackupSchedules {
  /** @default "*-*-* 02:00:00" */
  readonly daily?: string;
  /** @default "hourly" */
  readonly hourly?: string;
  /** The off-site copy. @default "Sun *-*-* 04:00:00" */
  readonly offsite?: string;
  /** `borg check` (repository and archive metadata). @default "Wed *-*-* 05:00:00" */
  readonly check?: string;
  /** `borg check --verify-data` (reads every chunk). @default "*-*-01 05:00:00" */
  readonly verifyData?: string;
  /** The restore drill. @default "*-*-15 05:00:00" */
  readonly drill?: string;
  /** The missed-schedule watch over the jobs above. @default "hourly" */
  readonly watch?: string;
}

/** Everything the backup units of one host need; the component builds it from the validated config. */
export interface BackupPlan {
  /** Host name, lower case: the archive prefix (`sark-daily-...`) and part of the unit descriptions. */
  readonly host: string;
  /** Repository name: the pass file is <BORG_ETC_DIR>/<repoName>.pass. */
  readonly repoName: string;
  /** Absolute path of the local repository, e.g. /mnt/borg-backup. */
  readonly repoPath: string;
  /** Paths of the daily series: every data path of the host, container volumes included. */
  readonly dailyPaths: readonly string[];
  /** Paths of the hourly series (the critical data). Empty: no hourly units. */
  readonly hourlyPaths: readonly string[];
  /**
   * Live SQLite databases (ChromaDB's chroma.sqlite3) under those paths: archived as consistent
   * copies made with SQLite's online backup API, the live files are excluded. A series
   * snapshots the databases that lie under one of its paths.
   */
  readonly sqliteDatabases: readonly string[];
  /** Retention of the daily series. The plan: daily 7, weekly 4, monthly 6. */
  readonly dailyRetention: Retention;
  /** Retention of the hourly series, e.g. { hourly: 24 }. Without keep-hourly, each prune would drop all but one per day. */
  readonly hourlyRetention: Retention;
  /** @default see BackupSchedules */
  readonly schedules?: BackupSchedules;
  /** Files the monthly restore drill extracts and compares. @default 200 */
  readonly drillSample?: number;
  /** An archive that adds more than this times the median of the last runs raises an alert. @default 4 */
  readonly growthFactor?: number;
  /** The weekly copy to the other host. Absent: no off-site units. */
  readonly offsite?: OffsiteTarget;
  /** The copies in object storage (render/cloud-copy.ts). Absent: no cloud units. */
  readonly cloud?: CloudPlan;
}

const DEFAULT_SCHEDULES: Required<BackupSchedules> = {
  daily: "*-*-* 02:00:00",
  hourly: "hourly",
  offsite: "Sun *-*-* 04:00:00",
  check: "Wed *-*-* 05:00:00",
  verifyData: "*-*-01 05:00:00",
  drill: "*-*-15 05:00:00",
  watch: "hourly",
};

/**
 * One word of an ExecStart= line: quoted when needed, with systemd's own specials escaped
 * (`%` starts a specifier, `$` an environment variable; systemd.service(5), "Command lines").
 */
export function execWord(s: string): string {
  if (s === "" || /[\n\r]/.test(s)) throw new Error(`not usable as a command argument: ${JSON.stringify(s)}`);
  const escaped = s.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function absolute(what: string, p: string): string {
  if (!p.startsWith("/") || p.includes("..") || /[\n\r]/.test(p)) throw new Error(`${what} must be an absolute path without '..', got ${JSON.stringify(p)}`);
  return p;
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

function keepOptions(r: Retention): string[] {
  const order = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;
  const opts = order.filter((k) => (r[k] ?? 0) > 0).map((k) => `--keep-${k}=${r[k]}`);
  if (opts.length === 0) throw new Error("a retention needs at least one keep number above 0");
  return opts;
}

/** The ssh:// URL of the off-site repository. */
export function offsiteRepoUrl(o: OffsiteTarget): string {
  return `ssh://${o.user}@${o.host}:${o.port}${absolute("offsite.repoPath", o.repoPath)}`;
}

/** The known_hosts line that pins the off-site host key (`[host]:port` form when the port is not 22). */
export function offsiteKnownHosts(o: OffsiteTarget): string {
  if (!/^[a-z0-9-]+ [A-Za-z0-9+/=]+$/.test(o.hostKey.trim())) throw new Error(`offsite.hostKey must be '<type> <base64>', got ${JSON.stringify(o.hostKey)}`);
  const name = knownHostsName(o.host, o.port);
  return `${name} ${o.hostKey.trim()}\n`;
}

/**
 * The authorized_keys line for the receiving host: this key can only run an append-only
 * `borg serve` confined to the repository, with no shell, forwarding or pty (`restrict`).
 * An append-only repository records a `borg delete`/`prune` as a new transaction that the
 * receiving operator can roll back; `compact` frees nothing. https://borgbackup.readthedocs.io/en/1.2-maint/usage/notes.html#append-only-mode-forbid-compaction
 */
export function offsiteAuthorizedKey(pubKey: string, repoPath: string): string {
  const key = pubKey.trim();
  if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( [^\n\r"]*)?$/.test(key)) throw new Error("not an SSH public key line");
  if (!/^\/[A-Za-z0-9_./-]+$/.test(repoPath) || repoPath.includes(".."))
    throw new Error(`the repository path must be absolute and plain, got ${JSON.stringify(repoPath)}`);
  return `command="borg serve --append-only --restrict-to-path ${repoPath}",restrict ${key}`;
}

interface Job {
  /** Unit name stem: dgx-backup-<id>.service / .timer */
  readonly id: string;
  readonly description: string;
  readonly commands: readonly (readonly string[])[];
  /** The status record borg-run.sh writes for the job's first command (`create-daily`, `check`, ...); absent: not watched. */
  readonly status?: string;
  /** Its timer's OnCalendar; for a job with `startedBy`, the starting job's (for the lock wait and the watch). */
  readonly onCalendar: string;
  readonly randomizedDelay: string;
  /** Started by this job's success (its unit's OnSuccess=, systemd.unit(5), systemd 249 and later) instead of a timer. */
  readonly startedBy?: string;
  readonly network?: boolean;
  /** The watch reads status files only: no repository lock to wait for. */
  readonly noRepository?: boolean;
  /** The helper the commands run. @default BORG_RUN_PATH */
  readonly script?: string;
  /** Variables the service runs without (UnsetEnvironment=). */
  readonly unsetEnvironment?: readonly string[];
}

function service(plan: BackupPlan, job: Job, followers: readonly Job[]): string {
  // through /bin/bash: `systemd-analyze verify` (run by install-units.sh before it writes any
  // file) rejects a unit whose executable does not exist yet, and the helper arrives in the same set
  const lockWait = job.noRepository ? [] : ["--lock-wait", String(lockWaitSeconds(job.onCalendar, job.commands.length))];
  const exec: UnitEntry[] = job.commands.map((args) => ["ExecStart", ["/bin/bash", job.script ?? BORG_RUN_PATH, ...lockWait, ...args].map(execWord).join(" ")]);
  const unit: UnitEntry[] = [["Description", `${job.description} (${plan.host})`]];
  if (job.network) unit.push(["Wants", "network-online.target"], ["After", "network-online.target"]);
  // started when this job ends successfully, not when it fails (systemd.unit(5), OnSuccess=)
  for (const f of followers) unit.push(["OnSuccess", `dgx-backup-${f.id}.service`]);
  const sections: UnitSection[] = [
    ["Unit", unit],
    [
      "Service",
      [
        ["Type", "oneshot"],
        // the command that reads the passphrase, never the passphrase
        ["Environment", `"BORG_PASSCOMMAND=cat ${BORG_ETC_DIR}/${plan.repoName}.pass"`],
        ["Environment", `BORG_BASE_DIR=${BORG_BASE_DIR}`],
        ...(job.unsetEnvironment ?? []).map((v): UnitEntry => ["UnsetEnvironment", v]),
        ...exec,
        ["SyslogIdentifier", "dgx-backup"],
        // backups yield to the GPU workloads: lowest CPU weight, idle I/O class
        ["Nice", 19],
        ["CPUSchedulingPolicy", "batch"],
        ["IOSchedulingClass", "idle"],
        ["PrivateTmp", true],
      ],
    ],
  ];
  return renderUnit(sections);
}

function timer(plan: BackupPlan, job: Job): string {
  return renderUnit([
    ["Unit", [["Description", `${job.description} (${plan.host}), scheduled`]]],
    [
      "Timer",
      [
        ["OnCalendar", job.onCalendar],
        // a run missed while the host was off happens at the next boot
        ["Persistent", true],
        ["RandomizedDelaySec", job.randomizedDelay],
      ],
    ],
    ["Install", [["WantedBy", "timers.target"]]],
  ]);
}

/** The services, timers and files of a host's backups, for install-units.sh. */
export function backupUnitSet(plan: BackupPlan): UnitSet {
  if (!/^[a-z][a-z0-9-]*$/.test(plan.host)) throw new Error(`host must be lower-case letters, digits and '-', got ${plan.host}`);
  if (!/^[a-z][a-z0-9-]*$/.test(plan.repoName)) throw new Error(`repoName must be lower-case letters, digits and '-', got ${plan.repoName}`);
  absolute("repoPath", plan.repoPath);
  if (plan.dailyPaths.length === 0) throw new Error("the daily series needs at least one path");
  [...plan.dailyPaths, ...plan.hourlyPaths, ...plan.sqliteDatabases].forEach((p) => absolute("a backup path", p));
  const s = { ...DEFAULT_SCHEDULES, ...(plan.schedules ?? {}) };
  const common = ["--repo", plan.repoPath, "--host", plan.host, "--growth-factor", String(plan.growthFactor ?? 4)];
  const withDbs = (paths: readonly string[]) => [
    ...plan.sqliteDatabases.filter((db) => paths.some((p) => under(db, p))).flatMap((db) => ["--sqlite", db]),
    ...paths,
  ];

  const jobs: Job[] = [
    {
      id: "daily",
      description: "borg backup, daily series",
      commands: [
        [...common, "create", "daily", ...withDbs(plan.dailyPaths)],
        [...common, "prune", "daily", ...keepOptions(plan.dailyRetention)],
      ],
      status: "create-daily",
      onCalendar: s.daily,
      randomizedDelay: "30m",
    },
  ];
  if (plan.hourlyPaths.length > 0) {
    jobs.push({
      id: "hourly",
      description: "borg backup, hourly series of the critical paths",
      commands: [
        [...common, "create", "hourly", ...withDbs(plan.hourlyPaths)],
        [...common, "prune", "hourly", ...keepOptions(plan.hourlyRetention)],
      ],
      status: "create-hourly",
      onCalendar: s.hourly,
      randomizedDelay: "5m",
    });
  }
  jobs.push(
    { id: "check", description: "borg check of the repository", commands: [[...common, "check"]], status: "check", onCalendar: s.check, randomizedDelay: "1h" },
    {
      id: "verify",
      description: "borg check --verify-data (reads every chunk)",
      commands: [[...common, "check", "--verify-data"]],
      status: "check-verify-data",
      onCalendar: s.verifyData,
      randomizedDelay: "1h",
    },
    {
      id: "drill",
      description: "borg restore drill on the latest daily archive",
      commands: [[...common, "drill", "daily", "--sample", String(plan.drillSample ?? 200)]],
      status: "drill-daily",
      onCalendar: s.drill,
      randomizedDelay: "1h",
    },
  );
  const files: UnitFile[] = [];
  if (plan.offsite) {
    const o = plan.offsite;
    absolute("offsite.sshKeyPath", o.sshKeyPath);
    const remote = ["--repo", offsiteRepoUrl(o), "--host", plan.host, "--growth-factor", String(plan.growthFactor ?? 4)];
    jobs.push({
      id: "offsite",
      description: `borg off-site copy to ${o.host}`,
      commands: [[...remote, "copy-offsite", o.sshKeyPath, OFFSITE_KNOWN_HOSTS_PATH, ...withDbs(plan.dailyPaths)]],
      status: "copy-offsite",
      onCalendar: s.offsite,
      randomizedDelay: "1h",
      network: true,
    });
    files.push({ path: OFFSITE_KNOWN_HOSTS_PATH, mode: "0644", content: offsiteKnownHosts(o) });
  }

  if (plan.cloud) {
    // after the local repository's own jobs; each copy checks the repository first
    for (const c of cloudJobs(plan.host, plan.repoPath, plan.cloud, s.check)) {
      jobs.push({ ...c, commands: [c.args], network: true, script: CLOUD_COPY_PATH, unsetEnvironment: CLOUD_UNSET_ENV });
    }
  }

  // missed schedules: an hourly watch over every job above whose period it can tell
  const watched = jobs.flatMap((j) => {
    const period = calendarPeriodSeconds(j.onCalendar);
    return period && j.status ? [`${j.status}=${maxAgeSeconds(period)}`] : [];
  });
  if (watched.length > 0) {
    jobs.push({
      id: "watch",
      description: "missed backup schedules",
      commands: [[...common, "watch", ...watched]],
      onCalendar: s.watch,
      randomizedDelay: "5m",
      noRepository: true,
    });
  }

  for (const job of jobs) {
    if (job.startedBy && !jobs.some((j) => j.id === job.startedBy)) throw new Error(`job ${job.id} is started by ${job.startedBy}, which is not a job here`);
    const followers = jobs.filter((j) => j.startedBy === job.id);
    files.push({ path: `/etc/systemd/system/dgx-backup-${job.id}.service`, mode: "0644", content: service(plan, job, followers) });
    if (!job.startedBy) files.push({ path: `/etc/systemd/system/dgx-backup-${job.id}.timer`, mode: "0644", content: timer(plan, job) });
  }
  files.push({ path: BORG_RUN_PATH, mode: "0755", content: bundledScript("borg-run") });
  if (plan.cloud) files.push({ path: CLOUD_COPY_PATH, mode: "0755", content: bundledScript("cloud-copy") });
  return { files, enable: jobs.filter((j) => !j.startedBy).map((j) => `dgx-backup-${j.id}.timer`) };
}

/**
 * The period of an OnCalendar= expression this project uses (hourly, daily at a time, weekly on a
 * day, monthly on a day, yearly on a date), in seconds; undefined for anything else (that job is
 * then not watched).
 */
export function calendarPeriodSeconds(onCalendar: string): number | undefined {
  const c = onCalendar.trim();
  if (c === "hourly" || /^\*-\*-\* \*:\d\d(:\d\d)?$/.test(c)) return 3600;
  if (c === "daily" || /^\*-\*-\* \d\d:\d\d(:\d\d)?$/.test(c)) return 86400;
  if (c === "weekly" || /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \*-\*-\* \d\d:\d\d(:\d\d)?$/.test(c)) return 7 * 86400;
  if (c === "monthly" || /^\*-\*-\d\d \d\d:\d\d(:\d\d)?$/.test(c)) return 31 * 86400;
  if (c === "yearly" || c === "annually" || /^\*-\d\d-\d\d \d\d:\d\d(:\d\d)?$/.test(c)) return 366 * 86400;
  return undefined;
}

/**
 * borg's `--lock-wait` for each command of a job: 90% of the job's period shared by its borg
 * commands (create, then prune), at least 600 s; an hour is assumed for a schedule whose period
 * is not known. So the hourly job waits out the first long daily or a verify-data run for up to
 * 27 minutes per command instead of failing after borg's default 1 s, but never runs into its own
 * next start; a run that still finds the repository locked is skipped with a warning.
 */
export function lockWaitSeconds(onCalendar: string, commands: number): number {
  const period = calendarPeriodSeconds(onCalendar) ?? 3600;
  return Math.max(600, Math.floor((0.9 * period) / Math.max(1, commands)));
}

/** How late a job may be before it counts as missed: its period plus half a period, at least 2 h. */
export function maxAgeSeconds(period: number): number {
  return period + Math.max(period / 2, 7200);
}

/** The arguments of the one-time repository set-up command (the passphrase goes on stdin). */
export function repoSetupArgs(plan: BackupPlan): string[] {
  return ["apply", plan.repoName, plan.repoPath];
}
