/** Shared fixture values for tests (public keys only; no real host's key). */
export const FIXTURE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBLrQgIozjqCs7hQKWbqXbleEIsOrirOHJPcW56vBRA4";

/** A complete, valid config in stack-file form (prefix removed). */
export function validConfig(): Record<string, unknown> {
  return {
    host: { name: "sark", address: "192.0.2.10", ssh: { user: "maxvamp", port: 22, hostKey: FIXTURE_HOST_KEY } },
    docker: { daemon: { storageDriver: "overlay2", logDriver: "json-file", logOpts: { maxSize: "100m", maxFile: 5 }, liveRestore: false } },
    sysctl: { "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 },
    swarm: { role: "manager", advertiseAddress: "192.0.2.10" },
    capacity: { annualGrowth: 0.2, disks: [{ name: "primary", mount: "/data", sizeTB: 3.7, usedTB: 1.9 }] },
  };
}

/** Returns a copy of `obj` with the value at a dotted path set (undefined deletes it). */
export function withValue(obj: Record<string, unknown>, dotted: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(obj);
  const keys = dotted.split(".");
  let cur = copy as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    cur[k] ??= {};
    cur = cur[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy;
}

/** The other host's key in the backup's off-site block (a public key made for these tests). */
export const FIXTURE_PEER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJNuR60GMH3cwtKterh+Fd545OGEz0pvHhvFBXSfHzv+";

/**
 * A copy of a stack config with `backup.offsite.ssh.hostKey` pinned (the committed stack files
 * carry "unpinned", which `pulumi up` refuses); unchanged when the stack has no off-site copy.
 */
export function withPeerKey(config: Record<string, unknown>, hostKey: string = FIXTURE_PEER_HOST_KEY, port?: number): Record<string, unknown> {
  const backup = config.backup as { offsite?: { ssh?: Record<string, unknown> } } | undefined;
  if (!backup?.offsite?.ssh) return config;
  return { ...config, backup: { ...backup, offsite: { ...backup.offsite, ssh: { ...backup.offsite.ssh, hostKey, ...(port !== undefined ? { port } : {}) } } } };
}

/** An `observability` section of each stack: Prometheus and Alertmanager on sark scraping both, clu only scraped. */
export const OBSERVABILITY_FIXTURE = {
  sark: {
    prometheus: {
      targets: [
        { host: "sark", address: "192.168.68.70:9100" },
        { host: "clu", address: "192.168.68.71:9100" },
      ],
    },
  },
  clu: {},
} as const;
