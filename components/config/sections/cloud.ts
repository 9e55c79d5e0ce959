/** `backup.cloud`: a copy of the borg repository in object storage, S3 or Azure Blob (components/render/cloud-copy.ts). */
import { z } from "zod";
import { HOST_PATHS } from "../../render/host-paths";
import { absolutePath, checkUnique, listOf, type CrossRule, type RawConfig } from "../primitives";

/** A systemd OnCalendar= expression, as `backup.schedules` takes it. */
const calendar = z
  .string()
  .regex(/^[A-Za-z0-9*:.,/~ -]{1,64}$/, "a systemd OnCalendar expression such as 'Thu *-*-* 06:00:00'")
  .meta({ title: "OnCalendar expression" });

/** An rclone remote name and the status job's suffix (`cloud-copy-<name>`). */
const targetName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, "a lower-case name of 2 to 32 letters, digits and '-', e.g. 's3-main'")
  .meta({ title: "target name" });

/** Where inside the bucket or container: plain path segments. */
const prefix = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, "path segments of letters, digits, '_', '.', '-' joined by '/', e.g. 'dgx/sark'")
  .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "no '.' or '..' segment")
  .meta({ title: "object prefix" });

/**
 * S3 storage classes a copy may be written in. GLACIER and DEEP_ARCHIVE are left out: their
 * objects must be restored before they can be read, so the monthly drill could not fetch them
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-class-intro.html); a lifecycle
 * rule on the replaced objects' prefix is the place for them (docs/backups-cloud.md).
 */
const S3_STORAGE_CLASSES = ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"] as const;

const s3Target = z
  .strictObject({
    provider: z
      .enum(["AWS", "Ceph", "Minio", "Wasabi", "Other"])
      .default("AWS")
      .meta({ description: "rclone's S3 provider: `AWS`, or the S3-compatible service behind `endpoint`." }),
    endpoint: z
      .string()
      .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/?$/, "an http(s) URL of a host and optional port, e.g. 'https://s3.eu-central-1.amazonaws.com'")
      .optional()
      .meta({
        description: "The S3 endpoint; absent: AWS's for the region. Path-style addressing is used with an endpoint (MinIO, Ceph).",
        defaultText: "AWS's for `region`",
      }),
    region: z
      .string()
      .regex(/^[a-z0-9-]{2,32}$/, "a region name such as 'eu-central-1'")
      .meta({ description: "The bucket's region (`us-east-1` for most S3-compatible services)." }),
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "an S3 bucket name: 3 to 63 lower-case letters, digits, '.', '-'")
      .meta({ description: "The bucket; it must exist (the copy never creates one, so that its versioning and lifecycle are the operator's choice)." }),
    storageClass: z.enum(S3_STORAGE_CLASSES).optional().meta({
      description: "The storage class objects are written in; GLACIER and DEEP_ARCHIVE are refused (the drill could not read them).",
      defaultText: "the bucket's (STANDARD)",
    }),
  })
  .meta({ description: "An S3 or S3-compatible bucket; credentials `accessKeyId` and `secretAccessKey` in the secret `cloudCredentials`." });

const azureTarget = z
  .strictObject({
    account: z
      .string()
      .regex(/^[a-z0-9]{3,24}$/, "a storage account name: 3 to 24 lower-case letters and digits")
      .meta({ description: "The storage account." }),
    container: z
      .string()
      .regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, "a container name: 3 to 63 lower-case letters, digits and single '-'")
      .meta({ description: "The blob container; it must exist." }),
    accessTier: z.enum(["Hot", "Cool"]).optional().meta({
      description: "The access tier blobs are written in; Archive is refused (an archived blob must be rehydrated before the drill can read it).",
      defaultText: "the account's (Hot)",
    }),
    endpoint: z
      .string()
      .regex(/^[a-z0-9.-]+(:\d{1,5})?$/, "a host suffix such as 'blob.core.windows.net'")
      .optional()
      .meta({ description: "The blob service's host suffix: the URL is https://<account>.<endpoint>.", defaultText: "blob.core.windows.net" }),
  })
  .meta({ description: "An Azure Blob container; the account key `accountKey` in the secret `cloudCredentials`." });

