import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { VolumeConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";

export interface StorageVolumesArgs {
  readonly access: HostAccess;
  /** The host's Docker provider. */
  readonly provider: docker.Provider;
  /** The volumes this host keeps. */
  readonly volumes: readonly VolumeConfig[];
}

/**
 * The host's Docker volumes: named `local` volumes and bind-backed ones
 * (`type=none,o=bind,device=<dir>`), each bind device directory made first by a remote command.
 *
 * Volumes that hold data are `protect`ed (`pulumi destroy` refuses) and `retainOnDelete` (if
 * Pulumi ever deletes or replaces one, the Docker volume and its data stay on the host). The
 * README says how to retire one on purpose.
 */
export class StorageVolumes extends pulumi.ComponentResource {
  /** Docker volumes by their name. */
  public readonly byName: ReadonlyMap<string, docker.Volume>;

  constructor(name: string, args: StorageVolumesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:StorageVolumes", name, {}, opts);
    const byName = new Map<string, docker.Volume>();
    for (const v of args.volumes) {
      let dir: pulumi.Resource | undefined;
      if (v.bind) {
        const dirArgs = [v.bind.device, v.bind.owner, v.bind.mode];
        dir = hostCommand(
          `${name}-${v.name}-dir`,
          { access: args.access, script: "ensure-dir", createArgs: dirArgs, triggers: [sha256(dirArgs.join("\n"))] },
          { parent: this },
        );
      }
      const volume = new docker.Volume(
        `${name}-${v.name}`,
        {
          name: v.name,
          driver: "local",
          ...(v.bind ? { driverOpts: { type: "none", o: "bind", device: v.bind.device } } : {}),
          // the policy pack exempts a volume from its protection rule only with this label
          labels: [{ label: "managed-by", value: "dgx-storage" }, ...(v.data ? [] : [{ label: "dgx-storage/holds-data", value: "false" }])],
        },
        {
          parent: this,
          provider: args.provider,
          protect: v.data,
          retainOnDelete: v.data,
          ...(dir ? { dependsOn: [dir] } : {}),
        },
      );
      byName.set(v.name, volume);
    }
    this.byName = byName;
    this.registerOutputs({ names: [...byName.keys()] });
  }
}
