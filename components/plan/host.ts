/**
 * Pure planning for one host: typed config in, plain data out (no @pulumi import). What the
 * preflight command checks, which distribution packages the host scripts need, the list of
 * files the host receives and what the read-only drift probe expects.
 */
import type { HostConfig } from "../config";
import type { FirewallSpec, HostPort } from "../render/firewall";
import { ALERTMANAGER_ADDRESS, ALERTMANAGER_CLUSTER_PORT, NODE_EXPORTER_PORT, PROMETHEUS_PORT } from "../render/observability";
import type { DriftExpectation } from "../render/drift";
import type { UnitSet } from "../render/systemd";

/** A file the stack sends to the host, as synth writes it for review. */
export interface HostFile {
  /** Path on the host (or, for fragments merged into a host file, that file's path). */
  readonly path: string;
  readonly content: string;
  /** `file`: the whole file; `managed-keys`: the keys merged into the host's own file. */
  readonly kind: "file" | "managed-keys";
}

/** The files of a unit set, as host files. */
export function unitSetFiles(set: UnitSet | undefined): HostFile[] {
  return (set?.files ?? []).map((f) => ({ path: f.path, content: f.content, kind: "file" as const }));
}

/** What the components of one host send to it, each part as that component rendered it. */
export interface HostFileParts {
  /** daemon.json's managed keys (DaemonConfig). */
  readonly daemonJson: string;
  /** The sysctl.d file (KernelTuning). */
  readonly sysctl: { readonly path: string; readonly content: string };
  /** Files of the monitoring component (its unit set, smartd.conf). @default [] */
  readonly monitoring?: readonly HostFile[];
  /** Files of the backup component (its unit set). @default [] */
  readonly backup?: readonly HostFile[];
  /** The firewall's ruleset and unit. @default [] */
  readonly firewall?: readonly HostFile[];
}

/** Every file the host receives, in the order synth writes and the drift probe checks them. */
export function hostFiles(parts: HostFileParts): HostFile[] {
  return [
    { path: "/etc/docker/daemon.json", content: parts.daemonJson, kind: "managed-keys" },
    { path: parts.sysctl.path, content: parts.sysctl.content, kind: "file" },
    ...(parts.monitoring ?? []),
    ...(parts.backup ?? []),
    ...(parts.firewall ?? []),
  ];
}

/**
 * What the read-only drift probe checks on the host (`npm run drift`): the host files (unit
 * files and the scripts they run among them), the kernel parameters, the enabled timers, the
 * swarm role, each service container's mounts and the migrations recorded complete.
 */
export function driftExpectation(config: HostConfig, files: readonly HostFile[], enabledUnits: readonly string[]): DriftExpectation {
  return {
    host: config.host.name,
    files,
    sysctl: Object.fromEntries(Object.entries(config.sysctl).map(([k, v]) => [k, String(v)])),
    enabledUnits,
    ...(config.swarm ? { swarmRole: config.swarm.role } : {}),
    containers: Object.values(config.services).map((s) => ({ name: s.containerName, mounts: s.mounts.map((m) => ({ source: m.source, target: m.target })) })),
    migrations: config.migrations.map((m) => m.name),
  };
}

/** The distribution packages the storage checks need: smartd, iostat (in sysstat, not "iostat") and fio. */
export const MONITORING_PACKAGES = ["smartmontools", "sysstat", "fio"] as const;

/**
 * Packages the host's scripts need, for apt-ensure.sh: python3 always (state records, the Docker
 * Engine API, the alert check), rsync and inotify-tools (the change record) with migrations, borgbackup with a backup section, the
 * monitoring packages with a monitoring section. An installed package is left alone.
 */
export function hostPackages(config: HostConfig): string[] {
  return [
    "python3",
    ...(config.migrations.length > 0 ? ["rsync", "inotify-tools"] : []),
    ...(config.backup ? ["borgbackup"] : []),
    ...(config.monitoring ? MONITORING_PACKAGES : []),
    // the firewall's `nft` (DGX OS has it already: Ubuntu's iptables is its nft backend)
    ...(config.network ? ["nftables"] : []),
  ];
}

/** The firewall of a host with a `network` section: its clients, the swarm peer, every published port. */
export function firewallSpec(config: HostConfig): FirewallSpec {
  const peer = config.swarm?.peer;
  const hostPorts: HostPort[] = [];
  if (config.observability) {
    // node_exporter: scraped by the Prometheus on the manager. On the manager that is the host
    // itself; on the worker the manager, its swarm peer (the client networks without a peer).
    const scraper: HostPort["from"] = config.observability.prometheus ? "local" : peer ? "peer" : "clients";
    hostPorts.push({ port: NODE_EXPORTER_PORT, from: scraper, what: "node_exporter" });
    if (config.observability.prometheus) {
      hostPorts.push(
        { port: PROMETHEUS_PORT, from: "clients", what: "Prometheus and the storage page" },
        // bound to loopback already (ALERTMANAGER_ADDRESS): the rules hold if that ever changes
        { port: Number(ALERTMANAGER_ADDRESS.split(":")[1]), from: "local", what: "Alertmanager" },
        { port: ALERTMANAGER_CLUSTER_PORT, from: "local", what: "Alertmanager HA gossip (off)" },
      );
    }
  }
  return {
    clients: [...(config.network?.clients ?? [])],
    ...(peer ? { peer } : {}),
    published: Object.values(config.services).flatMap((s) => s.ports.map((p) => ({ ip: p.ip, port: p.published, protocol: p.protocol }))),
    hostPorts,
  };
}

/**
 * preflight.sh's checks: every volume (bind device or `-`), the overlay network on the manager
 * (name, encrypted), every service container's name, every address a port is bound to (once;
 * not `0.0.0.0`).
 */
export function preflightChecks(config: HostConfig): string[] {
  const network = config.swarm?.role === "manager" ? config.swarm.network : undefined;
  return [
    config.host.name,
    ...config.volumes.map((v) => `volume:${v.name}:${v.bind?.device ?? "-"}`),
    ...(network ? [`network:${network.name}:${network.encrypted ? 1 : 0}`] : []),
    ...Object.values(config.services).map((s) => `container:${s.containerName}`),
    ...[...new Set(Object.values(config.services).flatMap((s) => s.ports.map((p) => p.ip)))].filter((ip) => ip !== "0.0.0.0").map((ip) => `address:${ip}`),
  ];
}
