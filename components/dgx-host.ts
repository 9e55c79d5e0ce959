import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Backup } from "./backup";
import { UNPINNED_HOST_KEY, type HostConfig, type ServiceSecretKey } from "./config";
import { DaemonConfig } from "./daemon-config";
import { HostFirewall } from "./host-firewall";
import { hostCommand, type HostAccess } from "./host-command";
import { KernelTuning } from "./kernel-tuning";
import { driftExpectation, hostFiles, hostPackages, preflightChecks, type HostFile } from "./plan/host";
import { knownHostsName, sha256 } from "./render/command";
import type { DriftExpectation } from "./render/drift";
import { Monitoring } from "./monitoring";
import { ALERTMANAGER_WEBHOOK_FILE, HEARTBEAT_FILE, Observability } from "./observability";
import { FIREWALL_FILE, FIREWALL_UNIT } from "./render/firewall";
import { DEFAULT_WEBHOOK_FILE } from "./render/monitoring";
import { ContainerService } from "./container-service";
import { Swarm } from "./swarm";
import { StorageVolumes } from "./storage-volumes";

export interface DgxHostArgs {
  /** The validated config of this host (from the config door). */
  readonly config: HostConfig;
  /** The SSH private key, as a Pulumi secret. */
  readonly sshPrivateKey: pulumi.Output<string>;
  /** The alert webhook URL, as a Pulumi secret; absent: alerts go to the journal only. */
  readonly alertWebhook?: pulumi.Output<string>;
  /** The dead-man's-switch URL, as a Pulumi secret: pinged after each successful backup run; absent: no heartbeat. */
  readonly heartbeatUrl?: pulumi.Output<string>;
  /** The borg repository passphrase, as a Pulumi secret; required with a `backup` section. */
  readonly borgPassphrase?: pulumi.Output<string>;
  /** The secret cloudCredentials (JSON by target name); required with `backup.cloud`. */
  readonly cloudCredentials?: pulumi.Output<string>;
  /** The tokens the services' `secretEnv` names, as Pulumi secrets. @default none */
  readonly serviceSecrets?: Readonly<Partial<Record<ServiceSecretKey, pulumi.Output<string>>>>;
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
  /** preflight.sh: read-only checks of what the apply will meet; everything else runs after it. */
  public readonly preflight: pulumi.Resource;
  /** apt-ensure.sh: what the host scripts need (python3, rsync, borgbackup, smartmontools, sysstat, fio). */
  public readonly packages: pulumi.Resource;
  /** The heartbeat URL file that borg-run.sh reads (from the secret, on stdin); absent without `heartbeatUrl` or `backup`. */
  public readonly heartbeat?: pulumi.Resource;
  /** The alert webhook file (from the secret, on stdin); absent without `alertWebhook`. */
  public readonly webhook?: pulumi.Resource;
  public readonly daemon: DaemonConfig;
  public readonly kernel: KernelTuning;
  /** The nftables firewall; absent without a `network` section. */
  public readonly firewall?: HostFirewall;
  /** fstrim, SMART, alerts, the fio baseline and capacity; absent without `monitoring` and `maintenance`. */
  public readonly monitoring?: Monitoring;
  /** node_exporter, textfile metrics; Prometheus and Alertmanager on the manager (`observability`). */
  public readonly observability?: Observability;
  /** borg: repository, schedules, off-site copy; absent without `backup`. */
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
    const access: HostAccess = {
      connection: {
        host: host.address,
        port: host.ssh.port,
        user: host.ssh.user,
        privateKey: args.sshPrivateKey,
        hostKey: host.ssh.hostKey,
      },
      sudo: host.sudo,
    };
    this.access = access;
    const child = { parent: this };

    // The order of a host's apply, each edge on the commands themselves (a component's dependsOn
    // does not reach its children: the SDK sends a resource's own dependsOn, expanded through
    // components, and nothing inherited from its parent, sdk/nodejs/runtime/resource.ts):
    //   preflight -> packages -> daemon.json merge -> dockerd restart -> kernel settings
    //   (and, beside them, the firewall: after the packages, before the swarm and any container)
    //   -> volumes, swarm and network; the borg repository, its units, hand-made jobs
    //   -> per service: adopt, container (created stopped), migrations (archive, copy, cut-over),
    //      switch, finalize
    //   -> fstrim, smartd, the fio baseline, the alert units, the live df.
    // Nothing that restarts dockerd or loads the data disks runs while a migration copies.
    const checks = preflightChecks(config);
    this.preflight = hostCommand(`${name}-preflight`, { access, script: "preflight", createArgs: checks, triggers: [sha256(checks.join(" "))] }, child);
    const packageList = hostPackages(config);
    this.packages = hostCommand(
      `${name}-packages`,
      { access, script: "apt-ensure", createArgs: packageList, triggers: [packageList.join(" ")] },
      { ...child, dependsOn: [this.preflight] },
    );
    // with `observability` the URL is Alertmanager's alone (a file the checks do not read: one
    // alerting path), and only the host that runs Alertmanager needs it
    const webhookFile = config.observability ? ALERTMANAGER_WEBHOOK_FILE : DEFAULT_WEBHOOK_FILE;
    let webhookHash: pulumi.Output<string> | undefined;
    if (args.alertWebhook !== undefined && (!config.observability || config.observability.prometheus)) {
      const url = pulumi.secret(args.alertWebhook);
      webhookHash = url.apply((u) => sha256(`${u}\n`));
      this.webhook = hostCommand(
        `${name}-alert-webhook`,
        {
          access,
          script: "secret-file",
          createArgs: ["apply", webhookFile],
          deleteArgs: ["remove", webhookFile],
          // a hash of the URL, still a secret: a changed URL is written again, and the state shows neither
          triggers: [webhookFile, webhookHash],
          secretStdin: url.apply((u) => `${u}\n`),
        },
        { ...child, dependsOn: [this.preflight] },
      );
    }
    if (args.heartbeatUrl !== undefined && config.backup) {
      const url = pulumi.secret(args.heartbeatUrl);
      this.heartbeat = hostCommand(
        `${name}-heartbeat-url`,
        {
          access,
          script: "secret-file",
          createArgs: ["apply", HEARTBEAT_FILE],
          deleteArgs: ["remove", HEARTBEAT_FILE],
          triggers: [HEARTBEAT_FILE, url.apply((u) => sha256(`${u}\n`))],
          secretStdin: url.apply((u) => `${u}\n`),
        },
        { ...child, dependsOn: [this.preflight] },
      );
    }
    this.daemon = new DaemonConfig(`${name}-daemon`, { access, settings: config.docker.daemon, after: [this.packages] }, child);
    this.kernel = new KernelTuning(`${name}-kernel`, { access, settings: config.sysctl, after: [this.daemon.restart] }, child);
    // The firewall is in place before the swarm opens its ports and before any container
    // publishes one; it needs nftables (packages) only.
    if (config.network) {
      this.firewall = new HostFirewall(`${name}-firewall`, { access, config, after: [this.packages] }, child);
    }
    const engineReady = [this.daemon.restart, this.kernel.apply, ...(this.firewall ? [this.firewall.apply] : [])];

