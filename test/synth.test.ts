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
    // daemon.json keys, sysctl.d, the monitoring unit set (5 files), /etc/smartd.conf, and the backup
    // unit set (daily, hourly, check, verify, drill: service + timer each, and borg-run.sh; the
    // off-site units only once the other host's key is pinned)
    const summary = new RegExp(`^synth: ${stack}: \\d+ resources, (\\d+) host files, \\d+ commands -> `).exec(r.stdout);
    expect(summary).not.toBeNull();
    // the count it reports is the files it wrote
    const written = fs.readdirSync(path.join(r.out, "host-files"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(written).toHaveLength(Number(summary![1]));
    expect(written.length).toBeGreaterThan(10);
    expect(read("host-files/etc/smartd.conf")).toContain("/dev/nvme0n1 -d nvme -H -l error -W 0,0,71 ");
    expect(read("host-files/etc/systemd/system/dgx-storage-alert.timer")).toContain("OnUnitActiveSec=5min");
  });

  it.each(["sark", "clu"])("writes %s's capacity chart with both hosts' series and the 60/80/90%% threshold lines", (stack) => {
    const r = synth(stack);
    expect(r.code).toBe(0);
    const file = path.join(r.out, "capacity.svg");
    const svg = fs.readFileSync(file, "utf8");
    // one 960x480 chart, a few kB: three series (sark, sark's backup disk, clu) and their tooltips
    expect(fs.statSync(file).size).toBeGreaterThan(3_000);
    expect(fs.statSync(file).size).toBeLessThan(20_000);
    expect(svg).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="960" height="480"/);
    for (const id of ["series-sark", "series-clu", "series-sark-backup", "threshold-60", "threshold-80", "threshold-90"])
      expect(svg).toContain(`<g id="${id}"`);
    expect(svg).toContain("Add additional container storage volumes");
    expect(svg).toContain("Archive cold data to external storage");
    // well-formed XML (python's parser), and the series it finds
    const parsed = spawnSync(
      "python3",
      [
        "-c",
        "import sys, xml.etree.ElementTree as E; t = E.parse(sys.argv[1]); ns = '{http://www.w3.org/2000/svg}'; print(sorted(g.get('id') for g in t.iter(ns + 'g') if (g.get('id') or '').startswith('series-')))",
        file,
      ],
      { encoding: "utf8" },
    );
    expect(parsed.stderr).toBe("");
    expect(parsed.stdout.trim()).toBe("['series-clu', 'series-sark', 'series-sark-backup']");
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
