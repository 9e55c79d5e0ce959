import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { renderSysctl } from "../../components/render/sysctl";
import { makeRoot, runScript, snapshotTree } from "./run";

const FILE = "/etc/sysctl.d/90-dgx-storage.conf";
const CONTENT = renderSysctl({ "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 });
/** A fake kernel: /proc/sys under ROOT with the distribution defaults. */
const kernel = () => makeRoot({ "proc/sys/vm/swappiness": "60\n", "proc/sys/vm/vfs_cache_pressure": "100\n" });
const live = (root: string, key: string) => fs.readFileSync(path.join(root, "proc/sys", key.replace(/\./g, "/")), "utf8").trim();

describe("sysctl-apply.sh", () => {
  it("GIVEN default values WHEN applied THEN the file is written, values are set and read back; a second run changes nothing", () => {
    const root = kernel();
    const r = runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("parameters reloaded");
    expect(r.stdout).toContain("vm.swappiness = 10");
    expect(fs.readFileSync(path.join(root, FILE), "utf8")).toBe(CONTENT);
    expect([live(root, "vm.swappiness"), live(root, "vm.vfs_cache_pressure")]).toEqual(["10", "50"]);

    const tree = snapshotTree(root);
    const again = runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("unchanged; live values already match");
    expect(snapshotTree(root)).toEqual(tree);
  });

  it("GIVEN a live value changed by hand THEN the next apply sets it again", () => {
    const root = kernel();
    runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root });
    fs.writeFileSync(path.join(root, "proc/sys/vm/swappiness"), "60\n");
    const r = runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("unchanged; parameters reloaded");
    expect(live(root, "vm.swappiness")).toBe("10");
  });

  it("GIVEN a value the kernel does not keep THEN the read-back fails naming the parameter, wanted and live value", () => {
    const root = kernel();
    // a parameter that swallows writes, like a kernel refusing or clamping the value
    fs.rmSync(path.join(root, "proc/sys/vm/vfs_cache_pressure"));
    fs.symlinkSync("/dev/null", path.join(root, "proc/sys/vm/vfs_cache_pressure"));
    const r = runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("vm.vfs_cache_pressure is  after reload, wanted 50");
    expect(r.stderr).toContain("grep -rn vm.vfs_cache_pressure /etc/sysctl.d");
    expect(r.stdout).toContain("vm.swappiness = 10");
  });

  it("GIVEN a parameter this kernel does not have THEN it fails before writing the file", () => {
    const root = kernel();
    const r = runScript("sysctl-apply", ["apply", FILE, renderSysctl({ "vm.no_such_knob": 1 })], { ROOT: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("kernel parameter 'vm.no_such_knob' does not exist");
    expect(fs.existsSync(path.join(root, FILE))).toBe(false);
  });

  it("remove deletes the file and restores the values from before the first apply", () => {
    const root = kernel();
    runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root });
    runScript("sysctl-apply", ["apply", FILE, CONTENT], { ROOT: root }); // originals recorded once
    const r = runScript("sysctl-apply", ["remove", FILE], { ROOT: root });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(root, FILE))).toBe(false);
    expect([live(root, "vm.swappiness"), live(root, "vm.vfs_cache_pressure")]).toEqual(["60", "100"]);
  });

  it("refuses a file outside /etc/sysctl.d", () => {
    const r = runScript("sysctl-apply", ["apply", "/etc/passwd", CONTENT], { ROOT: kernel() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("must be /etc/sysctl.d/<name>.conf");
  });
});
