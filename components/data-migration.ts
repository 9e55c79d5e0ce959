import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { MigrationConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";

/** The backup component's repository, which `snapshot: borg` archives the source into. */
export interface BorgTarget {
  readonly host: string;
  readonly name: string;
  readonly path: string;
}

export interface DataMigrationArgs {
  readonly access: HostAccess;
  readonly migration: MigrationConfig;
  /** The service's new container, created stopped with the destination mounted: started at the cut-over. */
  readonly container: docker.Container;
  /** The backup component's repository, for `snapshot: borg` (the door requires a backup section). */
  readonly borg?: BorgTarget;
  /** What the copy waits for besides the container (the host prepared: see ContainerService). */
  readonly after: readonly pulumi.Resource[];
}

/**
 * Moves a service's data directory (migrate.sh). `run`: pass 1 while the old container runs,
 * stop it, the final pass and its verification, then the new container (created stopped by
 * Pulumi, the destination mounted) is started on the copy and must become healthy, or the old one
 * runs on the untouched source again and the step fails (a failed step runs again on the next
 * `pulumi up`). `finalizeAfter(switch)`: the source becomes read-only and the migration is
 * recorded complete. There is no delete step: a migration is never undone by `pulumi destroy`,
 * and the source stays until the operator retires it.
 */
export class DataMigration extends pulumi.ComponentResource {
  /** Copy, verify, cut over. */
  public readonly run: pulumi.Resource;
  private readonly args: DataMigrationArgs;
  private readonly name: string;
  /**
   * What is moved where, hashed: the trigger of both steps. Changing it re-runs them, as does a
   * change of their command string (arguments or migrate.sh itself); a re-run of a recorded
   * migration is a no-op anyway.
   */
  private readonly trigger: string;

  constructor(name: string, args: DataMigrationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:DataMigration", name, {}, opts);
    this.name = name;
    this.args = args;
    const m = args.migration;
    this.trigger = sha256(JSON.stringify([m.name, m.source, m.destination]));
    const runArgs: pulumi.Input<string>[] = [
      "run",
      m.name,
      args.container.id,
      m.source,
      m.destination,
      m.mount ?? "-",
      String(m.marginPercent),
      String(m.healthTimeout),
      m.snapshot === "borg" && args.borg ? `borg:${args.borg.host}:${args.borg.name}:${args.borg.path}` : "none",
    ];
    this.run = hostCommand(
      `${name}-run`,
      { access: args.access, script: "migrate", createArgs: runArgs, triggers: [this.trigger] },
      { parent: this, dependsOn: [...args.after, args.container] },
    );
    this.registerOutputs({ source: m.source, destination: m.destination });
  }

  /** The step after the service's switch (a child of this component). */
  finalizeAfter(switched: pulumi.Resource): pulumi.Resource {
    const m = this.args.migration;
    return hostCommand(
      `${this.name}-finalize`,
      {
        access: this.args.access,
        script: "migrate",
        createArgs: ["finalize", m.name, this.args.container.id, m.source, m.destination, String(m.healthTimeout)],
        triggers: [this.trigger],
      },
      { parent: this, dependsOn: [switched] },
    );
  }
}
