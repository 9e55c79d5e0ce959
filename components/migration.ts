import * as pulumi from "@pulumi/pulumi";
import type { MigrationConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";

export interface DataMigrationArgs {
  readonly access: HostAccess;
  readonly migration: MigrationConfig;
  /** Name of the container that uses the data (stopped, cloned for a trial, then replaced). */
  readonly containerName: string;
  /** The backup component's repository, for `snapshot: borg` (the door requires a backup section). */
  readonly borg?: { readonly host: string; readonly name: string; readonly path: string };
}

/**
 * Moves a service's data directory (migrate.sh): the `run` step copies while the service runs,
 * stops it, copies the rest, verifies, and checks a trial container on the destination; the
 * service's container, whose mount already points at the destination, is replaced after it
 * (it depends on `run`); `finalizeAfter(container)` then confirms the new container is healthy,
 * makes the source read-only and records the migration complete. There is no delete step: a
 * migration is never undone by `pulumi destroy`, and the source stays until the operator
 * retires it.
 */
export class DataMigration extends pulumi.ComponentResource {
  /** Copy, verify and trial: the container must depend on it. */
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
    const runArgs = [
      "run",
      m.name,
      args.containerName,
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
      { parent: this },
    );
    this.registerOutputs({ source: m.source, destination: m.destination });
  }

  /** The step after the container's replacement (a child of this component). */
  finalizeAfter(container: pulumi.Resource): pulumi.Resource {
    const m = this.args.migration;
    return hostCommand(
      `${this.name}-finalize`,
      {
        access: this.args.access,
        script: "migrate",
        createArgs: ["finalize", m.name, this.args.containerName, m.source, m.destination, String(m.healthTimeout)],
        triggers: [this.trigger],
      },
      { parent: this, dependsOn: [container] },
    );
  }
}
