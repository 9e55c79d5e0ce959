import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadStackFile } from "../components/config";
import { daemonJsonFragment, renderJson } from "../components/render/daemon-json";
import { renderSysctl } from "../components/render/sysctl";
import { REPO } from "./harness";

function synth(stack: string): { out: string; stdout: string; stderr: string; code: number } {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `synth-${stack}-`));
  const r = spawnSync(path.join(REPO, "node_modules", ".bin", "tsx"), [path.join(REPO, "tools", "synth.ts"), stack, out], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 120_000,
    // no credentials of any kind reach it
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: os.tmpdir() },
  });
  return { out, stdout: r.stdout, stderr: r.stderr, code: r.status ?? -1 };
}

describe("npm run synth", () => {
  it.each(["sark", "clu"])("writes %s's host files, commands and resource table, with no credentials", (stack) => {
    const r = synth(stack);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const config = loadStackFile(path.join(REPO, `Pulumi.${stack}.yaml`));
    const read = (rel: string) => fs.readFileSync(path.join(r.out, rel), "utf8");
    expect(read("host-files/etc/sysctl.d/90-dgx-storage.conf")).toBe(renderSysctl(config.sysctl));
    expect(read("host-files/etc/docker/daemon.json.managed-keys")).toBe(renderJson(daemonJsonFragment(config.docker.daemon)));
    const table = read("resources.md");
    expect(table).toContain(`| command:remote:Command | ${stack}-daemon-restart | ${stack}-daemon | ${stack}-daemon-merge |`);
    expect(table).toContain(`| docker:index/container:Container |`);
    const commands = fs.readdirSync(path.join(r.out, "commands")).sort();
    expect(commands).toEqual(expect.arrayContaining([`${stack}-daemon-merge.create.sh`, `${stack}-daemon-merge.delete.sh`, `${stack}-kernel-apply.create.sh`]));
    // the exact command string, runnable for review
    expect(read(`commands/${stack}-kernel-apply.create.sh`)).toMatch(/^#!\/bin\/sh\n# .*\nsudo -n bash -c '/);
    expect(fs.readdirSync(path.join(r.out, "scripts"))).toEqual(expect.arrayContaining(["lib.sh", "daemon-json-merge.sh", "swarm-join.sh"]));
    expect(r.stdout).toMatch(new RegExp(`^synth: ${stack}: \\d+ resources, 2 host files, \\d+ commands -> `));
  });

  it("marks the worker's join token as a secret stdin, never writing it", () => {
    const r = synth("clu");
    const join = fs.readFileSync(path.join(r.out, "commands", "clu-swarm-join.create.sh"), "utf8");
    expect(join).toContain("# stdin: [secret]");
    expect(join).not.toContain("<secret: swarmWorkerToken>");
  });

  it("fails clearly for an unknown stack", () => {
    const r = synth("nope");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("synth: no stack file Pulumi.nope.yaml");
  });
});