    // Docker resources wait for the daemon to run with its merged configuration (through the provider).
    this.provider = new docker.Provider(
      `${name}-docker`,
      { host: `ssh://${host.ssh.user}@${host.address}:${host.ssh.port}`, sshOpts: dockerSshOpts(config) },
      { parent: this, dependsOn: engineReady },
    );
    this.volumes = new StorageVolumes(`${name}-volumes`, { access, provider: this.provider, volumes: config.volumes, after: engineReady }, child);
    if (config.swarm) {
      this.swarm = new Swarm(`${name}-swarm`, { access, swarm: config.swarm, after: engineReady }, child);
    }
    if (config.backup) {
      if (!args.borgPassphrase) throw new Error("the backup section needs the secret borgPassphrase (pulumi config set --secret borgPassphrase)");
      this.backup = new Backup(
        `${name}-backup`,
        {
          access,
          host: host.name,
          backup: config.backup,
          passphrase: args.borgPassphrase,
          ...(args.cloudCredentials ? { cloudCredentials: args.cloudCredentials } : {}),
          after: [this.packages],
          ...(this.webhook ? { alertWebhook: this.webhook } : {}),
        },
        child,
      );
    }
    const hostReady = [
      this.packages,
      ...engineReady,
      ...this.volumes.created,
      ...(this.swarm ? [this.swarm.ready] : []),
      ...(this.backup ? [this.backup.units, this.backup.existingJobs] : []),
    ];

    const services = new Map<string, ContainerService>();
    for (const [key, service] of Object.entries(config.services)) {
      services.set(
        key,
        new ContainerService(
          `${name}-${key}`,
          {
            access,
            provider: this.provider,
            service,
            ...(args.serviceSecrets ? { secrets: args.serviceSecrets } : {}),
            volumes: this.volumes.byName,
            ...(this.swarm ? { networkName: this.swarm.networkName } : {}),
            migrations: config.migrations.filter((m) => m.service === key),
            ...(config.backup ? { borg: { host: host.name, name: config.backup.repository.name, path: config.backup.repository.path } } : {}),
            after: hostReady,
          },
          child,
        ),
      );
    }
    this.services = services;

    if (config.monitoring || config.maintenance) {
      this.monitoring = new Monitoring(
        `${name}-monitoring`,
        {
          access,
          host: host.name,
          ...(config.monitoring ? { monitoring: config.monitoring } : {}),
          ...(config.maintenance ? { maintenance: config.maintenance } : {}),
          ...(config.capacity ? { capacity: config.capacity } : {}),
          containers: Object.values(config.services).map((s) => s.containerName),
          ...(this.webhook ? { webhook: this.webhook } : {}),
          metrics: config.observability !== undefined,
          after: [this.packages, ...hostReady, ...[...services.values()].flatMap((s) => s.done)],
        },
        child,
      );
    }
    if (config.observability) {
      this.observability = new Observability(
        `${name}-observability`,
        {
          access,
          config,
          observability: config.observability,
          ...(this.webhook && webhookHash ? { webhook: this.webhook, webhookTrigger: webhookHash } : {}),
          // after the host's own packages (one apt at a time) and the checks' units
          after: [this.packages, ...(this.monitoring?.units ? [this.monitoring.units] : [])],
        },
        child,
      );
    }
    this.hostFiles = hostFiles({
      daemonJson: this.daemon.fragment,
      sysctl: { path: this.kernel.path, content: this.kernel.content },
      monitoring: [...(this.monitoring?.hostFiles ?? []), ...(this.observability?.hostFiles ?? [])],
      backup: this.backup?.hostFiles ?? [],
      firewall: this.firewall
        ? [
            { path: FIREWALL_FILE, content: this.firewall.ruleset, kind: "file" },
            { path: `/etc/systemd/system/${FIREWALL_UNIT}`, content: this.firewall.unit, kind: "file" },
          ]
        : [],
    });
    this.drift = driftExpectation(config, this.hostFiles, [...(this.monitoring?.unitSet?.enable ?? []), ...(this.backup?.unitSet.enable ?? [])]);
    this.registerOutputs({ daemonJsonHash: this.daemon.fragmentHash, sysctlFile: this.kernel.path });
  }
}
