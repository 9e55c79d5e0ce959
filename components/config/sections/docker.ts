/** `docker.daemon`: the keys this stack manages in the host's /etc/docker/daemon.json. */
import { z } from "zod";
import type { CrossRule } from "../primitives";

const logSize = z
  .string()
  .regex(/^[1-9]\d*[kmg]$/, "a size such as '100m' (digits then k, m or g)")
  .meta({ title: "size such as '100m'" });

const daemonSection = z.strictObject({
  storageDriver: z.enum(["overlay2", "btrfs", "zfs", "fuse-overlayfs", "vfs"]).default("overlay2").meta({ description: "`storage-driver`." }),
  logDriver: z.enum(["json-file", "local", "journald", "syslog", "none"]).default("json-file").meta({ description: "`log-driver`." }),
  logOpts: z
    .strictObject({
      maxSize: logSize.default("100m").meta({ description: "`log-opts.max-size` (json-file, local)." }),
      maxFile: z.number().int("a whole number").min(1, "at least 1").max(100, "at most 100").default(5).meta({ description: "`log-opts.max-file`." }),
    })
    .default({ maxSize: "100m", maxFile: 5 })
    .meta({ description: "`log-opts` for file-based drivers: bounded logs so containers cannot fill the disk." }),
  liveRestore: z.boolean().default(false).meta({
    description:
      "`live-restore`: containers keep running while dockerd restarts. Docker refuses it on a swarm node, so it is rejected together with a swarm role.",
  }),
});

export const dockerSection = z.strictObject({
  daemon: daemonSection.default(daemonSection.parse({})).meta({ description: "The managed keys of daemon.json, merged into the host's own file." }),
});

/** dockerd refuses live-restore in swarm mode. */
export const dockerRule: CrossRule = (c, ctx) => {
  if (c.swarm && c.docker?.daemon?.liveRestore === true) {
    ctx.addIssue({
      code: "custom",
      path: ["docker", "daemon", "liveRestore"],
      message: `false on a swarm node (swarm.role is '${String(c.swarm.role)}'): dockerd refuses live-restore together with swarm mode`,
      input: true,
    });
  }
};
