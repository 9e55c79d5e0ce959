/** `maintenance`: TRIM of the SSDs (plan phase 5.1, "Enable TRIM for SSD optimization"). */
import { z } from "zod";
import { absolutePath, checkListedOnce, type CrossRule } from "../primitives";

export const maintenanceSection = z
  .strictObject({
    fstrim: z
      .strictObject({
        mounts: z
          .array(absolutePath)
          .default([])
          .meta({ description: "Mount points trimmed once on apply (fstrim trims whole filesystems: mount points, not directories), each listed once." }),
        timer: z
          .boolean()
          .default(true)
          .meta({ description: "Enable util-linux's weekly `fstrim.timer` (it trims every mounted filesystem that supports discard)." }),
      })
      .default({ mounts: [], timer: true }),
  })
  .meta({ description: "Maintenance; absent: no one-off trim, and fstrim.timer only with `monitoring`." });

export const maintenanceRule: CrossRule = (c, ctx) => {
  checkListedOnce(ctx, c.maintenance?.fstrim?.mounts, ["maintenance", "fstrim", "mounts"], "a mount");
};
