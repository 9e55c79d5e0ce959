/** `sysctl`: kernel parameters written to /etc/sysctl.d/ and applied. */
import { z } from "zod";
import { EVEN_IF_INVALID } from "../primitives";

/** Known kernel parameters with their valid ranges; others must still be well-formed. */
const SYSCTL_RANGES: Record<string, [number, number]> = {
  // 0..200 since Linux 5.8 (Documentation/admin-guide/sysctl/vm.rst)
  "vm.swappiness": [0, 200],
  "vm.vfs_cache_pressure": [0, 1000],
  "vm.dirty_ratio": [0, 100],
  "vm.dirty_background_ratio": [0, 100],
};

const ranges = Object.entries(SYSCTL_RANGES)
  .map(([k, [lo, hi]]) => `\`${k}\` ${lo}..${hi}`)
  .join(", ");

export const SYSCTL_DEFAULTS = { "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 };

export const sysctlSection = z
  .record(
    z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$/, "a kernel parameter name such as 'vm.swappiness'"),
    z.union([z.number().int("a whole number"), z.string().regex(/^[\w .:/-]+$/, "a plain value")]),
  )
  .superRefine((rec, ctx) => {
    for (const [key, value] of Object.entries(rec)) {
      const range = SYSCTL_RANGES[key];
      if (!range) continue;
      if (typeof value !== "number" || value < range[0] || value > range[1]) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `a whole number from ${range[0]} to ${range[1]}`,
          input: value,
        });
      }
    }
  }, EVEN_IF_INVALID)
  .default(SYSCTL_DEFAULTS)
  .meta({ title: "map of name to number or plain string", description: `Kernel parameters by name (\`sysctl.<name>\`); ranges checked: ${ranges}.` });
