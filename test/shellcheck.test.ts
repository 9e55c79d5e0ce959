import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { SCRIPTS_DIR } from "../components/render/command";
import { REPO } from "./harness";

function shellFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === ".cache" ? [] : shellFiles(p);
    return e.name.endsWith(".sh") || (e.isFile() && fs.readFileSync(p, "utf8").startsWith("#!/usr/bin/env bash")) ? [p] : [];
  });
}

const files = [
  ...shellFiles(SCRIPTS_DIR),
  ...shellFiles(path.join(REPO, "test")),
  ...shellFiles(path.join(REPO, ".ci")),
  ...shellFiles(path.join(REPO, "tools")),
];

describe("shell scripts", () => {
  it("exist", () => {
    expect(files.map((f) => path.basename(f))).toEqual(
      expect.arrayContaining(["lib.sh", "daemon-json-merge.sh", "docker-restart.sh", "sysctl-apply.sh", "run"]),
    );
  });

  it.each(files.map((f) => [path.relative(REPO, f)]))("%s passes shellcheck", (rel) => {
    const r = spawnSync("shellcheck", ["-x", "-P", "SCRIPTDIR", rel], { cwd: REPO, encoding: "utf8" });
    expect(r.error, "shellcheck is not installed (apt-get install shellcheck)").toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.each(files.filter((f) => f.startsWith(SCRIPTS_DIR)).map((f) => [path.basename(f)]))("%s uses bash strict mode", (name) => {
    const text = fs.readFileSync(path.join(SCRIPTS_DIR, name), "utf8");
    expect(text.startsWith("#!/usr/bin/env bash\n")).toBe(true);
    // scripts get strict mode from lib.sh, which they source first
    expect(name === "lib.sh" ? text : fs.readFileSync(path.join(SCRIPTS_DIR, "lib.sh"), "utf8")).toContain("set -euo pipefail");
    if (name !== "lib.sh") expect(text).toMatch(/\. "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/lib\.sh"/);
  });
});
