/** `backup`: borg repository, schedules and the weekly off-site copy (components/backup.ts, plan phase 4). */
import { z } from "zod";
import { cloudSection } from "./cloud";
import {
  absolutePath,
  address,
  checkListedOnce,
  hostKey,
  inside,
  listOf,
  listOrNone,
  lowerName,
  port,
  posixUser,
  type CrossRule,
  type RawConfig,
} from "../primitives";
import { HOST_PATHS } from "../../render/host-paths";

/** borg prune's `--keep-*` numbers of one archive series. */
const retentionSection = z
  .strictObject({
    hourly: z.number().int("a whole number").min(0, "0 or more").optional(),
    daily: z.number().int("a whole number").min(0, "0 or more").optional(),
    weekly: z.number().int("a whole number").min(0, "0 or more").optional(),
    monthly: z.number().int("a whole number").min(0, "0 or more").optional(),
    yearly: z.number().int("a whole number").min(0, "0 or more").optional(),
  })
  .refine((r) => Object.values(r).some((n) => typeof n === "number" && n > 0), { message: "at least one keep number above 0" });

/** A systemd OnCalendar= expression (systemd.time(7)); install-units.sh has systemd-analyze verify it. */
const calendar = z
  .string()
  .regex(/^[A-Za-z0-9*:.,/~ -]{1,64}$/, "a systemd OnCalendar expression such as '*-*-* 02:00:00' or 'hourly'")
  .meta({ title: "OnCalendar expression" });

/** A system user name borg-repo.sh accepts for the receiving side. */
const receiverUser = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, "a user name of lower-case letters, digits and '-', e.g. 'borg-sark'")
  .meta({ title: "user name" });

export const backupSection = z
  .strictObject({
    repository: z
      .strictObject({
        path: absolutePath.meta({
          description: "The local repository, e.g. /mnt/borg-backup (SARK's external disk in the plan); must not lie inside a backed-up path, nor contain one.",
        }),
        name: lowerName.meta({ description: `Names the pass file and exported key: ${HOST_PATHS.etc}/borg/<name>.pass and .key.` }),
      })
      .meta({ description: "The local borg repository (repokey encryption), created once by borg-repo.sh." }),
    paths: z
      .strictObject({
        daily: z.array(absolutePath).default([]).meta({
          description:
            "The daily series, each listed once. The host's bind-volume devices and the writable bind sources of its service containers are added automatically.",
        }),
        hourly: z
          .array(absolutePath)
          .default([])
          .meta({ description: "The hourly series: the critical paths only, each listed once. Empty: no hourly units." }),
      })
      .default({ daily: [], hourly: [] }),
    sqlite: z
      .array(absolutePath)
      .default([])
      .meta({ description: 'Live SQLite databases inside a backed-up path, archived as online-backup copies (README "Backups with borg"), each listed once.' }),
    retention: z
      .strictObject({
        daily: retentionSection
          .default({ daily: 7, weekly: 4, monthly: 6 })
          .meta({ title: "{hourly, daily, weekly, monthly, yearly}", description: "`borg prune --keep-*` of the daily series (the plan's)." }),
        hourly: retentionSection.default({ hourly: 24 }).meta({
          title: "{hourly, daily, weekly, monthly, yearly}",
          description: "`borg prune --keep-*` of the hourly series; needs keep-hourly, or each prune keeps one hourly archive a day.",
        }),
      })
      .default({ daily: { daily: 7, weekly: 4, monthly: 6 }, hourly: { hourly: 24 } }),
    schedules: z
      .strictObject({
        daily: calendar.optional(),
        hourly: calendar.optional(),
        offsite: calendar.optional(),
        check: calendar.optional(),
        verifyData: calendar.optional(),
        drill: calendar.optional(),
        watch: calendar.optional(),
      })
      .default({})
      .meta({
        title: "{daily, hourly, offsite, check, verifyData, drill, watch}: OnCalendar",
        description:
          'OnCalendar of each job; absent keys keep components/render/backup.ts\'s defaults (README "Backups with borg"); `watch` (hourly) checks the others for missed runs.',
      }),
    growthFactor: z
      .number()
      .gt(1, "above 1")
      .max(1000, "at most 1000")
      .default(4)
      .meta({ description: "An archive adding more than this times the median of the last runs raises an alert." }),
    drillSample: z
      .number()
      .int("a whole number")
      .min(1, "at least 1")
      .max(100000, "at most 100000")
      .default(200)
      .meta({ description: "Files the monthly restore drill extracts and compares." }),
    existingJobs: z.enum(["report", "disable"]).default("report").meta({
      description:
        "Backup jobs made by hand (crontab lines, cron.<period> scripts, timers) that run borg on the repository: `report` lists them in the apply's output and the stack output `existingBackupJobs`; `disable` also switches them off after this stack's units are installed (a copy of each file changed is kept).",
    }),
    offsite: z
      .strictObject({
        ssh: z
          .strictObject({
            address: address.meta({ description: "The other host's management address." }),
            port: port.default(22).meta({ description: "Its SSH port." }),
            user: posixUser.meta({ description: "The operator's login there (sudo unless root)." }),
            hostKey: hostKey.meta({ description: "The peer's host key: pins Pulumi's command there and this host's borg traffic; pinned before `pulumi up`." }),
          })
          .meta({ description: "How Pulumi reaches the other host's management SSH to install the receiving side (same operator key)." }),
        address: address.optional().meta({ description: "Where this host reaches the peer for borg traffic.", defaultText: "`offsite.ssh.address`" }),
        port: port.optional().meta({ description: "The port of that address.", defaultText: "`offsite.ssh.port`" }),
        user: receiverUser.meta({ description: "The system user on the peer that owns the repository (append-only there), e.g. `borg-sark`." }),
        repoDir: absolutePath.meta({
          description: "The repository directory on the peer (the key's `--restrict-to-path`); the repository is `<repoDir>/repo`.",
        }),
      })
      .optional()
      .meta({
        description:
          "The weekly off-site copy into a repository on the other host. This stack installs the receiving side there too (one `pulumi up`, no StackReference).",
      }),
    cloud: cloudSection.optional(),
  })
  .meta({ description: "Backups with borg; needs the secret `borgPassphrase`." });

