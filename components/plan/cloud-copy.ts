/**
 * Pure planning of the cloud copies: the validated `backup.cloud` section in, the renderer's
 * CloudPlan out (no @pulumi import).
 */
import type { BackupConfig } from "../config";
import type { CloudPlan, CloudTarget } from "../render/cloud-copy";

/** The cloud plan of a host's backup, or undefined without `backup.cloud`. */
export function cloudPlan(host: string, backup: BackupConfig): CloudPlan | undefined {
  const c = backup.cloud;
  if (!c) return undefined;
  const targets: CloudTarget[] = c.targets.map((t) => ({
    name: t.name,
    // each host's copy under its own prefix unless told otherwise: both stacks may share a bucket
    prefix: t.prefix ?? host,
    protection: t.protection,
    ...(t.s3 ? { s3: { ...t.s3 } } : {}),
    ...(t.azure ? { azure: { ...t.azure } } : {}),
  }));
  return { targets, schedules: { ...c.schedules }, drillScratch: c.drillScratch, drillSample: backup.drillSample };
}
