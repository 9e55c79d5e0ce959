import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Backup } from "./backup";
import { UNPINNED_HOST_KEY, type HostConfig } from "./config";
import { DaemonConfig } from "./daemon-config";
import type { HostAccess } from "./host-command";
import { KernelTuning } from "./kernel-tuning";
import { DataMigration } from "./migration";
import { knownHostsName } from "./render/command";
import type { DriftExpectation } from "./render/drift";
import { Monitoring } from "./monitoring";
import { ContainerService } from "./services";
import { Swarm } from "./swarm";
import { StorageVolumes } from "./volumes";

/** A file the stack sends to the host, as synth writes it for review. */
export interface HostFile {
  /** Path on the host (or, for fragments merged into a host file, that file's path). */
  readonly path: string;
  readonly content: string;
  /** `file`: the whole file; `managed-keys`: the keys merged into the host's own file. */
  readonly kind: "file" | "managed-keys";
}

export interface DgxHostArgs {
  /** The validated config of this host (from the config door). */
  readonly config: HostConfig;
  /** The SSH private key, as a Pulumi secret. */
  readonly sshPrivateKey: pulumi.Output<string>;
  /** The alert webhook URL, as a Pulumi secret; absent: alerts go to the journal only. */
  readonly alertWebhook?: pulumi.Output<string>;
  /** The borg repository passphrase, as a Pulumi secret; required with a `backup` section. */
  readonly borgPassphrase?: pulumi.Output<string>;
}

/**
 * `ssh` options for the Docker provider (it runs the system ssh client): the host key is pinned
 * from the stack config, with no known_hosts file to keep in sync. `KnownHostsCommand` needs
 * OpenSSH 8.5 or later on the machine that runs Pulumi. An unpinned key gets no command, so
 * strict checking refuses the connection.
 */
export function dockerSshOpts(config: HostConfig): string[] {
  const { address, ssh } = config.host;
  const opts = ["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"];
  if (ssh.hostKey !== UNPINNED_HOST_KEY) {
    opts.push("-o", `KnownHostsCommand=/bin/echo '${knownHostsName(address, ssh.port)} ${ssh.hostKey}'`);
  }
  return opts;
}

/** Everything one DGX host's storage stack declares. */
export class DgxHost extends pulumi.ComponentResource {
  public readonly access: HostAccess;
  public readonly daemon: DaemonConfig;
  public readonly kernel: KernelTuning;
  /** fstrim, SMART, alerts, the fio baseline and capacity (issue 7); absent without `monitoring` and `maintenance`. */
  public readonly monitoring?: Monitoring;
  /** borg: repository, schedules, off-site copy (issue 6); absent without `backup`. */
  public readonly backup?: Backup;
  public readonly provider: docker.Provider;
  public readonly volumes: StorageVolumes;
  public readonly swarm?: Swarm;
  public readonly services: ReadonlyMap<string, ContainerService>;
  /** What the host receives, for `npm run synth`. */
  public readonly hostFiles: readonly HostFile[];
  /** What the read-only drift probe checks on the host (`npm run drift`). */
  public readonly drift: DriftExpectation;

