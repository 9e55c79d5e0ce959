/** `monitoring`: usage, I/O wait, IOPS and container alerts, smartd, the fio baseline (plan phases 1.2, 2.2, 5). */
import { z } from "zod";
import { absolutePath, checkListedOnce, percent, type CrossRule } from "../primitives";

/** A warning and a critical level, warning at most critical. */
const levels = (warning: number, critical: number) =>
  z
    .strictObject({
      warning: percent.default(warning),
      critical: percent.default(critical),
    })
    .refine((l) => !(typeof l.warning === "number" && typeof l.critical === "number" && l.warning > l.critical), {
      message: "warning at most critical",
      path: ["warning"],
    });

/** fio's size syntax: digits and an optional K, M, G or T suffix. */
const fioSize = z
  .string()
  .regex(/^[1-9]\d*[KMGT]?$/, "a size in fio's syntax such as '4G' or '512M'")
  .meta({ title: "fio size such as '4G'" });

export const monitoringSection = z
  .strictObject({
    mounts: z.array(absolutePath).min(1, "at least one data mount").meta({
      description:
        "Data mount points (or directories: their filesystem) checked for usage and read live by `df` for capacity; each listed once, every `capacity.disks[].mount` among them.",
    }),
    nvmeDevices: z
      .array(
        z
          .string()
          .regex(/^\/dev\/[A-Za-z0-9_./:-]+$/, "a device path such as '/dev/nvme0n1'")
          .meta({ title: "device path" }),
      )
      .default([])
      .meta({ description: "NVMe devices smartd watches (the plan's `smartctl -a /dev/nvmeXn1` lines), each listed once; none: no smartd config." }),
    allowMissingDevices: z.boolean().default(false).meta({
      description:
        "Accept a smartd config whose devices this host does not have (test hosts without NVMe): the syntax is still checked by smartd, and smartd is not restarted on it.",
    }),
    temperatureCriticalC: z
      .number()
      .int("a whole number of degrees")
      .min(1, "at least 1")
      .max(119, "at most 119")
      .default(70)
      .meta({ title: "°C", description: "smartd alerts when a device is above this temperature (the plan: 70)." }),
    usage: levels(80, 90).default({ warning: 80, critical: 90 }).meta({ description: "Used space per data mount, percent (the plan: alert above 80%)." }),
    iowait: z
      .strictObject({
        warning: percent.default(20),
        critical: percent.default(50),
        sampleSeconds: z.number().int("a whole number").min(1, "at least 1").max(60, "at most 60").default(5),
      })
      .refine((l) => !(typeof l.warning === "number" && typeof l.critical === "number" && l.warning > l.critical), {
        message: "warning at most critical",
        path: ["warning"],
      })
      .default({ warning: 20, critical: 50, sampleSeconds: 5 })
      .meta({ description: 'CPU I/O wait, percent over `sampleSeconds`. The plan\'s 80 is out of reach on a many-core DGX (README "Disks").' }),
    iopsDropPercent: z
      .number()
      .int("a whole number")
      .min(1, "a percentage from 1 to 99")
      .max(99, "a percentage from 1 to 99")
      .default(50)
      .meta({ description: "Warn when random-read IOPS drop by more than this percent of the fio baseline (the plan: below 50%)." }),
    intervalMinutes: z
      .number()
      .int("a whole number")
      .min(1, "at least 1")
      .max(60, "at most 60")
      .default(5)
      .meta({ description: "Minutes between two alert checks." }),
    repeatMinutes: z
      .number()
      .int("a whole number")
      .min(1, "at least 1")
      .default(60)
      .meta({ description: "A persisting alert goes to the webhook again after this many minutes (the journal gets every check)." }),
    baseline: z
      .strictObject({
        paths: z
          .array(absolutePath)
          .min(1, "at least one path")
          .meta({ description: "Data paths measured, each on its own test file (removed afterwards), each listed once." }),
        size: fioSize.default("4G").meta({ description: "Test file size: well above the drive's cache on the DGX." }),
        runtimeSeconds: z
          .number()
          .int("a whole number")
          .min(1, "at least 1")
          .max(600, "at most 600")
          .default(30)
          .meta({ description: "Seconds per job (four jobs run one after the other)." }),
        trigger: z
          .string()
          .min(1, "a non-empty string")
          .default("1")
          .meta({ description: "Change this string to measure again on the next `pulumi up` (fio runs only when it, a path, the size or the time changes)." }),
      })
      .optional()
      .meta({ description: "The fio performance baseline (plan phase 1.2); absent: no baseline, no IOPS alert." }),
  })
  .meta({ description: "Storage monitoring; absent: no packages, alerts, smartd, baseline or live df." });

/** Lists without repeats. */
export const monitoringRule: CrossRule = (c, ctx) => {
  const mon = c.monitoring;
  if (mon === undefined) return;
  checkListedOnce(ctx, mon.mounts, ["monitoring", "mounts"], "a mount");
  checkListedOnce(ctx, mon.nvmeDevices, ["monitoring", "nvmeDevices"], "a device");
  checkListedOnce(ctx, mon.baseline?.paths, ["monitoring", "baseline", "paths"], "a path");
};
