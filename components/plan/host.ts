/**
 * Pure planning for one host: typed config in, plain data out (no @pulumi import). What the
 * preflight command checks and which distribution packages the host scripts need.
 */
import type { HostConfig } from "../config";

/** The distribution packages the storage checks need: smartd, iostat (in sysstat, not "iostat") and fio. */
export const MONITORING_PACKAGES = ["smartmontools", "sysstat", "fio"] as const;

/**
 * Packages the host's scripts need, for apt-ensure.sh: python3 always (state records, the Docker
 * Engine API, the alert check), rsync with migrations, borgbackup with a backup section, the
 * monitoring packages with a monitoring section. An installed package is left alone.
 */
export function hostPackages(config: HostConfig): string[] {
  return [
    "python3",
    ...(config.migrations.length > 0 ? ["rsync"] : []),
    ...(config.backup ? ["borgbackup"] : []),
    ...(config.monitoring ? MONITORING_PACKAGES : []),
  ];
}

/**
 * preflight.sh's checks: every volume (bind device or `-`), the overlay network on the manager
 * (name, encrypted), every service container's name.
 */
export function preflightChecks(config: HostConfig): string[] {
  const network = config.swarm?.role === "manager" ? config.swarm.network : undefined;
  return [
    config.host.name,
    ...config.volumes.map((v) => `volume:${v.name}:${v.bind?.device ?? "-"}`),
    ...(network ? [`network:${network.name}:${network.encrypted ? 1 : 0}`] : []),
    ...Object.values(config.services).map((s) => `container:${s.containerName}`),
  ];
}
