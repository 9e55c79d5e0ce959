import * as pulumi from "@pulumi/pulumi";
import type { HostConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { firewallSpec } from "./plan/host";
import { sha256 } from "./render/command";
import { FIREWALL_FILE, FIREWALL_UNIT, renderFirewall, renderFirewallUnit } from "./render/firewall";

export interface HostFirewallArgs {
  readonly access: HostAccess;
  /** The host's config: its `network` section, the swarm peer and the published ports. */
  readonly config: HostConfig;
  /** What the firewall waits for: nftables installed (the packages step). */
  readonly after: readonly pulumi.Resource[];
}

/**
 * The host firewall (firewall.sh): the nftables table `inet dgx-storage` that lets the swarm
 * ports in from the peer only and the published ports from the client networks only, loaded now
 * and at every boot by its unit; `pulumi destroy` removes table and unit. Re-run only when the
 * ruleset or the unit changes (their hash is the trigger).
 */
export class HostFirewall extends pulumi.ComponentResource {
  /** The ruleset file's text (for synth and review). */
  public readonly ruleset: string;
  public readonly unit: string;
  public readonly apply: pulumi.Resource;

  constructor(name: string, args: HostFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:HostFirewall", name, {}, opts);
    this.ruleset = renderFirewall(firewallSpec(args.config));
    this.unit = renderFirewallUnit();
    this.apply = hostCommand(
      `${name}-apply`,
      {
        access: args.access,
        script: "firewall",
        createArgs: ["apply", this.ruleset, this.unit],
        deleteArgs: ["remove"],
        triggers: [sha256(this.ruleset + this.unit)],
      },
      { parent: this, dependsOn: [...args.after] },
    );
    this.registerOutputs({ file: FIREWALL_FILE, unit: FIREWALL_UNIT });
  }
}
