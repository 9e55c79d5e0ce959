/**
 * The copy of the borg repository in object storage: the rclone config (from the secret
 * `cloudCredentials`, root-only on the host) and the weekly copy and monthly drill jobs of each
 * target, which render/backup.ts turns into units beside the other backup jobs. Pure: typed
 * plan in, text and job descriptions out.
 */
import { HOST_PATHS } from "./host-paths";

/** Where cloud-copy.sh is installed (with the backup unit set). */
export const CLOUD_COPY_PATH = `${HOST_PATHS.lib}/cloud-copy.sh`;
/** The rclone config: root's, 0600, written by secret-file.sh from stdin; the only place credentials are. */
export const RCLONE_CONFIG_PATH = `${HOST_PATHS.etc}/cloud/rclone.conf`;
/** The environment the cloud jobs run without: rclone's S3 backend loads the CA bundle this names. */
export const CLOUD_UNSET_ENV = ["AWS_CA_BUNDLE"] as const;

/** One target, as the plan gives it. */
export interface CloudTarget {
  /** The rclone remote's name, the units' and status records' suffix. */
  readonly name: string;
  readonly s3?: {
    readonly provider: string;
    readonly endpoint?: string;
    readonly region: string;
    readonly bucket: string;
    readonly storageClass?: string;
  };
  readonly azure?: {
    readonly account: string;
    readonly container: string;
    readonly accessTier?: string;
    readonly endpoint?: string;
  };
  /** Object prefix inside the bucket or container. */
  readonly prefix: string;
  readonly protection: "versioning" | "object-lock" | "backup-dir";
}

export interface CloudPlan {
  readonly targets: readonly CloudTarget[];
  /** OnCalendar of the drill (the copy follows the check job: its OnSuccess=). */
  readonly schedules: { readonly drill: string };
  readonly drillScratch: string;
  /** Files the drill extracts and compares. */
  readonly drillSample: number;
}

/** The bucket (or container) of a target. */
export function targetBucket(t: CloudTarget): string {
  const b = t.s3?.bucket ?? t.azure?.container;
  if (!b) throw new Error(`cloud target ${t.name}: neither s3 nor azure`);
  return b;
}

/** `<name>:<bucket>/<prefix>/repo`: where the repository's copy lives. */
export function targetRemote(t: CloudTarget): string {
  return `${t.name}:${targetBucket(t)}/${t.prefix}/repo`;
}

/** `<name>:<bucket>/<prefix>/replaced`: where a backup-dir target keeps replaced objects, one dated prefix per copy. */
export function targetBackupDir(t: CloudTarget): string | undefined {
  return t.protection === "backup-dir" ? `${t.name}:${targetBucket(t)}/${t.prefix}/replaced` : undefined;
}

/**
 * How the copy keeps what a sync replaces: `--backup-dir` into a dated prefix, or, for an S3
 * bucket that keeps versions itself, `--versioned` (the job confirms the bucket's versioning is
 * Enabled before it copies). rclone has no call that reads an Azure account's blob versioning, so
 * an Azure target with versioning is taken at its word (docs/backups-cloud.md, "Keeping the last
 * good copy").
 */
export function targetProtectionArgs(t: CloudTarget): string[] {
  const backupDir = targetBackupDir(t);
  if (backupDir) return ["--backup-dir", backupDir];
  return t.s3 ? ["--versioned"] : [];
}

/** A human description of a target, for unit descriptions and docs. */
export function describeTarget(t: CloudTarget): string {
  return t.s3
    ? `s3 bucket ${t.s3.bucket}${t.s3.endpoint ? ` at ${t.s3.endpoint}` : ` in ${t.s3.region}`}`
    : `azure container ${t.azure!.account}/${t.azure!.container}`;
}

function iniValue(target: string, key: string, v: string): string {
  // one line, no leading or trailing space: rclone's config parser would cut or misread it
  if (/[\n\r]/.test(v) || v !== v.trim() || v === "")
    throw new Error(`cloudCredentials: target ${target}: ${key} must be one non-empty line without surrounding spaces`);
  return v;
}

/** The credentials of one target from the secret's parsed object; an error names target and field, never a value. */
function credentialsOf(t: CloudTarget, all: Record<string, unknown>): Record<string, string> {
  const c = all[t.name];
  const want = t.s3 ? ["accessKeyId", "secretAccessKey"] : ["accountKey"];
  if (c === null || typeof c !== "object" || Array.isArray(c))
    throw new Error(`cloudCredentials: no entry for the target ${t.name} (expected {${want.map((k) => `"${k}": "..."`).join(", ")}})`);
  const o = c as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !want.includes(k));
  if (extra.length > 0) throw new Error(`cloudCredentials: target ${t.name}: unknown field(s) ${extra.join(", ")} (expected ${want.join(", ")})`);
  const out: Record<string, string> = {};
  for (const k of want) {
    const v = o[k];
    if (typeof v !== "string") throw new Error(`cloudCredentials: target ${t.name}: ${k} is missing (a string)`);
    out[k] = iniValue(t.name, k, v);
  }
  return out;
}