const cloudTarget = z
  .strictObject({
    name: targetName.meta({
      description: "Names the target: its rclone remote, its units (dgx-backup-cloud-<name>) and status records (cloud-copy-<name>, cloud-drill-<name>).",
    }),
    s3: s3Target.optional(),
    azure: azureTarget.optional(),
    prefix: prefix.optional().meta({
      description: "Where in the bucket: the repository goes to `<prefix>/repo`, replaced objects to `<prefix>/replaced/<date>`.",
      defaultText: "the host's name",
    }),
    protection: z.enum(["versioning", "object-lock", "backup-dir"]).meta({
      description:
        "What keeps the objects a copy deletes or overwrites: `versioning` or `object-lock` when the bucket or container has it switched on (the copy then moves nothing; for S3 it first asks the bucket and refuses to copy unless its versioning is Enabled), `backup-dir` when it has neither (rclone moves them to `<prefix>/replaced/<date>`). docs/backups-cloud.md compares them.",
    }),
  })
  .refine((t) => (t.s3 === undefined) !== (t.azure === undefined), { message: "exactly one of `s3` or `azure`" })
  .meta({ title: "{name, s3 | azure, prefix, protection}" });

export const cloudSection = z
  .strictObject({
    targets: z
      .array(cloudTarget)
      .min(1, "at least one target")
      .meta({ description: "Where the repository is copied, each target a full copy; names listed once." }),
    schedules: z
      .strictObject({
        drill: calendar.default("*-*-22 06:00:00").meta({ description: "The monthly cloud restore drill." }),
      })
      .default({ drill: "*-*-22 06:00:00" })
      .meta({
        title: "{drill}: OnCalendar",
        description:
          "The copy has no schedule of its own: it runs each time the weekly `borg check` (`backup.schedules.check`) passes, and copies the repository as that check saw it.",
      }),
    drillScratch: absolutePath
      .default(`${HOST_PATHS.var}/cloud-drill`)
      .refine(
        (p) => !["/tmp", "/var/tmp"].some((t) => p === t || p.startsWith(`${t}/`)),
        "a directory outside /tmp and /var/tmp (the units run with PrivateTmp=, which hides them)",
      )
      .meta({
        description:
          "Scratch directory the drill fetches a whole copy into (room for the repository's size); emptied after each drill. Not under /tmp or /var/tmp (the units' PrivateTmp= hides them).",
      }),
  })
  .meta({ description: "Copies of the borg repository in object storage (S3 or Azure Blob) with rclone; needs the secret `cloudCredentials`." });

export type CloudConfig = z.infer<typeof cloudSection>;
export type CloudTargetConfig = CloudConfig["targets"][number];

/** Target names once; the drill's scratch outside the repository and the backed-up paths. */
export const cloudRule: CrossRule = (c: RawConfig, ctx) => {
  const cloud = (c.backup as { cloud?: { targets?: unknown; drillScratch?: unknown } } | undefined)?.cloud;
  if (cloud === undefined) return;
  checkUnique(ctx, listOf(cloud.targets) as readonly { name?: unknown }[], {
    key: (t) => (typeof t?.name === "string" ? t.name : undefined),
    at: (i) => ["backup", "cloud", "targets", i, "name"],
    message: (first) => `a target name listed once (it is already at [${first}])`,
    input: (t) => t?.name,
  });
  const repo = (c.backup as { repository?: { path?: unknown } }).repository?.path;
  const scratch = cloud.drillScratch;
  if (typeof scratch === "string" && typeof repo === "string" && (scratch === repo || scratch.startsWith(`${repo}/`) || repo.startsWith(`${scratch}/`))) {
    ctx.addIssue({ code: "custom", path: ["backup", "cloud", "drillScratch"], message: `a directory apart from the repository ${repo}`, input: scratch });
  }
};
