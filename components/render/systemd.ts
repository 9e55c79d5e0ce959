/**
 * Writer for systemd unit files: a managed-by header, then sections in the given order, keys in
 * the given order, repeated keys allowed (several `ExecStart=` of a oneshot service, `OnCalendar=`
 * of a timer). Values are written as they are: a value with a newline is refused, because it
 * would start a new directive.
 */
import { MANAGED_HEADER } from "./sysctl";

type UnitValue = string | number | boolean;
export type UnitEntry = readonly [key: string, value: UnitValue];
export type UnitSection = readonly [name: string, entries: readonly UnitEntry[]];

function value(v: UnitValue): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

export function renderUnit(sections: readonly UnitSection[]): string {
  const lines = [MANAGED_HEADER];
  for (const [name, entries] of sections) {
    if (!/^[A-Z][A-Za-z]*$/.test(name)) throw new Error(`not a unit section name: ${name}`);
    lines.push("", `[${name}]`);
    for (const [k, v] of entries) {
      if (!/^[A-Z][A-Za-z0-9]*$/.test(k)) throw new Error(`not a unit directive: ${k}`);
      const text = value(v);
      if (/[\n\r]/.test(text)) throw new Error(`${k}= holds a line break`);
      lines.push(`${k}=${text}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Parses a unit file back into sections (for round-trip tests and drift checks). */
export function parseUnit(text: string): UnitSection[] {
  const sections: [string, UnitEntry[]][] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      sections.push([head[1]!, []]);
      continue;
    }
    const eq = line.indexOf("=");
    const current = sections[sections.length - 1];
    if (eq < 0 || !current) throw new Error(`not a unit line: ${raw}`);
    current[1].push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return sections;
}

/** A file that install-units.sh places on the host. */
export interface UnitFile {
  /** Absolute path: /etc/systemd/system/<unit>, or a file under HOST_PATHS.lib or HOST_PATHS.etc. */
  readonly path: string;
  /** Octal mode, e.g. "0644" (units) or "0755" (a helper script a unit runs). */
  readonly mode: string;
  readonly content: string;
}

/** What install-units.sh receives: the set's files and the units to enable and start. */
export interface UnitSet {
  readonly files: readonly UnitFile[];
  /** Units (usually timers) to `enable --now`; may name units the distribution ships (fstrim.timer). */
  readonly enable: readonly string[];
}

/** The manifest text (JSON, keys sorted by construction) passed to install-units.sh. */
export function renderUnitSet(set: UnitSet): string {
  return JSON.stringify({
    files: set.files.map((f) => ({ path: f.path, mode: f.mode, content: f.content })),
    enable: [...set.enable],
  });
}
