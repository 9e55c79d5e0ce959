/** Runs a host script for real against a temporary ROOT, the way the tests exercise them. */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SCRIPTS_DIR, type ScriptName } from "../../components/render/command";

export interface ScriptResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runScript(name: ScriptName, args: readonly string[], env: Record<string, string> = {}): ScriptResult {
  const r = spawnSync("bash", [path.join(SCRIPTS_DIR, `${name}.sh`), ...args], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temporary root directory with the given files (path relative to the root -> text). */
export function makeRoot(files: Record<string, string> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-root-"));
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
  return root;
}

/** Every file under `root` with its content and mtime: to prove that a run changed nothing. */
export function snapshotTree(root: string): Record<string, { text: string; mtimeMs: number }> {
  const out: Record<string, { text: string; mtimeMs: number }> = {};
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(root, p)] = { text: fs.readFileSync(p, "utf8"), mtimeMs: fs.statSync(p).mtimeMs };
    }
  };
  walk(root);
  return out;
}
