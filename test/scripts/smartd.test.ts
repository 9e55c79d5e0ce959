import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { SMARTD_ALERT_HOOK } from "../../components/render/monitoring";
import { renderSmartdConf } from "../../components/render/smartd";
import { describeWith } from "../tools";
import { makeRoot, runScript, snapshotTree } from "./run";

const NAME = "smartd-config";
const FILE = "/etc/smartd.conf";
const CONTENT = renderSmartdConf({ devices: [{ path: "/dev/nvme0" }, { path: "/dev/nvme1" }], alertExec: SMARTD_ALERT_HOOK });
const DISTRO = "DEVICESCAN -d removable -n standby -m root -M exec /usr/share/smartmontools/smartd-runner\n";

/** A stub smartd that answers like smartd 7.3 with the given exit status, and records its stdin. */
function smartd(rc: number): string {
  const bin = makeRoot();
  const msg: Record<number, string> = {
    0: "Configuration file <stdin> parsed.",
    2: "File <stdin> line 3 (drive /dev/nvme0): unknown Directive: -Z\\nConfiguration file <stdin> has fatal syntax errors.",
    16: "Configuration file <stdin> parsed.\\nDevice: /dev/nvme1, open() failed: No such device\\nUnable to register device /dev/nvme1 (no Directive -d removable). Exiting.",
  };
  fs.writeFileSync(
    path.join(bin, "smartd"),
    `#!/usr/bin/env bash\ncat >"${bin}/stdin"; printf '%s\\n' "$*" >"${bin}/args"; printf '${msg[rc]}\\n'; exit ${rc}\n`,
    { mode: 0o755 },
  );
  return bin;
}
const env = (root: string, bin: string) => ({ ROOT: root, PATH: `${bin}:${process.env.PATH}` });

describe("smartd-config.sh", () => {
  it("GIVEN the distribution's file and devices present THEN checks with smartd, keeps the original once, writes, reloads; a second run changes nothing", () => {
    const root = makeRoot({ "etc/smartd.conf": DISTRO });
    const bin = smartd(0);
    const r = runScript(NAME, ["apply", FILE, CONTENT], env(root, bin));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(bin, "args"), "utf8")).toBe("-q onecheck -c -\n");
    expect(fs.readFileSync(path.join(bin, "stdin"), "utf8")).toBe(CONTENT);
    expect(r.stdout).toBe(
      [
        "smartd-config: smartd checked the configuration and every device in it",
        "smartd-config: kept the distribution's /etc/smartd.conf as /var/lib/dgx-storage/smartd.conf.original",
        "smartd-config: /etc/smartd.conf changed",
        "smartd-config: (no systemd) would systemctl restart smartd.service",
        "",
      ].join("\n"),
    );
    expect(fs.readFileSync(path.join(root, FILE), "utf8")).toBe(CONTENT);
    expect(fs.readFileSync(path.join(root, "var/lib/dgx-storage/smartd.conf.original"), "utf8")).toBe(DISTRO);

    const tree = snapshotTree(root);
    const again = runScript(NAME, ["apply", FILE, CONTENT], env(root, bin));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("/etc/smartd.conf unchanged");
    expect(again.stdout).not.toContain("would systemctl");
    expect(snapshotTree(root)).toEqual(tree);

    // a changed config keeps the first original, not our own previous file
    runScript(NAME, ["apply", FILE, CONTENT.replace("0,0,71", "0,0,76")], env(root, bin));
    expect(fs.readFileSync(path.join(root, "var/lib/dgx-storage/smartd.conf.original"), "utf8")).toBe(DISTRO);

    const removed = runScript(NAME, ["remove", FILE], env(root, bin));
    expect(removed.code).toBe(0);
    expect(fs.readFileSync(path.join(root, FILE), "utf8")).toBe(DISTRO);
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/smartd.conf.original"))).toBe(false);
  });

  it("GIVEN a syntax error THEN smartd's message and nothing written", () => {
    const root = makeRoot({ "etc/smartd.conf": DISTRO });
    const r = runScript(NAME, ["apply", FILE, CONTENT + "/dev/nvme0 -Z\n"], env(root, smartd(2)));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "smartd rejected the configuration (exit 2); nothing was written: File <stdin> line 3 (drive /dev/nvme0): unknown Directive: -Z",
    );
    expect(fs.readFileSync(path.join(root, FILE), "utf8")).toBe(DISTRO);
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage"))).toBe(false);
  });

  it("GIVEN a device that is not there THEN an error, unless --allow-missing-devices: then written, smartd left alone", () => {
    const root = makeRoot();
    const bin = smartd(16);
    const r = runScript(NAME, ["apply", FILE, CONTENT], env(root, bin));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("a device in the configuration is not present or not readable on");
    expect(r.stderr).toContain("Unable to register device /dev/nvme1");
    expect(fs.existsSync(path.join(root, FILE))).toBe(false);

    const ok = runScript(NAME, ["apply", FILE, CONTENT, "--allow-missing-devices"], env(root, bin));
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("warning: the configuration parses, but smartd cannot monitor its devices");
    expect(ok.stdout).toContain("smartd not (re)started: none of the configured devices is present");
    expect(fs.readFileSync(path.join(root, FILE), "utf8")).toBe(CONTENT);
    // there was no file before: remove deletes ours
    runScript(NAME, ["remove", FILE], env(root, bin));
    expect(fs.existsSync(path.join(root, FILE))).toBe(false);
  });

  it.each([
    [["apply", FILE], "usage: smartd-config.sh apply <file> <content> [--allow-missing-devices] | remove <file>"],
    [["apply", FILE, "x", "--yes"], "usage:"],
    [["apply", "/etc/passwd", "x"], "the file must be an absolute path ending in smartd.conf"],
    [["apply", FILE, ""], "the content for /etc/smartd.conf is empty"],
  ])("refuses %j", (args, message) => {
    const r = runScript(NAME, args, { ROOT: makeRoot() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
  });
});

describeWith({ tools: ["smartd"] }, "smartd-config.sh with the real smartd (no NVMe here)", () => {
  it("GIVEN the rendered config THEN smartd parses it; the missing devices are reported (exit 16)", () => {
    const root = makeRoot();
    const r = runScript(NAME, ["apply", FILE, CONTENT, "--allow-missing-devices"], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/cannot monitor its devices on .* \(exit 1[67], --allow-missing-devices given\): Device: \/dev\/nvme0/);
    expect(fs.readFileSync(path.join(root, FILE), "utf8")).toBe(CONTENT);
  });

  it("GIVEN a directive smartd does not know THEN the real smartd rejects it", () => {
    const r = runScript(NAME, ["apply", FILE, "/dev/nvme0 -d nvme -Z\n", "--allow-missing-devices"], { ROOT: makeRoot() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("smartd rejected the configuration (exit 2)");
    expect(r.stderr).toContain("unknown Directive: -Z");
  });
});
