/**
 * Host drift: what a host should look like according to the stack (`DriftExpectation`, plain
 * data the components already hold), and the report drift-probe.sh returns. Remote commands have
 * no read step, so `pulumi refresh` cannot see a file edited by hand on a host; the probe can.
 */

/** What the stack declares for one host, as the read-only probe checks it. */
export interface DriftExpectation {
  readonly host: string;
  /** Whole files by content, and daemon.json's managed keys (`managed-keys`). */
  readonly files: readonly { readonly path: string; readonly content: string; readonly kind: "file" | "managed-keys" }[];
  /** Kernel parameters and their values. */
  readonly sysctl: Readonly<Record<string, string>>;
  /** Units that must be enabled (timers of the unit sets). */
  readonly enabledUnits: readonly string[];
  /** Swarm role, when the host is in the swarm. */
  readonly swarmRole?: "manager" | "worker";
  /** Service containers: running, with exactly these bind/volume sources at these targets. */
  readonly containers: readonly { readonly name: string; readonly mounts: readonly { readonly source: string; readonly target: string }[] }[];
  /** Migrations that must be recorded complete on the host. */
  readonly migrations: readonly string[];
}

/** One difference between the host and the stack. */
export interface Drift {
  readonly kind: "file" | "daemon.json" | "sysctl" | "unit" | "swarm" | "container" | "migration";
  readonly what: string;
  readonly expected: string;
  readonly actual: string;
}

/** A fixed-width table for a terminal or a CI job summary; "no drift" when there is none. */
export function renderDriftTable(host: string, drifts: readonly Drift[]): string {
  if (drifts.length === 0) return `${host}: no drift\n`;
  const rows = [["kind", "what", "expected", "actual"], ...drifts.map((d) => [d.kind, d.what, d.expected, d.actual])];
  const cut = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}...` : s);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => cut(r[i]!).length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => cut(c).padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [`${host}: ${drifts.length} difference${drifts.length === 1 ? "" : "s"}`, line(rows[0]!), ...rows.slice(1).map(line)].join("\n") + "\n";
}
