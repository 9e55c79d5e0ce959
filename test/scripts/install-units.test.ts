import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseUnit, renderUnit, renderUnitSet, type UnitSet } from "../../components/render/systemd";
import { makeRoot, runScript, snapshotTree } from "./run";

const service = renderUnit([
  ["Unit", [["Description", "example job"]]],
  [
    "Service",
    [
      ["Type", "oneshot"],
      ["ExecStart", "/usr/local/lib/dgx-storage/job.sh first"],
      ["ExecStart", "/usr/local/lib/dgx-storage/job.sh second"],
    ],
  ],
]);
const timer = renderUnit([
  ["Unit", [["Description", "example job, daily"]]],
  [
    "Timer",
    [
      ["OnCalendar", "daily"],
      ["Persistent", true],
      ["RandomizedDelaySec", "30m"],
    ],
  ],
  ["Install", [["WantedBy", "timers.target"]]],
]);
const SET: UnitSet = {
  files: [
    { path: "/etc/systemd/system/dgx-example.service", mode: "0644", content: service },
    { path: "/etc/systemd/system/dgx-example.timer", mode: "0644", content: timer },
    { path: "/usr/local/lib/dgx-storage/job.sh", mode: "0755", content: "#!/bin/sh\necho job\n" },
  ],
  enable: ["dgx-example.timer"],
};
const apply = (root: string, set: UnitSet = SET) => runScript("install-units", ["apply", "example", renderUnitSet(set)], { ROOT: root });

describe("unit file writer", () => {
  it("round-trips, keeps order, repeats keys, writes booleans as yes/no", () => {
    expect(parseUnit(service)).toEqual([
      ["Unit", [["Description", "example job"]]],
      [
        "Service",
        [
          ["Type", "oneshot"],
          ["ExecStart", "/usr/local/lib/dgx-storage/job.sh first"],
          ["ExecStart", "/usr/local/lib/dgx-storage/job.sh second"],
        ],
      ],
    ]);
    expect(timer).toContain("\n[Timer]\nOnCalendar=daily\nPersistent=yes\nRandomizedDelaySec=30m\n");
    expect(timer.split("\n")[0]).toMatch(/^# Managed by dgx-storage/);
    expect(timer).toMatchSnapshot();
  });

  it("refuses a value with a line break (it would inject a directive)", () => {
    expect(() => renderUnit([["Service", [["ExecStart", "/bin/true\nExecStartPost=/bin/rm -rf /"]]]])).toThrow(/line break/);
  });
});

describe("install-units.sh", () => {
  it("GIVEN a new set THEN installs the files with their modes; a second run changes nothing", () => {
    const root = makeRoot();
    const r = apply(root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(root, "etc/systemd/system/dgx-example.timer"), "utf8")).toBe(timer);
    expect(fs.statSync(path.join(root, "usr/local/lib/dgx-storage/job.sh")).mode & 0o777).toBe(0o755);
    expect(r.stdout).toContain("would enable --now dgx-example.timer");
    const tree = snapshotTree(root);
    const again = apply(root);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain("changed");
    expect(snapshotTree(root)).toEqual(tree);
  });

  it("GIVEN a file dropped from the set THEN it is deleted; remove deletes the rest", () => {
    const root = makeRoot();
    apply(root);
    const smaller = { ...SET, files: SET.files.filter((f) => !f.path.endsWith(".sh")) };
    const r = apply(root, smaller);
    expect(r.stdout).toContain("deleted /usr/local/lib/dgx-storage/job.sh (no longer in set example)");
    expect(fs.existsSync(path.join(root, "usr/local/lib/dgx-storage/job.sh"))).toBe(false);
    const gone = runScript("install-units", ["remove", "example"], { ROOT: root });
    expect(gone.code).toBe(0);
    expect(fs.existsSync(path.join(root, "etc/systemd/system/dgx-example.timer"))).toBe(false);
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/units/example.files"))).toBe(false);
  });

  it.each([
    ["/etc/passwd", "is not a path this project installs to"],
    ["/etc/systemd/system/../../passwd", "is not a path this project installs to"],
  ])("refuses the path %s before writing anything", (p, message) => {
    const root = makeRoot();
    const r = apply(root, { files: [...SET.files, { path: p, mode: "0644", content: "x" }], enable: [] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(fs.existsSync(path.join(root, "etc/systemd/system/dgx-example.timer"))).toBe(false);
  });

  it("refuses a unit name to enable that is not one", () => {
    const r = apply(makeRoot(), { ...SET, enable: ["x.timer; reboot"] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not a unit name");
  });
});
