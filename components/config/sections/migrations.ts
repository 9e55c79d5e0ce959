/** `migrations`: moves of a service's bind-mounted data to a new path (components/migration.ts). */
import { z } from "zod";
import { absolutePath, checkUnique, dockerName, inside, listOf, listOrNone, lowerName, type CrossRule } from "../primitives";

export const migrationSection = z.strictObject({
  name: lowerName.meta({ description: "Name of the migration, unique; its state file on the host is named after it." }),
  service: dockerName.meta({
    title: "service key",
    description: "The service of this stack whose data moves; its bind mount of `source` moves to `destination`.",
  }),
  source: absolutePath.meta({ description: "The path the service bind-mounts now." }),
  destination: absolutePath.meta({ description: "Where the data moves: neither equal to nor inside the source, nor containing it; no other migration's." }),
  mount: absolutePath.optional().meta({ description: "The filesystem the destination must be on (its mount point), checked before copying." }),
  marginPercent: z
    .number()
    .int("a whole number")
    .min(0, "0 or more")
    .max(100, "at most 100")
    .default(10)
    .meta({ description: "Free space required beyond the source's size, in percent." }),
  healthTimeout: z
    .number()
    .int("a whole number")
    .positive("a positive whole number")
    .default(300)
    .meta({ title: "seconds", description: "Seconds the service may take to become healthy on the destination (the trial and the new container)." }),
  snapshot: z.enum(["none", "borg"]).default("none").meta({ description: "`borg`: archive the source first (needs a `backup` section on this host)." }),
});

export const migrationsSection = z.array(migrationSection).default([]).meta({ description: "Data migrations of this host's services." });

/** Each migration moves a bind mount of a service of this stack to a path of its own. */
export const migrationsRule: CrossRule = (c, ctx) => {
  const migrations = listOf(c.migrations);
  checkUnique(ctx, migrations, {
    key: (m) => m?.name,
    at: (i) => ["migrations", i, "name"],
    input: (m) => m?.name,
    message: (first) => `a unique name (migrations[${first}] has it)`,
  });
  const paths = (m: (typeof migrations)[number]) =>
    typeof m?.source === "string" && typeof m.destination === "string" ? { src: m.source, dst: m.destination } : undefined;
  checkUnique(ctx, migrations, {
    key: (m) => paths(m)?.dst,
    at: (i) => ["migrations", i, "destination"],
    input: (m) => m?.destination,
    message: (first) => `a destination no other migration uses (migrations[${first}])`,
  });
  migrations.forEach((m, i) => {
    const p = paths(m);
    if (p) {
      if (inside(p.dst, p.src) || inside(p.src, p.dst)) {
        ctx.addIssue({
          code: "custom",
          path: ["migrations", i, "destination"],
          message: `a path neither equal to nor inside the source ${p.src}, nor containing it`,
          input: p.dst,
        });
      }
      if (typeof m?.mount === "string" && !inside(p.dst, m.mount)) {
        ctx.addIssue({ code: "custom", path: ["migrations", i, "mount"], message: `the mount point that holds the destination ${p.dst}`, input: m.mount });
      }
    }
    const svc = typeof m?.service === "string" ? c.services?.[m.service] : undefined;
    if (!svc) {
      ctx.addIssue({
        code: "custom",
        path: ["migrations", i, "service"],
        message: `a service of this stack (${listOrNone(Object.keys(c.services ?? {}))})`,
        input: m?.service,
      });
    } else if (!listOf(svc.mounts).some((mt) => mt?.source === m?.source)) {
      ctx.addIssue({
        code: "custom",
        path: ["migrations", i, "source"],
        message: `a path that service ${String(m?.service)} mounts (its bind mounts: ${listOrNone(listOf(svc.mounts).map((mt) => mt?.source))})`,
        input: m?.source,
      });
    }
    if (m?.snapshot === "borg" && c.backup === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["migrations", i, "snapshot"],
        message: "'none', or a backup section: snapshot 'borg' archives into this host's repository",
        input: "borg",
      });
    }
  });
};
