import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { MigrationConfig, ServiceConfig, ServiceSecretKey } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import { DataMigration, type BorgTarget } from "./data-migration";
import { sha256 } from "./render/command";

export interface ContainerServiceArgs {
  readonly access: HostAccess;
  /** The host's Docker provider. */
  readonly provider: docker.Provider;
  readonly service: ServiceConfig;
  /** The values of the secrets the service's `secretEnv` names, as Pulumi secrets. */
  readonly secrets?: Readonly<Partial<Record<ServiceSecretKey, pulumi.Output<string>>>>;
  /** Volumes of this host, by name (a mount whose source is not an absolute path names one). */
  readonly volumes: ReadonlyMap<string, docker.Volume>;
  /** Overlay network to attach to (when the service is on the overlay). */
  readonly networkName?: pulumi.Input<string>;
  /** The migrations that move this service's data (their destinations are mounted already). */
  readonly migrations: readonly MigrationConfig[];
  /** The backup repository a migration archives its source into first (`snapshot: borg`). */
  readonly borg?: BorgTarget;
  /**
   * What every host step of this service waits for: the host is prepared (packages, dockerd
   * restarted on its final configuration, kernel settings, volumes, swarm and network, the borg
   * repository and its units). Set on each child: a component's own dependsOn does not reach its
   * children (the SDK sends a resource's own dependsOn only).
   */
  readonly after: readonly pulumi.Resource[];
}

/**
 * One service as a plain container on the host's engine (not a swarm service: `docker stack
 * deploy` ignores the GPU reservations the plan's compose file relies on), and the hand-over of
 * the service to it from whatever runs it today:
 *
 * 1. `-adopt`: the container that holds the name, if it is not this project's (the compose one
 *    the servers run today) or is this project's of another configuration (the one a
 *    replacement retires), is renamed (`<name>-pre-dgx-storage`, `<name>-previous`) and goes on
 *    running (container-adopt.sh), so that the name is free: the provider never adopts a
 *    container it does not have in its state, and Docker refuses a taken name. Its trigger is
 *    the container's configuration, so it runs before every creation of the container.
 * 2. `-migrate-<m>-dir`: each migration's destination exists before the container that mounts it.
 * 3. `-container`: created **stopped** (`start: false`): creating it takes nothing from the
 *    running service (no port is bound, no GPU taken), so nothing stops before the data is ready.
 * 4. `-migrate-<m>-run`: the migration copies while the old container runs, stops it for the
 *    final pass, and starts the new container on the verified copy (or the old one again).
 * 5. `-switch`: stops the predecessor (if still running), starts the new container, waits for it
 *    to be healthy, and gives the service back to the predecessor if it is not
 *    (container-switch.sh); it runs in a transient systemd unit on the host, so it completes or
 *    rolls back even if `pulumi up` dies. Its input is the container's id: a replaced container
 *    is switched to again. So a service that ran before an apply runs after it, on the first
 *    apply as on every later replacement.
 * 6. `-migrate-<m>-finalize`: the source becomes read-only and the migration is recorded complete.
 */
export class ContainerService extends pulumi.ComponentResource {
  public readonly container: docker.Container;
  /** The hand-over to the container: whatever must run after the service is up waits for it. */
  public readonly switch: pulumi.Resource;
  /** The last step of this service (the switch, or the migrations' finalize steps). */
  public readonly done: readonly pulumi.Resource[];
  /** The image actually run (its id when pulled). */
  public readonly image: pulumi.Output<string>;

