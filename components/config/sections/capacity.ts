/** `capacity`: the plan's disk figures and growth, projected (components/render/capacity.ts). */
import { z } from "zod";
import { absolutePath, EVEN_IF_INVALID, listOf, listOrNone, type CrossRule } from "../primitives";

const diskSection = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, "a lower-case name")
    .meta({ title: "lower-case name", description: "Role of the disk in the plan, e.g. primary or backup." }),
  mount: absolutePath.meta({ description: "Mount point whose usage is measured; one of `monitoring.mounts`." }),
  sizeTB: z.number().positive("a size above 0").meta({ title: "TB", description: "Size in TB, as the plan states it." }),
  usedTB: z.number().nonnegative("0 or more").meta({ title: "TB", description: "Used TB at the time of the plan; at most `sizeTB`." }),
});

const isoDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "a date 'YYYY-MM-DD'")
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), {
    message: "a real calendar date 'YYYY-MM-DD'",
  })
  .meta({ title: "date 'YYYY-MM-DD'" });

export const capacitySection = z
  .strictObject({
    disks: z.array(diskSection).min(1, "at least one disk").meta({ description: "The plan's disk figures." }),
    annualGrowth: z
      .number()
      .min(0, "0 or more")
      .max(10, "at most 10 (1000%)")
      .meta({ title: "fraction", description: "Expected growth of used space per year, as a fraction (0.2 = 20%)." }),
    model: z.enum(["compound", "linear", "points"]).default("compound").meta({
      description:
        "How `annualGrowth` applies (components/render/capacity.ts): `compound` grows the used bytes by the rate each year; `linear` adds rate x today's usage each year (the plan's +20/+40/+60% table); `points` adds rate x 100 percentage points a year.",
    }),
    asOf: isoDay.optional().meta({
      description:
        "The day the disks' `usedTB` figures were read: the start of the projection from config. Fixed, so the stack outputs and synth's chart do not change from one day to the next.",
      defaultText: "the day the program runs",
    }),
  })
  .superRefine((c, ctx) => {
    listOf(c.disks).forEach((d, i) => {
      if (typeof d?.usedTB === "number" && typeof d.sizeTB === "number" && d.usedTB > d.sizeTB) {
        ctx.addIssue({ code: "custom", path: ["disks", i, "usedTB"], message: `at most sizeTB (${d.sizeTB})`, input: d.usedTB });
      }
    });
  }, EVEN_IF_INVALID)
  .meta({ description: "Capacity planning (plan phase 6); absent: no projections." });

/** Every planned disk is watched: the live df reading and the usage alert cover the disks that are planned. */
export const capacityRule: CrossRule = (c, ctx) => {
  if (c.monitoring === undefined) return;
  const watched = listOf(c.monitoring.mounts);
  listOf(c.capacity?.disks).forEach((d, i) => {
    if (typeof d?.mount === "string" && !watched.includes(d.mount)) {
      ctx.addIssue({
        code: "custom",
        path: ["capacity", "disks", i, "mount"],
        message: `a mount of monitoring.mounts (${listOrNone(watched)}): the live df reading and the usage alert cover the disks that are planned`,
        input: d.mount,
      });
    }
  });
};
