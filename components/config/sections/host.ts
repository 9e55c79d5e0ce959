/** `host`: the machine this stack manages and how the operator's machine reaches it. */
import { z } from "zod";
import { address, hostKey, hostName, port, posixUser } from "../primitives";

export const hostSection = z
  .strictObject({
    name: hostName.meta({ description: "Short name of the host; also the Pulumi stack name." }),
    address: address.meta({ description: "Address the operator's machine reaches the host on (SSH, Docker over SSH)." }),
    ssh: z
      .strictObject({
        user: posixUser.meta({ description: "SSH login (`maxvamp` on both servers)." }),
        port: port.default(22).meta({ description: "SSH port." }),
        hostKey: hostKey.meta({
          description: "Pinned host key (from `ssh-keyscan`): every remote command refuses any other. `unpinned` allows `pulumi preview` only.",
        }),
      })
      .meta({ description: "How SSH reaches the host." }),
    sudo: z
      .boolean()
      .optional()
      .meta({ description: "Run host commands through `sudo -n` (needed unless `ssh.user` is root).", defaultText: "true unless `ssh.user` is root" }),
  })
  .meta({ description: "The host this stack manages." });
