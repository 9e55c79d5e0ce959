/**
 * migrate.sh travels with its Python files inside one command string (components/render/command.ts):
 * the bundle defines each file's text, lib.sh's run_py runs it, and the whole stays under the
 * kernel's limit for one argument.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { bundledScript, CARRIED_FILES, carriedVariable, MAX_COMMAND_BYTES, SCRIPTS_DIR, scriptCommand } from "../../components/render/command";

describe("the migrate bundle", () => {
  const runArgs = [
    "run",
    "a-long-migration-name",
    "a-long-container-name",
    `/home/${"x".repeat(200)}/data`,
    `/data/${"y".repeat(200)}/data`,
    "/data",
    "10",
    "300",
    "borg:sark:sark:/mnt/borg-backup",
  ];

  it("GIVEN the largest arguments the config allows THEN the command stays under MAX_COMMAND_BYTES, below Linux's 128 KiB per argument", () => {
    const cmd = scriptCommand("migrate", runArgs, { sudo: true });
    expect(Buffer.byteLength(cmd)).toBeLessThan(MAX_COMMAND_BYTES);
    expect(MAX_COMMAND_BYTES).toBeLessThan(128 * 1024);
  });

  it("carries every .py file migrate.sh runs, each once, byte for byte", () => {
    const script = fs.readFileSync(path.join(SCRIPTS_DIR, "migrate.sh"), "utf8");
    const used = [...new Set([...script.matchAll(/run_py (\S+\.py)/g)].map((m) => m[1]!))].sort();
    expect([...(CARRIED_FILES.migrate ?? [])].sort()).toEqual(used);
    // what bash assigns is the file's text, quotes and all
    const bundle = bundledScript("migrate");
    const libBody = fs.readFileSync(path.join(SCRIPTS_DIR, "lib.sh"), "utf8").replace(/^#!.*\n/, "");
    const defs = bundle.slice(bundle.indexOf(libBody) + libBody.length, bundle.indexOf(script.replace(/^#!.*\n/, "")));
    for (const file of used) {
      const r = spawnSync("bash", ["-c", `${defs}\nprintf %s "$${carriedVariable(file)}"`], { encoding: "utf8" });
      expect(r.stdout).toBe(fs.readFileSync(path.join(SCRIPTS_DIR, file), "utf8"));
    }
  });

  it("GIVEN the command run away from any checkout THEN the carried Python runs (finalize reads the state file through it)", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-bundle-"));
    fs.mkdirSync(path.join(root, "src"));
    fs.mkdirSync(path.join(root, "var/lib/dgx-storage/migrations"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dgx-storage/migrations/m.json"), JSON.stringify({ state: "complete", completed_at: "2026-01-02T03:04:05Z" }));
    const cmd = scriptCommand("migrate", ["finalize", "m", "-", "/src", "/dst", "30"], { sudo: false });
    const r = spawnSync("bash", ["-c", cmd], { cwd: root, env: { ...process.env, ROOT: root }, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("migrate: migration m completed on 2026-01-02T03:04:05Z; nothing to do\n");
    fs.rmSync(root, { recursive: true });
  });
});
