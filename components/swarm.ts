import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { SwarmConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";

export interface SwarmArgs {
  readonly access: HostAccess;
  /** The host's Docker provider. */
  readonly provider: docker.Provider;
  readonly swarm: SwarmConfig;
}

/** swarm-init.sh's last stdout line: `{"nodeId","managerAddress","workerToken"}`. */
export function parseInitOutput(stdout: string): { nodeId: string; managerAddress: string; workerToken: string } {
  const last = (stdout ?? "").trim().split("\n").pop() ?? "";
  try {
    const v = JSON.parse(last) as Record<string, unknown>;
    if (typeof v.nodeId === "string" && typeof v.managerAddress === "string" && typeof v.workerToken === "string") {
      return { nodeId: v.nodeId, managerAddress: v.managerAddress, workerToken: v.workerToken };
    }
  } catch {
    // fall through to the error below
  }
  // the line holds the token: never quote it
  throw new Error("swarm-init printed no {nodeId, managerAddress, workerToken} line on stdout; see the command's stderr");
}

/** What a worker's stack needs from the manager's, exported by the manager's stack. */
export interface ManagerOutputs {
  readonly swarmManagerAddress: pulumi.Output<string>;
  readonly swarmManagerNodeId: pulumi.Output<string>;
  readonly swarmWorkerToken: pulumi.Output<string>;
  readonly overlayNetwork: pulumi.Output<string>;
}

/**
 * Swarm membership and the overlay network. On the manager: `docker swarm init` once, the
 * attachable overlay network, and the outputs a worker needs (the join token as a secret). On a
 * worker: the manager's outputs through a StackReference, and a join that is a no-op when the
 * host is already in that swarm. Neither has a delete step: leaving a swarm (or destroying it,
 * on the manager) is the operator's decision, not a side effect of `pulumi destroy`.
 */
export class Swarm extends pulumi.ComponentResource {
  /** Name of the overlay network containers attach to. */
  public readonly networkName: pulumi.Output<string>;
  /** The membership command (init or join): containers on the overlay wait for it. */
  public readonly membership: pulumi.Resource;
  /** Manager only. */
  public readonly manager?: ManagerOutputs;

  constructor(name: string, args: SwarmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:Swarm", name, {}, opts);
    const { swarm, access } = args;
    if (swarm.role === "manager") {
      const init = hostCommand(
        `${name}-init`,
        { access, script: "swarm-init", createArgs: [swarm.advertiseAddress], triggers: [sha256(swarm.advertiseAddress)], secretStdout: true },
        { parent: this },
      );
      const info = init.stdout.apply(parseInitOutput);
      const network = swarm.network ?? { name: "optimized-swarm", encrypted: false };
      const overlay = new docker.Network(
        `${name}-network`,
        {
          name: network.name,
          driver: "overlay",
          attachable: true,
          // docker network create --opt encrypted: IPsec between the hosts (see README)
          ...(network.encrypted ? { options: { encrypted: "" } } : {}),
          labels: [{ label: "managed-by", value: "dgx-storage" }],
        },
        { parent: this, provider: args.provider, dependsOn: [init] },
      );
      this.membership = init;
      this.networkName = overlay.name;
      this.manager = {
        swarmManagerAddress: pulumi.unsecret(info.apply((i) => i.managerAddress)),
        swarmManagerNodeId: pulumi.unsecret(info.apply((i) => i.nodeId)),
        swarmWorkerToken: pulumi.secret(info.apply((i) => i.workerToken)),
        overlayNetwork: overlay.name,
      };
    } else {
      if (!swarm.managerStack) throw new Error("swarm.managerStack is required on a worker (the config door checks this)");
      const ref = new pulumi.StackReference(`${name}-manager`, { name: swarm.managerStack }, { parent: this });
      const managerAddress = ref.requireOutput("swarmManagerAddress") as pulumi.Output<string>;
      const managerNodeId = ref.requireOutput("swarmManagerNodeId") as pulumi.Output<string>;
      this.membership = hostCommand(
        `${name}-join`,
        {
          access,
          script: "swarm-join",
          createArgs: [managerAddress, managerNodeId, swarm.advertiseAddress],
          triggers: [managerNodeId],
          secretStdin: ref.requireOutput("swarmWorkerToken") as pulumi.Output<string>,
        },
        { parent: this },
      );
      this.networkName = ref.requireOutput("overlayNetwork") as pulumi.Output<string>;
    }
    this.registerOutputs({ networkName: this.networkName });
  }
}
