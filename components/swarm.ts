import * as pulumi from "@pulumi/pulumi";
import type { SwarmConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";

export interface SwarmArgs {
  readonly access: HostAccess;
  readonly swarm: SwarmConfig;
  /**
   * What init or join waits for (dockerd running on its final configuration). Set on the
   * children themselves: a component's dependsOn does not reach them.
   */
  readonly after: readonly pulumi.Resource[];
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
 * attachable overlay network (network-ensure.sh: created when missing, one made by hand with the
 * same options used as it is), and the outputs a worker needs (the join token as a secret). On a
 * worker: the manager's outputs through a StackReference, and a join that is a no-op when the
 * host is already in that swarm. None has a delete step: leaving a swarm (or destroying it, on
 * the manager) and removing the network the services use are the operator's decisions, not side
 * effects of `pulumi destroy`.
 */
export class Swarm extends pulumi.ComponentResource {
  /** Name of the overlay network containers attach to. */
  public readonly networkName: pulumi.Output<string>;
  /** The membership command (init or join). */
  public readonly membership: pulumi.Resource;
  /** What a container on the overlay waits for: the network exists (manager) or the host joined (worker). */
  public readonly ready: pulumi.Resource;
  /** Manager only. */
  public readonly manager?: ManagerOutputs;

  constructor(name: string, args: SwarmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:Swarm", name, {}, opts);
    const { swarm, access } = args;
    if (swarm.role === "manager") {
      const init = hostCommand(
        `${name}-init`,
        { access, script: "swarm-init", createArgs: [swarm.advertiseAddress], triggers: [sha256(swarm.advertiseAddress)], secretStdout: true },
        { parent: this, dependsOn: [...args.after] },
      );
      const info = init.stdout.apply(parseInitOutput);
      const network = swarm.network ?? { name: "optimized-swarm", encrypted: false };
      const networkArgs = [network.name, network.encrypted ? "1" : "0"];
      const overlay = hostCommand(
        `${name}-network`,
        { access, script: "network-ensure", createArgs: networkArgs, triggers: [sha256(networkArgs.join(" "))] },
        { parent: this, dependsOn: [init] },
      );
      this.membership = init;
      this.ready = overlay;
      this.networkName = pulumi.output(network.name);
      this.manager = {
        swarmManagerAddress: pulumi.unsecret(info.apply((i) => i.managerAddress)),
        swarmManagerNodeId: pulumi.unsecret(info.apply((i) => i.nodeId)),
        swarmWorkerToken: pulumi.secret(info.apply((i) => i.workerToken)),
        overlayNetwork: this.networkName,
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
        { parent: this, dependsOn: [...args.after] },
      );
      this.ready = this.membership;
      this.networkName = ref.requireOutput("overlayNetwork") as pulumi.Output<string>;
    }
    this.registerOutputs({ networkName: this.networkName });
  }
}