/**
 * The rclone config of every target (https://rclone.org/s3/, https://rclone.org/azureblob/),
 * credentials included: its text is a secret, written to RCLONE_CONFIG_PATH from stdin only.
 * `credentials` is the secret `cloudCredentials` as text (a JSON object by target name).
 */
export function renderRcloneConfig(targets: readonly CloudTarget[], credentials: string): string {
  let all: unknown;
  try {
    all = JSON.parse(credentials);
  } catch {
    throw new Error("cloudCredentials: not valid JSON (the value is not shown)");
  }
  if (all === null || typeof all !== "object" || Array.isArray(all)) throw new Error("cloudCredentials: a JSON object by target name is expected");
  const known = new Set(targets.map((t) => t.name));
  const unknown = Object.keys(all).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`cloudCredentials: entries for targets that backup.cloud.targets does not list: ${unknown.join(", ")}`);
  const lines = ["# Managed by dgx-storage (Pulumi). Do not edit: the next `pulumi up` overwrites it."];
  for (const t of targets) {
    const c = credentialsOf(t, all as Record<string, unknown>);
    lines.push("", `[${t.name}]`);
    if (t.s3) {
      lines.push(
        "type = s3",
        `provider = ${t.s3.provider}`,
        `access_key_id = ${c.accessKeyId}`,
        `secret_access_key = ${c.secretAccessKey}`,
        `region = ${t.s3.region}`,
      );
      if (t.s3.endpoint) lines.push(`endpoint = ${t.s3.endpoint}`);
      // virtual-hosted style only for AWS itself; S3-compatible servers (MinIO, Ceph, s3rver) are addressed by path
      lines.push(`force_path_style = ${t.s3.endpoint ? "true" : "false"}`);
      if (t.s3.storageClass) lines.push(`storage_class = ${t.s3.storageClass}`);
      // the bucket exists (the config door says so): rclone must not try to create it, which
      // needs a permission the copy's key should not have (https://rclone.org/s3/#s3-no-check-bucket)
      lines.push("no_check_bucket = true");
    } else if (t.azure) {
      lines.push("type = azureblob", `account = ${t.azure.account}`, `key = ${c.accountKey}`);
      if (t.azure.endpoint) lines.push(`endpoint = ${t.azure.endpoint}`);
      if (t.azure.accessTier) lines.push(`access_tier = ${t.azure.accessTier}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** A job of a target, for render/backup.ts to make a service and a timer of. */
export interface CloudJob {
  /** Unit name stem: dgx-backup-<id>. */
  readonly id: string;
  readonly description: string;
  /** The job whose success starts this one (the unit's OnSuccess=), in place of a timer. */
  readonly startedBy?: "check";
  /** cloud-copy.sh's arguments after --lock-wait. */
  readonly args: readonly string[];
  /** Its status record (cloud-copy-<name>, cloud-drill-<name>). */
  readonly status: string;
  /** Its timer's OnCalendar; for a job started by another, that job's (its period sets the lock wait and the missed-run watch). */
  readonly onCalendar: string;
  readonly randomizedDelay: string;
}

/**
 * The copy and drill jobs of every target. The copy runs when the weekly check job passes
 * (`checkCalendar` is that job's schedule): it then copies the repository as the check saw it,
 * without a second read of the whole repository (cloud-copy.sh, run_copy).
 */
export function cloudJobs(host: string, repoPath: string, plan: CloudPlan, checkCalendar: string): CloudJob[] {
  const common = ["--repo", repoPath, "--host", host, "--config", RCLONE_CONFIG_PATH];
  return plan.targets.flatMap((t) => [
    {
      id: `cloud-${t.name}`,
      description: `borg repository copy to cloud target ${t.name} (${describeTarget(t)})`,
      args: [...common, "copy", t.name, targetRemote(t), ...targetProtectionArgs(t)],
      status: `cloud-copy-${t.name}`,
      startedBy: "check" as const,
      onCalendar: checkCalendar,
      randomizedDelay: "1h",
    },
    {
      id: `clouddrill-${t.name}`,
      description: `restore drill from cloud target ${t.name} (${describeTarget(t)})`,
      args: [...common, "drill", t.name, targetRemote(t), plan.drillScratch, "--sample", String(plan.drillSample)],
      status: `cloud-drill-${t.name}`,
      onCalendar: plan.schedules.drill,
      randomizedDelay: "1h",
    },
  ]);
}