  constructor(name: string, args: DgxHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:DgxHost", name, {}, opts);
    const { config } = args;
    const { host } = config;
    this.access = {
      connection: {
        host: host.address,
        port: host.ssh.port,
        user: host.ssh.user,
        privateKey: args.sshPrivateKey,
        hostKey: host.ssh.hostKey,
      },
      sudo: host.sudo,
    };
    this.daemon = new DaemonConfig(`${name}-daemon`, { access: this.access, settings: config.docker.daemon }, { parent: this });
    this.kernel = new KernelTuning(`${name}-kernel`, { access: this.access, settings: config.sysctl }, { parent: this });
    if (config.monitoring || config.maintenance) {
      this.monitoring = new Monitoring(
        `${name}-monitoring`,
        {
          access: this.access,
          host: host.name,
          ...(config.monitoring ? { monitoring: config.monitoring } : {}),
          ...(config.maintenance ? { maintenance: config.maintenance } : {}),
          ...(config.capacity ? { capacity: config.capacity } : {}),
          containers: Object.values(config.services).map((s) => s.containerName),
          ...(args.alertWebhook ? { alertWebhook: args.alertWebhook } : {}),
        },
        { parent: this },
      );
    }

    if (config.backup) {
      if (!args.borgPassphrase) throw new Error("the backup section needs the secret borgPassphrase (pulumi config set --secret borgPassphrase)");
      this.backup = new Backup(
        `${name}-backup`,
        {
          access: this.access,
          host: host.name,
          backup: config.backup,
          passphrase: args.borgPassphrase,
          ...(this.monitoring?.webhook ? { alertWebhook: this.monitoring.webhook } : {}),
        },
        { parent: this },
      );
    }

    // Docker resources wait for the daemon to run with its merged configuration.
    this.provider = new docker.Provider(
      `${name}-docker`,
      { host: `ssh://${host.ssh.user}@${host.address}:${host.ssh.port}`, sshOpts: dockerSshOpts(config) },
      { parent: this, dependsOn: [this.daemon.restart] },
    );
    this.volumes = new StorageVolumes(
      `${name}-volumes`,
      { access: this.access, provider: this.provider, volumes: config.volumes },
      { parent: this, dependsOn: [this.daemon.restart] },
    );
    if (config.swarm) {
      this.swarm = new Swarm(`${name}-swarm`, { access: this.access, provider: this.provider, swarm: config.swarm }, { parent: this, dependsOn: [this.daemon.restart] });
    }
    const services = new Map<string, ContainerService>();
    for (const [key, service] of Object.entries(config.services)) {
      const moves = config.migrations
        .filter((m) => m.service === key)
        .map(
          (m) =>
            new DataMigration(
              `${name}-migrate-${m.name}`,
              {
                access: this.access,
                migration: m,
                containerName: service.containerName,
                ...(config.backup ? { borg: { host: host.name, name: config.backup.repository.name, path: config.backup.repository.path } } : {}),
              },
              // snapshot: borg runs the helper the backup unit set installs, with its repository
              { parent: this, ...(m.snapshot === "borg" && this.backup ? { dependsOn: [this.backup.units] } : {}) },
            ),
        );
      const svc = new ContainerService(
        `${name}-${key}`,
        {
          provider: this.provider,
          service,
          volumes: this.volumes.byName,
          ...(this.swarm ? { networkName: this.swarm.networkName } : {}),
          dependsOn: [...(this.swarm ? [this.swarm.membership] : []), ...moves.map((m) => m.run)],
        },
        { parent: this, dependsOn: [this.volumes] },
      );
      for (const m of moves) m.finalizeAfter(svc.container);
      services.set(key, svc);
    }
    this.services = services;
    this.hostFiles = [
      { path: "/etc/docker/daemon.json", content: this.daemon.fragment, kind: "managed-keys" },
      { path: this.kernel.path, content: this.kernel.content, kind: "file" },
      ...(this.monitoring?.hostFiles ?? []),
      ...(this.backup?.hostFiles ?? []),
    ];
    this.drift = {
      host: host.name,
      // unit files and the scripts they run are among the host files
      files: this.hostFiles,
      sysctl: Object.fromEntries(Object.entries(config.sysctl).map(([k, v]) => [k, String(v)])),
      enabledUnits: [...(this.monitoring?.unitSet?.enable ?? []), ...(this.backup?.unitSet.enable ?? [])],
      ...(config.swarm ? { swarmRole: config.swarm.role } : {}),
      containers: Object.values(config.services).map((s) => ({ name: s.containerName, mounts: s.mounts.map((m) => ({ source: m.source, target: m.target })) })),
      migrations: config.migrations.map((m) => m.name),
    };
    this.registerOutputs({ daemonJsonHash: this.daemon.fragmentHash, sysctlFile: this.kernel.path });
  }
}
