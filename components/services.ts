import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ServiceConfig } from "./config";

export interface ContainerServiceArgs {
  /** The host's Docker provider. */
  readonly provider: docker.Provider;
  readonly service: ServiceConfig;
  /** Volumes of this host, by name (a mount whose source is not an absolute path names one). */
  readonly volumes: ReadonlyMap<string, docker.Volume>;
  /** Overlay network to attach to (when the service is on the overlay). */
  readonly networkName?: pulumi.Input<string>;
  /** Resources the container must wait for (swarm membership, a migration, ...). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/**
 * One service as a plain container on the host's engine (not a swarm service: `docker stack
 * deploy` ignores the GPU reservations the plan's compose file relies on), attached to the
 * overlay network, with its image pinned and pulled, a restart policy, a health check that
 * `pulumi up` waits for, and `deleteBeforeReplace` so a replacement never collides with the old
 * container on its name, a published port or a GPU.
 */
export class ContainerService extends pulumi.ComponentResource {
  public readonly container: docker.Container;
  /** The image actually run (its id when pulled). */
  public readonly image: pulumi.Output<string>;

  constructor(name: string, args: ContainerServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:ContainerService", name, {}, opts);
    const s = args.service;
    this.image = s.pull
      ? new docker.RemoteImage(`${name}-image`, { name: s.image, keepLocally: true }, { parent: this, provider: args.provider }).imageId
      : pulumi.output(s.image);

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

    this.container = new docker.Container(
      `${name}-container`,
      {
        name: s.containerName,
        image: this.image,
        restart: "unless-stopped",
        ...(s.command ? { command: [...s.command] } : {}),
        envs: Object.entries(s.env).map(([k, v]) => `${k}=${v}`),
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
              wait: true,
              waitTimeout: s.waitTimeout,
            }
          : {}),
        labels: [{ label: "managed-by", value: "dgx-storage" }],
      },
      { parent: this, provider: args.provider, deleteBeforeReplace: true, ...(args.dependsOn?.length ? { dependsOn: [...args.dependsOn] } : {}) },
    );
    this.registerOutputs({ containerName: this.container.name });
  }
}
