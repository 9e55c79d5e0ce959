/**
 * The daemon.json keys this project manages, as a typed object and as the JSON text that
 * `daemon-json-merge.sh` merges into /etc/docker/daemon.json. JSON has no comments, so there
 * is no "managed by" header here: the merge script's state file records which keys are ours.
 */
import type { DaemonSettings } from "../config";

/** The managed part of daemon.json. Keys are Docker's own (dockerd(8), "daemon configuration file"). */
export interface DaemonJsonFragment {
  readonly "storage-driver": string;
  readonly "log-driver": string;
  readonly "log-opts"?: { readonly "max-size": string; readonly "max-file": string };
  readonly "live-restore": boolean;
}

/** Drivers that write log files locally and honour max-size / max-file. */
const FILE_LOG_DRIVERS = new Set(["json-file", "local"]);

export function daemonJsonFragment(s: DaemonSettings): DaemonJsonFragment {
  return {
    "storage-driver": s.storageDriver,
    "log-driver": s.logDriver,
    // log-opts values are strings in daemon.json: dockerd rejects `"max-file": 5`
    ...(FILE_LOG_DRIVERS.has(s.logDriver) ? { "log-opts": { "max-size": s.logOpts.maxSize, "max-file": String(s.logOpts.maxFile) } } : {}),
    "live-restore": s.liveRestore,
  };
}

/** Stable text: keys sorted at every level, two-space indent, trailing newline. */
export function renderJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + "\n";
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
