/**
 * Turns a host script and its arguments into the exact command string a remote command runs.
 *
 * The script travels inside the command (`bash -c '<lib.sh + script>' <name> <args>`), so what
 * `pulumi preview` shows is exactly what the host will execute, and there is no separate copy
 * step that could leave an old script behind. Arguments are single-quoted; secrets never go
 * here (they travel on stdin).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { HOST_PATH_VARIABLES } from "./host-paths";

export const SCRIPTS_DIR = path.join(__dirname, "..", "scripts");

/** The scripts a remote command may run (files in components/scripts/). */
export type ScriptName =
  | "apt-ensure"
  | "borg-repo"
  | "borg-run"
  | "borg-schedules"
  | "cloud-copy"
  | "container-adopt"
  | "container-switch"
  | "daemon-json-merge"
  | "df-read"
  | "docker-restart"
  | "drift-probe"
  | "ensure-dir"
  | "firewall"
  | "fio-baseline"
  | "fstrim-once"
  | "install-units"
  | "migrate"
  | "network-ensure"
  | "observability-config"
  | "preflight"
  | "secret-file"
  | "smartd-config"
  | "storage-alert"
  | "swarm-init"
  | "swarm-join"
  | "sysctl-apply";

/** POSIX single-quote quoting: safe for any byte string as one shell word. */
export function shq(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * How a host is named in a known_hosts line: the bare address on port 22, `[address]:port` on
 * any other (what ssh looks up, so a pinned key on another port would otherwise never match).
 */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

export function scriptText(name: ScriptName): string {
  return fs.readFileSync(path.join(SCRIPTS_DIR, `${name}.sh`), "utf8");
}

/**
 * The files a script needs beside lib.sh: the bash files it sources (a shared library, one file
 * per command) and the Python files it runs through lib.sh's `run_py`. They travel inside the
 * script's command (see `bundledScript`), so a host never runs a file that an older `pulumi up`
 * left behind.
 */
export const CARRIED_FILES: Partial<Record<ScriptName, readonly string[]>> = {
  migrate: ["migrate-lib.sh", "migrate-run.sh", "migrate-finalize.sh", "migrate-state.py", "migrate-tree.py"],
  "container-switch": ["migrate-state.py"],
  "storage-alert": ["storage-alert.py"],
  "borg-run": [
    "backup-alert.sh",
    "borg-run-lib.sh",
    "borg-run-create.sh",
    "borg-run-prune.sh",
    "borg-run-check.sh",
    "borg-run-drill.sh",
    "borg-run-copy-offsite.sh",
    "borg-run-watch.sh",
    "borg-run.py",
  ],
  "cloud-copy": ["backup-alert.sh", "borg-run.py", "cloud-copy.py"],
  "daemon-json-merge": ["daemon-json-merge.py"],
  "drift-probe": ["drift-probe.py"],
  "fio-baseline": ["fio-summary.py"],
  "install-units": ["install-units.py"],
  "swarm-join": ["swarm-join.py"],
};

/** The shell variable that holds a carried file's text in a bundle (lib.sh's `run_py` reads it). */
export function carriedVariable(file: string): string {
  return `DGX_PY_${file.replace(/[^A-Za-z0-9]/g, "_")}`;
}

/** The host paths as shell assignments (`DGX_ETC_DIR=<HOST_PATHS.etc>` ...), one a line. */
export function hostPathAssignments(): string {
  return Object.entries(HOST_PATH_VARIABLES)
    .map(([name, value]) => `${name}=${shq(value)}\n`)
    .join("");
}

/**
 * The script as it is sent: lib.sh's shebang, the host paths (`hostPathAssignments`), the rest of
 * lib.sh, then each carried bash file as it is (shebang dropped: it only defines functions, and
 * its guarded `. lib.sh` is skipped since lib.sh is already loaded), each carried Python file as
 * `DGX_PY_<file>='<text>'`, then the script with its own shebang dropped (the guarded lines that
 * source lib.sh and the carried bash files from disk do nothing: the functions they test for are
 * already defined).
 */
export function bundledScript(name: ScriptName): string {
  const lib = fs.readFileSync(path.join(SCRIPTS_DIR, "lib.sh"), "utf8");
  const shebang = /^#!.*\n/.exec(lib)?.[0] ?? "";
  const files = CARRIED_FILES[name] ?? [];
  const read = (file: string) => fs.readFileSync(path.join(SCRIPTS_DIR, file), "utf8");
  const sourced = files.filter((f) => f.endsWith(".sh")).map((file) => read(file).replace(/^#!.*\n/, ""));
  const carried = files.filter((f) => !f.endsWith(".sh")).map((file) => `${carriedVariable(file)}='${read(file).replace(/'/g, `'\\''`)}'\n`);
  const body = scriptText(name).replace(/^#!.*\n/, "");
  return shebang + hostPathAssignments() + lib.slice(shebang.length) + sourced.join("") + carried.join("") + body;
}

/**
 * The longest command string a remote command may have. Linux limits one argument to
 * MAX_ARG_STRLEN (32 pages, 128 KiB: https://man7.org/linux/man-pages/man2/execve.2.html), and
 * the whole command is one argument of the remote shell, its bundle one argument of `bash -c`;
 * the margin leaves room for the arguments.
 */
export const MAX_COMMAND_BYTES = 100_000;

export interface ScriptCommandOptions {
  /** Prefix with `sudo -n` (fail at once instead of prompting when sudo wants a password). */
  readonly sudo: boolean;
}

/** The command string for `remote.Command` `create`/`delete`. */
export function scriptCommand(name: ScriptName, args: readonly string[], opts: ScriptCommandOptions): string {
  const words = ["bash", "-c", shq(bundledScript(name)), name, ...args.map(shq)];
  return (opts.sudo ? "sudo -n " : "") + words.join(" ");
}

export function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}
