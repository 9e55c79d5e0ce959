/** `network`: who may reach this host's published ports and swarm ports (the host firewall). */
import { z } from "zod";
import { cidr, checkListedOnce, type CrossRule } from "../primitives";

export const networkSection = z
  .strictObject({
    clients: z.array(cidr).min(1, "at least one client network").meta({
      description:
        "Networks (IPv4 CIDR) allowed to reach the services' published ports; every other source is dropped before Docker's own rules see the packet (docs/reach.md).",
    }),
  })
  .meta({
    description:
      "The host firewall (nftables table `inet dgx-storage`): published ports from `clients` only, swarm ports from `swarm.peer` only. Absent: no firewall is installed (and none is removed by hand).",
  });

/** The firewall needs the swarm peer when there is a swarm, and the peer is the other node. */
export const networkRule: CrossRule = (c, ctx) => {
  if (c.network === undefined) return;
  checkListedOnce(ctx, c.network.clients, ["network", "clients"], "a network");
  if (c.swarm !== undefined && c.swarm.peer === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["swarm", "peer"],
      message: "the other swarm node's address (with a network section the firewall lets the swarm ports in from it only)",
      input: undefined,
    });
  }
  const peer = c.swarm?.peer;
  if (typeof peer === "string" && peer === c.swarm?.advertiseAddress) {
    ctx.addIssue({ code: "custom", path: ["swarm", "peer"], message: "the other node's address, not this host's own advertiseAddress", input: peer });
  }
};
