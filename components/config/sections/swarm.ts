/** `swarm`: the host's role in the Docker swarm of the two servers. */
import { z } from "zod";
import { address, dockerName, ipv4, type CrossRule } from "../primitives";

/** The overlay network's name when the manager's stack does not set one. */
export const DEFAULT_NETWORK = "optimized-swarm";

export const swarmSection = z
  .strictObject({
    role: z.enum(["manager", "worker"]).meta({ description: "`manager` initialises the swarm; `worker` joins the manager's." }),
    advertiseAddress: address.meta({ description: "Address other nodes reach this one on (the LAN address)." }),
    peer: z.string().regex(ipv4, "an IPv4 address").optional().meta({
      title: "IPv4 address",
      description:
        "The other swarm node's address: with a `network` section, the only source the firewall lets in on the swarm ports (2377/tcp, 7946/tcp+udp, 4789/udp, ESP). Required there.",
    }),
    managerStack: z
      .string()
      .regex(/^[\w.-]+\/[\w.-]+\/[\w.-]+$/, "a stack reference 'organization/project/stack'")
      .optional()
      .meta({ title: "org/project/stack", description: "Worker only (required there): the manager's stack, read through a StackReference." }),
    network: z
      .strictObject({
        name: dockerName.default(DEFAULT_NETWORK).meta({ description: "Name of the attachable overlay network." }),
        encrypted: z.boolean().default(false).meta({ description: "IPsec encryption of the data plane (README: cost and ports)." }),
      })
      .optional()
      .meta({
        description: "Manager only: the attachable overlay network the services share.",
        defaultText: `on the manager: \`{ name: ${DEFAULT_NETWORK}, encrypted: false }\``,
      }),
  })
  .meta({ description: "Swarm membership; absent: the host stays out of the swarm." });

/** A worker names its manager's stack and creates no network; the manager names no manager. */
export const swarmRule: CrossRule = (c, ctx) => {
  if (c.swarm?.role === "worker" && c.swarm.network !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["swarm", "network"],
      message: "no network on a worker: the manager creates the overlay network",
      input: c.swarm.network,
    });
  }
  if (c.swarm?.role === "worker" && !c.swarm.managerStack) {
    ctx.addIssue({
      code: "custom",
      path: ["swarm", "managerStack"],
      message: "the manager's stack (e.g. 'organization/dgx-storage/sark') on a worker",
      input: undefined,
    });
  }
  if (c.swarm?.role === "manager" && c.swarm.managerStack) {
    ctx.addIssue({
      code: "custom",
      path: ["swarm", "managerStack"],
      message: "no managerStack on the manager itself",
      input: c.swarm.managerStack,
    });
  }
};
