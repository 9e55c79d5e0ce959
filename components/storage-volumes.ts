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
  /** What the directories and volumes wait for (dockerd running on its final configuration). */
  readonly after: readonly pulumi.Resource[];
}

/**
 * The host's Docker volumes: named `local` volumes and bind-backed ones
 * (`type=none,o=bind,device=<dir>`), each bind device directory made first by a remote command.
 *
 * Volumes that hold data are `protect`ed (`pulumi destroy` refuses) and `retainOnDelete` (if
 * Pulumi ever deletes or replaces one, the Docker volume and its data stay on the host). The
 * README says how to retire one on purpose.
 *
 * A volume that exists already (the plan's phase 2 makes them by hand) is used as it is: Docker's
 * volume create returns the existing volume of that name and driver, and the preflight command
 * refuses one whose options differ. They carry no `managed-by` label for that reason: labels are
 * ForceNew in the provider (resource_docker_volume.go) and its Read records the volume's real
 * labels, so a label that a hand-made volume lacks would ask for a replacement of a protected
 * volume on the next `pulumi up`, which fails. Only a scratch volume (`data: false`) carries the
 * label that exempts it from the policy pack's protection rule.
 */
export class StorageVolumes extends pulumi.ComponentResource {
  /** Docker volumes by their name. */
  public readonly byName: ReadonlyMap<string, docker.Volume>;
  /** Every resource of this component (directories and volumes): what a service waits for. */
  public readonly created: readonly pulumi.Resource[];

  constructor(name: string, args: StorageVolumesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:StorageVolumes", name, {}, opts);
    const byName = new Map<string, docker.Volume>();
    const created: pulumi.Resource[] = [];
    for (const v of args.volumes) {
      let dir: pulumi.Resource | undefined;
      if (v.bind) {
        const dirArgs = [v.bind.device, v.bind.owner, v.bind.mode];
        dir = hostCommand(
          `${name}-${v.name}-dir`,
          { access: args.access, script: "ensure-dir", createArgs: dirArgs, triggers: [sha256(dirArgs.join("\n"))] },
          { parent: this, dependsOn: [...args.after] },
        );
      }
      const volume = new docker.Volume(
        `${name}-${v.name}`,
        {
          name: v.name,
          driver: "local",
          ...(v.bind ? { driverOpts: { type: "none", o: "bind", device: v.bind.device } } : {}),
          // the policy pack exempts a volume from its protection rule only with this label
          ...(v.data ? {} : { labels: [{ label: "dgx-storage/holds-data", value: "false" }] }),
        },
        {
          parent: this,
          provider: args.provider,
          protect: v.data,
          retainOnDelete: v.data,
          dependsOn: [...args.after, ...(dir ? [dir] : [])],
        },
      );
      byName.set(v.name, volume);
      created.push(...(dir ? [dir] : []), volume);
    }
    this.byName = byName;
    this.created = created;
    this.registerOutputs({ names: [...byName.keys()] });
  }
}
