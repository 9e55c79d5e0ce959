import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { compareWithTargets, FIO_JOBS, parseFioJson, parseFioSummary } from "../../components/render/fio";
import { describeWith } from "../tools";
import { makeRoot, runScript } from "./run";

const NAME = "fio-baseline";

describe("fio-baseline.sh argument checks", () => {
  it.each([
    [["/data", "1G", "10"], "usage: fio-baseline.sh <dir> <size> <runtime-seconds> <out.json>"],
    [["data", "1G", "10", "/o.json"], "the directory must be an absolute path"],
    [["/data", "1G", "10", "/o.txt"], "the output must be an absolute path ending in .json"],
    [["/data", "1T", "10", "/o.json"], "the size must be a number with an optional K, M or G suffix"],
    [["/data", "1G", "0", "/o.json"], "the runtime must be a whole number of seconds"],
    [["/nope", "1G", "10", "/o.json"], "/nope is not a directory"],
  ])("%j -> %s", (args, message) => {
    const r = runScript(NAME, args, { ROOT: makeRoot() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
  });

  it("GIVEN a size that does not fit THEN it says so before running fio", () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, "data"));
    const r = runScript(NAME, ["/data", "999999G", "1", "/out/b.json"], { ROOT: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/data has \d+ MiB free; the 999999G test file plus 1 GiB headroom does not fit/);
  });

  it("DRY_RUN=1 runs nothing and writes nothing", () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, "data"));
    const r = runScript(NAME, ["/data", "16M", "1", "/out/b.json"], { ROOT: root, DRY_RUN: "1" });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("fio-baseline: dry run: would run fio (4 jobs, 1s each, 16M file) in /data and write /out/b.json\n");
    expect(fs.existsSync(path.join(root, "out"))).toBe(false);
  });
});

describeWith({ tools: ["fio"] }, "fio-baseline.sh with the real fio", () => {
  it("GIVEN a temp dir THEN four jobs run, the summary is written and printed, the test file is gone; a re-run measures again", () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, "data"));
    const r = runScript(NAME, ["/data", "16M", "1", "/var/lib/dgx-storage/fio/data.json"], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("fio-baseline: running fio in /data: 4 jobs x 1s on a 16M file (removed afterwards)");
    const printed = parseFioSummary(r.stdout);
    const written = fs.readFileSync(path.join(root, "var/lib/dgx-storage/fio/data.json"), "utf8");
    expect(parseFioSummary(written)).toEqual(printed);
    expect(Object.keys(printed.jobs)).toEqual([...FIO_JOBS]);
    expect(printed).toMatchObject({ version: 1, dir: "/data", size: "16M", runtimeSeconds: 1 });
    expect(printed.measuredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    for (const j of Object.values(printed.jobs)) {
      expect(j.iops).toBeGreaterThan(0);
      expect(j.latencyUs.p99).toBeGreaterThanOrEqual(j.latencyUs.p50!);
    }
    // the TypeScript parser reads fio's raw output kept beside the summary the same way
    const raw = fs.readFileSync(path.join(root, "var/lib/dgx-storage/fio/data.fio.json"), "utf8");
    expect(parseFioJson(raw).jobs).toEqual(printed.jobs);
    expect(compareWithTargets(printed)).toHaveLength(4);
    expect(fs.readdirSync(path.join(root, "data"))).toEqual([]);

    const again = runScript(NAME, ["/data", "16M", "1", "/var/lib/dgx-storage/fio/data.json"], { ROOT: root });
    expect(again.code).toBe(0);
    expect(parseFioSummary(again.stdout).measuredAt).toBeDefined();
    expect(fs.readdirSync(path.join(root, "data"))).toEqual([]);
  });

  it("GIVEN fio fails THEN a clear error and no test file left", () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, "data"));
    // fio refuses an unknown ioengine exactly as it refuses O_DIRECT on a filesystem without it
    const bin = makeRoot({ fio: `#!/usr/bin/env bash\necho "fio: pid=1, err=22/file:filesetup.c:805, func=open(), error=Invalid argument" >&2\nexit 1\n` });
    fs.chmodSync(path.join(bin, "fio"), 0o755);
    const r = runScript(NAME, ["/data", "16M", "1", "/out/b.json"], { ROOT: root, PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "fio-baseline: error: fio failed in /data (a filesystem without O_DIRECT support, e.g. an old tmpfs, cannot be measured): fio: pid=1, err=22",
    );
    expect(fs.readdirSync(path.join(root, "data"))).toEqual([]);
    expect(fs.existsSync(path.join(root, "out/b.json"))).toBe(false);
  });
});
