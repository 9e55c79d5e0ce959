/**
 * The host paths are defined once (components/render/host-paths.ts) and reach every script in its
 * bundle; the scripts use what they get and hold no copy of their own.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { bundledScript, CARRIED_FILES, hostPathAssignments, SCRIPTS_DIR, scriptCommand, type ScriptName } from "../../components/render/command";
import { HOST_PATH_VARIABLES, HOST_PATHS } from "../../components/render/host-paths";
import { REPO } from "../harness";
import { makeRoot, runScript } from "./run";

const LITERALS = Object.values(HOST_PATHS);
const SCRIPTS = fs
  .readdirSync(SCRIPTS_DIR)
  .filter((f) => f.endsWith(".sh") && f !== "lib.sh" && !Object.values(CARRIED_FILES).some((files) => files?.includes(f)))
  .map((f) => f.replace(/\.sh$/, "") as ScriptName);

/** Every .ts file under a directory, relative to the repository. */
function tsFiles(dir: string): string[] {
  return fs.readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(rel) : e.name.endsWith(".ts") ? [rel] : [];
  });
}

describe("host paths: one definition, passed to the scripts", () => {
  it("GIVEN every script's bundle THEN it sets the five paths from the definition, before lib.sh runs", () => {
    expect(SCRIPTS.length).toBeGreaterThan(20);
    for (const name of SCRIPTS) {
      const bundle = bundledScript(name);
      expect(bundle.startsWith(`#!/usr/bin/env bash\n${hostPathAssignments()}`)).toBe(true);
    }
    const r = spawnSync(
      "bash",
      [
        "-c",
        `${hostPathAssignments()}. ${path.join(SCRIPTS_DIR, "lib.sh")}\nprintf '%s\\n' "$DGX_ETC_DIR" "$DGX_LIB_DIR" "$DGX_VAR_DIR" "$DGX_LOG_DIR" "$DGX_TEXTFILE_DIR" "$STATE_DIR"`,
      ],
      {
        env: { PATH: process.env.PATH ?? "" },
        encoding: "utf8",
      },
    );
    expect(r.stdout).toBe([HOST_PATHS.etc, HOST_PATHS.lib, HOST_PATHS.var, HOST_PATHS.log, HOST_PATHS.textfile, HOST_PATHS.var, ""].join("\n"));
  });

  it("GIVEN no script file but lib.sh's test defaults THEN no script spells a host path itself; no TypeScript file but the definition either", () => {
    const scripts = fs.readdirSync(SCRIPTS_DIR).filter((f) => /\.(sh|py)$/.test(f));
    const offending: string[] = [];
    for (const f of scripts) {
      fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (LITERALS.some((p) => line.includes(p)) && !(f === "lib.sh" && /^\t: "\$\{DGX_[A-Z]+_DIR:=/.test(line))) offending.push(`${f}:${i + 1}`);
        });
    }
    for (const f of [...tsFiles("components"), "index.ts"].filter((x) => x !== path.join("components", "render", "host-paths.ts"))) {
      if (LITERALS.some((p) => fs.readFileSync(path.join(REPO, f), "utf8").includes(p))) offending.push(f);
    }
    expect(offending).toEqual([]);
  });

  it("GIVEN lib.sh's defaults for a test run with ROOT THEN they are the definition's paths", () => {
    const lib = fs.readFileSync(path.join(SCRIPTS_DIR, "lib.sh"), "utf8");
    const defaults = Object.fromEntries([...lib.matchAll(/\$\{(DGX_[A-Z]+_DIR):=([^}]+)\}/g)].map((m) => [m[1]!, m[2]!]));
    expect(defaults).toEqual(HOST_PATH_VARIABLES);
  });

  it("GIVEN a script run without ROOT and without the paths THEN lib.sh refuses, naming the variable", () => {
    const r = spawnSync("bash", ["-c", `. ${path.join(SCRIPTS_DIR, "lib.sh")}; echo loaded`], { env: { PATH: process.env.PATH ?? "" }, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("DGX_ETC_DIR is not set to an absolute path");
  });

  it("GIVEN other paths THEN the scripts use them: secret-file writes under the DGX_ETC_DIR it got and refuses the default one", () => {
    const root = makeRoot();
    const env = { ROOT: root, DGX_ETC_DIR: "/etc/elsewhere" };
    const ok = runScript("secret-file", ["apply", "/etc/elsewhere/alert-webhook"], env, { input: "https://example.invalid/hook\n" });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(fs.readFileSync(path.join(root, "etc/elsewhere/alert-webhook"), "utf8")).toBe("https://example.invalid/hook\n");
    const refused = runScript("secret-file", ["apply", `${HOST_PATHS.etc}/alert-webhook`], env, { input: "x\n" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`is not a file under /etc/elsewhere/`);
    expect(fs.existsSync(path.join(root, HOST_PATHS.etc))).toBe(false);
    fs.rmSync(root, { recursive: true });
  });

  it("GIVEN the command a host runs THEN the bundle's paths win over the environment: the state goes under the defined DGX_VAR_DIR", () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, "src"));
    fs.mkdirSync(path.join(root, HOST_PATHS.var, "migrations"), { recursive: true });
    fs.writeFileSync(path.join(root, HOST_PATHS.var, "migrations/m.json"), JSON.stringify({ state: "complete", completed_at: "2026-01-02T03:04:05Z" }));
    const cmd = scriptCommand("migrate", ["finalize", "m", "-", "/src", "/dst", "30"], { sudo: false });
    const r = spawnSync("bash", ["-c", cmd], { env: { ...process.env, ROOT: root, DGX_VAR_DIR: "/var/lib/elsewhere" }, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("migrate: migration m completed on 2026-01-02T03:04:05Z; nothing to do\n");
    fs.rmSync(root, { recursive: true });
  });
});
