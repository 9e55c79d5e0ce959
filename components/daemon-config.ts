import * as pulumi from "@pulumi/pulumi";
import type { DaemonSettings } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";
import { daemonJsonFragment, renderJson } from "./render/daemon-json";

export interface DaemonConfigArgs {
  /** How to reach the host. */
  readonly access: HostAccess;
  /** The daemon.json settings from the stack config. */
  readonly settings: DaemonSettings;
  /** What the merge waits for (the host's packages). Set on the child itself. */
  readonly after: readonly pulumi.Resource[];
}

/**
 * The keys this project manages in /etc/docker/daemon.json, merged into the host's file (foreign
 * keys such as NVIDIA's runtimes survive), then a dockerd restart as its own step, so that
 * `pulumi preview` shows that containers will stop.
 */
export class DaemonConfig extends pulumi.ComponentResource {
  /** The managed keys as JSON text (what the merge receives). */
  public readonly fragment: string;
  /** sha256 of `fragment`: the trigger of both commands. */
  public readonly fragmentHash: string;
  public readonly merge: pulumi.Resource;
  public readonly restart: pulumi.Resource;

  constructor(name: string, args: DaemonConfigArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:DaemonConfig", name, {}, opts);
    this.fragment = renderJson(daemonJsonFragment(args.settings));
    this.fragmentHash = sha256(this.fragment);
    const compact = JSON.stringify(JSON.parse(this.fragment));

    this.merge = hostCommand(
      `${name}-merge`,
      {
        access: args.access,
        script: "daemon-json-merge",
        createArgs: ["apply", compact],
        deleteArgs: ["remove"],
        triggers: [this.fragmentHash],
      },
      { parent: this, dependsOn: [...args.after] },
    );
    // No delete: restarting dockerd on `pulumi destroy` would stop every container by surprise;
    // the restored file takes effect at the next restart the operator chooses.
    this.restart = hostCommand(
      `${name}-restart`,
      {
        access: args.access,
        script: "docker-restart",
        createArgs: [args.settings.storageDriver],
        triggers: [this.fragmentHash],
      },
      { parent: this, dependsOn: [this.merge] },
    );
    this.registerOutputs({ fragmentHash: this.fragmentHash });
  }
}
