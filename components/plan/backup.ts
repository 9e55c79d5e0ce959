/**
 * Pure planning of the backups: the validated `backup` section in, the renderer's plan and the
 * off-site target out (no @pulumi import). The Backup component declares what this plans.
 */
import { UNPINNED_HOST_KEY, type BackupConfig } from "../config";
import { cloudPlan } from "./cloud-copy";
import { BORG_ETC_DIR, type BackupPlan, type OffsiteTarget } from "../render/backup";

/** The private key of the off-site copy on the sending host (the public key is a stack output). */
export const OFFSITE_KEY_PATH = `${BORG_ETC_DIR}/offsite_ed25519`;

/** The off-site repository inside the receiving directory. */
export function offsiteRepoPath(repoDir: string): string {
  return `${repoDir}/repo`;
}

/** The off-site target of a config, or undefined without `offsite` (or while the peer's key is unpinned: preview only). */
export function offsiteTarget(backup: BackupConfig): OffsiteTarget | undefined {
  const o = backup.offsite;
  if (!o || o.ssh.hostKey === UNPINNED_HOST_KEY) return undefined;
  return {
    user: o.user,
    host: o.address ?? o.ssh.address,
    port: o.port ?? o.ssh.port,
    // inside the key's --restrict-to-path directory, which the receive command creates empty:
    // copy-offsite runs `borg init` there on its first run (an existing empty directory is not
    // "missing" to borg-run.sh, which tells a missing repository from a broken one)
    repoPath: offsiteRepoPath(o.repoDir),
    sshKeyPath: OFFSITE_KEY_PATH,
    hostKey: o.ssh.hostKey,
  };
}

/** The renderer's plan from the validated config. */
export function backupPlan(host: string, backup: BackupConfig): BackupPlan {
  const offsite = offsiteTarget(backup);
  const cloud = cloudPlan(host, backup);
  return {
    host,
    repoName: backup.repository.name,
    repoPath: backup.repository.path,
    dailyPaths: backup.paths.daily,
    hourlyPaths: backup.paths.hourly,
    sqliteDatabases: backup.sqlite,
    dailyRetention: backup.retention.daily,
    hourlyRetention: backup.retention.hourly,
    schedules: backup.schedules,
    drillSample: backup.drillSample,
    growthFactor: backup.growthFactor,
    ...(offsite ? { offsite } : {}),
    ...(cloud ? { cloud } : {}),
    // no alertWebhook: DgxHost writes the webhook file, borg-run.sh reads it
  };
}
