import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { REPO, runStack, stackFileConfig } from "./harness";

const HOOK = "./tools/register-ts.cjs";

function node(args: readonly string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, args, {
    cwd: REPO,
    encoding: "utf8",
    timeout: 120_000,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: os.tmpdir(), ...env },
  });
}

describe("how pulumi runs the program (Pulumi.yaml runtime options)", () => {
  it("GIVEN Pulumi.yaml THEN the SDK's ts-node is off and node preloads the type-stripping hook", () => {
    const project = parseYaml(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8")) as { runtime: { name: string; options: Record<string, unknown> } };
    expect(project.runtime.name).toBe("nodejs");
    expect(project.runtime.options).toMatchObject({ typescript: false, nodeargs: `--require ${HOOK}` });
    expect(fs.existsSync(path.join(REPO, HOOK))).toBe(true);
    // what the hook needs at `pulumi up` is a dependency, and the type check it skips runs in npm test
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(pkg.dependencies.esbuild).toBeDefined();
    expect(pkg.scripts.test).toMatch(/^npm run typecheck && /);
    expect(pkg.scripts.typecheck).toBe("tsc -p .");
  });

  it("loads TypeScript through its cache: a second run reads the cached output", () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "register-ts-"));
    const env = { REGISTER_TS_CACHE_DIR: cache };
    const script = 'process.stdout.write(require("./test/fixtures.ts").FIXTURE_HOST_KEY)';
    const first = node(["--require", HOOK, "-e", script], env);
    expect(first.stderr).toBe("");
    expect(first.stdout).toMatch(/^ssh-ed25519 AAAA/);
    const [cached] = fs.readdirSync(cache);
    expect(cached).toMatch(/^[0-9a-f]{64}\.js$/);
    // a marked copy in the cache is what the next run executes: the file is not compiled again
    const file = path.join(cache, cached!);
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/ssh-ed25519 AAAA/, "from-cache AAAA"));
    expect(node(["--require", HOOK, "-e", script], env).stdout).toMatch(/^from-cache AAAA/);
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it("GIVEN the worker's stack THEN the program registers what the mock harness sees, with no 'Undefined value' warning", async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "register-ts-"));
    // the child the preview benchmark runs: the program in its root Stack resource under the
    // mock runtime, loaded as run.js loads it with these runtime options
    const r = node(["--require", HOOK, "bench/preview-child.cjs", "new", "clu"], { REGISTER_TS_CACHE_DIR: cache });
    fs.rmSync(cache, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(0);
    const harness = await runStack({ stack: "clu", config: stackFileConfig("Pulumi.clu.yaml") });
    // the harness records the program's resources; the child also counts the root Stack resource
    expect(JSON.parse(r.stdout.trim()) as { resources: number }).toMatchObject({ mode: "new", stack: "clu", resources: harness.registrations.length + 1 });
    expect(r.stderr).not.toContain("Undefined value");
  });
});
