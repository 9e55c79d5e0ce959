/** Writer for /etc/sysctl.d files: a managed-by header, then `key = value` lines, keys sorted. */

export const MANAGED_HEADER = "# Managed by dgx-storage (Pulumi). Do not edit: the next `pulumi up` overwrites it.";

export function renderSysctl(settings: Readonly<Record<string, string | number>>): string {
  const keys = Object.keys(settings).sort();
  return [MANAGED_HEADER, ...keys.map((k) => `${k} = ${settings[k]}`)].join("\n") + "\n";
}

/** Parses a sysctl.d file back into key/value pairs (for round-trip tests and drift checks). */
export function parseSysctl(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`not a sysctl line: ${raw}`);
    out[line.slice(0, eq).trim().replace(/^-/, "")] = line.slice(eq + 1).trim();
  }
  return out;
}