/**
 * The paths the daily series gets without being told: every bind-volume device of this host and
 * every writable bind source of its containers (after migrations: the destination). Read-only
 * mounts (vLLM's model weights) are left out: the service does not write them, they can be
 * fetched again, and at hundreds of GB they would dominate the repository; list one in
 * `backup.paths.daily` to include it.
 */
export function automaticBackupPaths(c: {
  readonly volumes?: readonly { readonly bind?: { readonly device?: unknown } }[];
  readonly services?: Readonly<Record<string, { readonly mounts?: readonly { readonly source?: unknown; readonly readOnly?: unknown }[] }>>;
  readonly migrations?: readonly { readonly source?: unknown; readonly destination?: unknown }[];
}): string[] {
  const out: string[] = [];
  for (const v of listOf(c.volumes)) if (typeof v?.bind?.device === "string") out.push(v.bind.device);
  const moves = listOf(c.migrations);
  for (const svc of Object.values(c.services ?? {})) {
    for (const m of listOf(svc?.mounts)) {
      if (typeof m?.source !== "string" || !m.source.startsWith("/") || m.readOnly === true) continue;
      const moved = moves.find((x) => x?.source === m.source)?.destination;
      out.push(typeof moved === "string" ? moved : m.source);
    }
  }
  return out;
}

/** Sorted, without repeats and without paths inside another one of the list (borg would archive them twice). */
export function outermostPaths(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && inside(p, q)));
}

/** Unique paths; the repository outside what it backs up; databases inside a series; an off-site copy on another host. */
export const backupRule: CrossRule = (c: RawConfig, ctx) => {
  const b = c.backup;
  if (b === undefined) return;
  const strings = (l: unknown) => listOf(l).filter((x): x is string => typeof x === "string");
  checkListedOnce(ctx, b.paths?.daily, ["backup", "paths", "daily"], "a path");
  checkListedOnce(ctx, b.paths?.hourly, ["backup", "paths", "hourly"], "a path");
  checkListedOnce(ctx, b.sqlite, ["backup", "sqlite"], "a database");
  const daily = strings(b.paths?.daily);
  const hourly = strings(b.paths?.hourly);
  const auto = automaticBackupPaths(c as Parameters<typeof automaticBackupPaths>[0]);
  if (daily.length + auto.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["backup", "paths", "daily"],
      message: "at least one path (none configured, and the host has no bind volume or bind-mounted service data)",
      input: b.paths?.daily,
    });
  }
  const repo = b.repository?.path;
  if (typeof repo === "string") {
    const check = (list: readonly string[], at: readonly (string | number)[]) =>
      list.forEach((p, j) => {
        if (inside(repo, p)) {
          ctx.addIssue({
            code: "custom",
            path: ["backup", "repository", "path"],
            message: `a path outside what is backed up (${p}${at.length ? ` at backup.${at.join(".")}[${j}]` : ", a bind volume or service mount of this host"} contains it: borg would archive its own repository)`,
            input: repo,
          });
        } else if (inside(p, repo) && at.length) {
          ctx.addIssue({ code: "custom", path: ["backup", ...at, j], message: `a path outside the repository ${repo}`, input: p });
        }
      });
    check(daily, ["paths", "daily"]);
    check(hourly, ["paths", "hourly"]);
    check(auto, []);
  }
  const series = [...daily, ...hourly, ...auto];
  strings(b.sqlite).forEach((db, i) => {
    if (!series.some((p) => db !== p && inside(db, p))) {
      ctx.addIssue({
        code: "custom",
        path: ["backup", "sqlite", i],
        message: `a database file inside a backed-up path (${listOrNone(outermostPaths(series))})`,
        input: db,
      });
    }
  });
  const keepHourly = b.retention?.hourly?.hourly;
  if (hourly.length > 0 && b.retention?.hourly !== undefined && !(typeof keepHourly === "number" && keepHourly > 0)) {
    ctx.addIssue({
      code: "custom",
      path: ["backup", "retention", "hourly", "hourly"],
      message: "a keep-hourly number above 0 when paths.hourly is set (without it each prune keeps one hourly archive a day)",
      input: keepHourly,
    });
  }
  const o = b.offsite;
  const self = c.host;
  const peerPort = o?.ssh?.port ?? 22;
  if (o?.ssh?.address !== undefined && o.ssh.address === self?.address && peerPort === (self?.ssh?.port ?? 22)) {
    ctx.addIssue({
      code: "custom",
      path: ["backup", "offsite", "ssh", "address"],
      message: "the other host's management SSH (this is this host's own address and port): an off-site copy on this host itself protects nothing",
      input: o.ssh.address,
    });
  }
};
