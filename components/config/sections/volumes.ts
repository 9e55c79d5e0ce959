/** `volumes`: the Docker volumes of this host, named or bind-backed. */
import { z } from "zod";
import { absolutePath, checkOnThisHost, checkUnique, dockerName, hostName, listOf, type CrossRule } from "../primitives";

export const volumeSection = z.strictObject({
  name: dockerName.meta({ description: "Docker volume name, unique per host." }),
  host: hostName.meta({ description: "The host that keeps it: must be this stack's host." }),
  bind: z
    .strictObject({
      device: absolutePath.meta({ description: "The host directory the volume binds; no two volumes bind the same one." }),
      owner: z
        .string()
        .regex(/^\d{1,10}:\d{1,10}$/, "numeric 'uid:gid'")
        .default("0:0")
        .meta({ title: "numeric 'uid:gid'", description: "Owner of the device directory." }),
      mode: z
        .string()
        .regex(/^0?[0-7]{3,4}$/, "an octal mode such as '0750'")
        .default("0755")
        .meta({ title: "octal mode", description: "Mode of the device directory." }),
    })
    .optional()
    .meta({ description: "Bind-backed volume (`driver: local`, `type=none,o=bind,device=...`).", defaultText: "none (a named volume)" }),
  data: z
    .boolean()
    .default(true)
    .meta({ description: "Holds data: protected from `pulumi destroy` and kept on the host if Pulumi ever deletes or replaces it (protect, retainOnDelete)." }),
});

export const volumesSection = z.array(volumeSection).default([]).meta({ description: "Docker volumes of this host." });

/** Volume names and bind devices are unique; every volume is this stack's host's. */
export const volumesRule: CrossRule = (c, ctx) => {
  const here = c.host?.name;
  const volumes = listOf(c.volumes);
  checkUnique(ctx, volumes, {
    key: (v) => v?.name,
    at: (i) => ["volumes", i, "name"],
    input: (v) => v?.name,
    message: (first) => `a unique volume name (volumes[${first}] has it already)`,
  });
  volumes.forEach((v, i) => checkOnThisHost(ctx, here, v?.host, ["volumes", i, "host"], "a volume belongs in the stack file of the host that keeps it"));
  checkUnique(ctx, volumes, {
    key: (v) => v?.bind?.device,
    at: (i) => ["volumes", i, "bind", "device"],
    input: (v) => v?.bind?.device,
    message: (first) => `a device no other volume uses (volumes[${first}] binds it)`,
  });
};
