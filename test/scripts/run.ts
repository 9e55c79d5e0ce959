/** Runs a host script for real against a temporary ROOT, the way the tests exercise them. */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll } from "vitest";
import { SCRIPTS_DIR, type ScriptName } from "../../components/render/command";
import { hostPathEnv } from "../../components/render/host-paths";

export interface ScriptResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `input`: the script's stdin; `timeoutMs`: how long it may run (default 60 s). The host paths
 * are in the environment as the program's bundle sets them (`env` may override them).
 */
export function runScript(
  name: ScriptName,
  args: readonly string[],
  env: Record<string, string> = {},
  opts: { input?: string; timeoutMs?: number } = {},
): ScriptResult {
  const r = spawnSync("bash", [path.join(SCRIPTS_DIR, `${name}.sh`), ...args], {
    env: { ...process.env, ...hostPathEnv(), ...env },
    input: opts.input,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const roots: string[] = [];
// The roots go after the file's tests (they used to stay in /tmp: hundreds of them, borg
// repositories among them). One that a mount is still under is kept: rm would descend into the
// mounted filesystem, and the test that mounted it unmounts and removes it itself
// (migrate-fixtures.ts) or failed before it could (then the root is evidence).
afterAll(() => {
  const mountPoints = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "");
  for (const root of roots.splice(0)) {
    if (mountPoints.some((m) => m === root || m.startsWith(`${root}/`))) continue;
    fs.rmSync(root, { recursive: true, force: true });
  }
}, 300_000);

/**
 * A fresh temporary root directory with the given files (path relative to the root -> text),
 * removed after the test file.
 */
export function makeRoot(files: Record<string, string> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-root-"));
  roots.push(root);
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
  return root;
}

/**
 * Every file and directory under `root` with its content, mode and mtime: to prove that a run
 * changed nothing (a directory's mtime moves when a temporary file comes and goes in it).
 */
export function snapshotTree(root: string): Record<string, { text: string; mode: number; mtimeMs: number }> {
  const out: Record<string, { text: string; mode: number; mtimeMs: number }> = {};
  const walk = (dir: string) => {
    const st = fs.statSync(dir);
    out[`${path.relative(root, dir)}/`] = { text: "", mode: st.mode, mtimeMs: st.mtimeMs };
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        // lstat: a symlink is its target text (dangling ones too); a FIFO is never opened
        const fst = fs.lstatSync(p);
        const text = e.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : e.isFile() ? fs.readFileSync(p, "utf8") : "(special)";
        out[path.relative(root, p)] = { text, mode: fst.mode, mtimeMs: fst.mtimeMs };
      }
    }
  };
  walk(root);
  return out;
}