  constructor(name: string, args: ContainerServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:ContainerService", name, {}, opts);
    const s = args.service;
    const access = args.access;
    const child = { parent: this, dependsOn: [...args.after] };
    const pulled = s.pull
      ? new docker.RemoteImage(`${name}-image`, { name: s.image, keepLocally: true }, { parent: this, provider: args.provider, dependsOn: [...args.after] })
      : undefined;
    this.image = pulled ? pulled.imageId : pulumi.output(s.image);

    const mounts = s.mounts.map((m) => {
      if (m.source.startsWith("/")) return { type: "bind", source: m.source, target: m.target, readOnly: m.readOnly };
      const volume = args.volumes.get(m.source);
      if (!volume) throw new Error(`volume ${m.source} is not declared on this host (the config door checks this)`);
      return { type: "volume", source: volume.name, target: m.target, readOnly: m.readOnly };
    });
    const gpus = s.gpus
      ? [
          s.gpus.deviceIds
            ? { driver: "nvidia", deviceIds: [...s.gpus.deviceIds], capabilities: ["gpu"] }
            : { driver: "nvidia", count: s.gpus.count, capabilities: ["gpu"] },
        ]
      : undefined;
    // The tokens join the environment as Pulumi secrets: the whole `envs` list is then a secret
    // (encrypted in the state, hidden in the diff), and they are never in a command string.
    const secretEnv = Object.entries(s.secretEnv).map(([k, key]) => {
      const value = args.secrets?.[key];
      if (!value) throw new Error(`services.${s.containerName}.secretEnv.${k}: the secret ${key} is not set (the config door checks this)`);
      return pulumi.secret(value).apply((v) => `${k}=${v}`);
    });
    const plainEnv = Object.entries(s.env).map(([k, v]) => `${k}=${v}`);
    const envs = secretEnv.length > 0 ? pulumi.secret(pulumi.all(secretEnv).apply((sec) => [...plainEnv, ...sec])) : plainEnv;
    // A new token must replace the container (Docker cannot change a container's environment),
    // so the configuration hash below covers the tokens: as a SHA-256 of each, from which a token
    // of 32+ random characters (the door's minimum) cannot be recovered. The label stays
    // readable in the diff and the adopt command's string stays reviewable.
    const secretDigest = pulumi.unsecret(pulumi.all(secretEnv).apply((sec) => sec.map((e) => sha256(e))));
    const containerArgs: docker.ContainerArgs = {
      name: s.containerName,
      image: this.image,
      restart: "unless-stopped",
      // created stopped, started by the switch (see above); with must_run false the provider's
      // Read does not turn a stopped container into a diff (resourceDockerContainerRead)
      start: false,
      mustRun: false,
      destroyGraceSeconds: s.stopGraceSeconds,
      ...(s.command ? { command: [...s.command] } : {}),
      envs,
      ports: s.ports.map((p) => ({ internal: p.target, external: p.published, protocol: p.protocol, ip: p.ip })),
      mounts,
      ...(gpus ? { deviceRequests: gpus } : {}),
      ...(s.shmSizeMb ? { shmSize: s.shmSizeMb } : {}),
      ...(s.overlay && args.networkName ? { networksAdvanced: [{ name: args.networkName, aliases: [s.containerName] }] } : {}),
      ...(s.healthcheck
        ? {
            healthcheck: {
              tests: [...s.healthcheck.test],
              interval: s.healthcheck.interval,
              timeout: s.healthcheck.timeout,
              retries: s.healthcheck.retries,
              startPeriod: s.healthcheck.startPeriod,
            },
          }
        : {}),
    };
    // The configuration's hash, in a label: container-adopt.sh tells a predecessor (this
    // project's container of another configuration) from the container it is about to create.
    // Of the declared service (its pinned image, not the pulled id) and the network: known in a
    // preview, so `pulumi preview --diff` shows the adopt command as it will run.
    const configHash = pulumi
      .all([pulumi.output(args.networkName ?? ""), secretDigest])
      .apply(([network, secrets]) => sha256(JSON.stringify(secrets.length > 0 ? { service: s, network, secrets } : { service: s, network })));
    const labelled: docker.ContainerArgs = {
      ...containerArgs,
      labels: [
        { label: "managed-by", value: "dgx-storage" },
        { label: "dgx-storage/config", value: configHash },
        // the policy pack's container-port-bound rule lets such a container publish on every interface
        ...(s.exposeToAll ? [{ label: "dgx-storage/expose-to-all", value: "true" }] : []),
      ],
    };

    // 1. free the name; runs again whenever the container is to be created again
    const adopt = hostCommand(`${name}-adopt`, { access, script: "container-adopt", createArgs: [s.containerName, configHash], triggers: [configHash] }, child);
    // 2. destinations exist before the container mounts them
    const dirs = args.migrations.map((m) =>
      hostCommand(
        `${name}-migrate-${m.name}-dir`,
        { access, script: "ensure-dir", createArgs: [m.destination, "0:0", "0700"], triggers: [sha256(m.destination)] },
        child,
      ),
    );
    // 3. the container, created stopped. retainOnDelete: when Pulumi replaces or deletes it, the
    // provider does not stop and remove it (resourceDockerContainerDelete would, by id, at once):
    // the adopt step has renamed it <name>-previous and it serves until the switch has the new
    // one healthy, and is the one the switch hands the service back to if not.
    this.container = new docker.Container(`${name}-container`, labelled, {
      parent: this,
      provider: args.provider,
      retainOnDelete: true,
      deleteBeforeReplace: true,
      dependsOn: [...args.after, adopt, ...dirs, ...(pulled ? [pulled] : [])],
    });
    // 4. the migrations' copy and cut-over
    const moves = args.migrations.map(
      (m) =>
        new DataMigration(
          `${name}-migrate-${m.name}`,
          { access, migration: m, container: this.container, ...(args.borg ? { borg: args.borg } : {}), after: args.after },
          { parent: this },
        ),
    );
    // 5. the switch
    const switchArgs = [
      s.containerName,
      this.container.id,
      String(s.waitTimeout),
      String(s.stopGraceSeconds),
      ...args.migrations.flatMap((m) => ["--migration", m.name]),
    ];
    this.switch = hostCommand(
      `${name}-switch`,
      { access, script: "container-switch", createArgs: switchArgs, triggers: [sha256(s.containerName)] },
      { parent: this, dependsOn: [...args.after, this.container, ...moves.map((m) => m.run)] },
    );
    // 6. finalize
    const finals = moves.map((m) => m.finalizeAfter(this.switch));
    this.done = finals.length > 0 ? finals : [this.switch];
    this.registerOutputs({ containerName: this.container.name });
  }
}
