import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "vitest";
import { FIREWALL_FILE, FIREWALL_UNIT, renderFirewall, renderFirewallUnit } from "../../components/render/firewall";
import { describeWith, itWith } from "../tools";
import { makeRoot, runScript, snapshotTree } from "./run";

const RULESET = renderFirewall({ clients: ["198.51.100.0/24"], peer: "192.0.2.11", published: [{ ip: "192.0.2.10", port: 8000, protocol: "tcp" }] });
const UNIT = renderFirewallUnit();
const UNIT_PATH = `/etc/systemd/system/${FIREWALL_UNIT}`;
const read = (root: string, p: string) => fs.readFileSync(path.join(root, p), "utf8");

// Documentation addresses (RFC 5737): the network guard refuses the servers' in a unit test.
// ROOT: files under a temporary root, no systemctl, the kernel's ruleset left alone; nft checks the
// ruleset's syntax for real (`nft -c`), so the suite needs it
describeWith({ tools: ["nft"] }, "firewall.sh", () => {
  itWith({ tools: ["nft"] }, "GIVEN a fresh host WHEN applied THEN the ruleset and unit are written and the unit enabled; a second run changes nothing", () => {
    const root = makeRoot();
    const r = runScript("firewall", ["apply", RULESET, UNIT], { ROOT: root });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(read(root, FIREWALL_FILE)).toBe(RULESET);
    expect(read(root, UNIT_PATH)).toBe(UNIT);
    expect(fs.statSync(path.join(root, FIREWALL_FILE)).mode & 0o777).toBe(0o644);
    expect(r.stdout).toContain(`(ROOT) systemctl enable ${FIREWALL_UNIT}`);
    expect(r.stdout).toContain("(ROOT) nft -f /etc/dgx-storage/firewall.nft");

    const tree = snapshotTree(root);
    const again = runScript("firewall", ["apply", RULESET, UNIT], { ROOT: root });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("is loaded as declared; nothing to do");
    expect(again.stdout).not.toContain("daemon-reload");
    expect(snapshotTree(root)).toEqual(tree);
  });

  itWith({ tools: ["nft"] }, "GIVEN a ruleset nft refuses THEN nothing is written and nft's message is shown", () => {
    const root = makeRoot();
    const r = runScript("firewall", ["apply", RULESET.replace("priority filter - 1", "priority nonsense"), UNIT], { ROOT: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nft refused the ruleset; nothing was changed");
    expect(r.stderr).toMatch(/Error/);
    expect(fs.existsSync(path.join(root, FIREWALL_FILE))).toBe(false);
    expect(fs.existsSync(path.join(root, UNIT_PATH))).toBe(false);
  });

  itWith({ tools: ["nft"] }, "GIVEN a changed ruleset THEN the file is replaced and loaded again", () => {
    const root = makeRoot();
    runScript("firewall", ["apply", RULESET, UNIT], { ROOT: root });
    const wider = renderFirewall({
      clients: ["198.51.100.0/24", "203.0.113.0/24"],
      peer: "192.0.2.11",
      published: [{ ip: "192.0.2.10", port: 8000, protocol: "tcp" }],
    });
    const r = runScript("firewall", ["apply", wider, UNIT], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(ROOT) nft -f /etc/dgx-storage/firewall.nft");
    expect(read(root, FIREWALL_FILE)).toContain("203.0.113.0/24");
  });

  itWith({ tools: ["nft"] }, "GIVEN DRY_RUN THEN it says what would change and writes nothing", () => {
    const root = makeRoot();
    const r = runScript("firewall", ["apply", RULESET, UNIT], { ROOT: root, DRY_RUN: "1" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`dry run: /etc/dgx-storage/firewall.nft changed, ${FIREWALL_UNIT} changed`);
    expect(fs.existsSync(path.join(root, FIREWALL_FILE))).toBe(false);
  });

  itWith({ tools: ["nft"] }, "GIVEN an applied firewall WHEN removed THEN the unit, the file and the record are gone; removing again is fine", () => {
    const root = makeRoot();
    runScript("firewall", ["apply", RULESET, UNIT], { ROOT: root });
    const r = runScript("firewall", ["remove"], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`removed ${FIREWALL_UNIT}`);
    expect(fs.existsSync(path.join(root, FIREWALL_FILE))).toBe(false);
    expect(fs.existsSync(path.join(root, UNIT_PATH))).toBe(false);
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/firewall.state"))).toBe(false);
    expect(runScript("firewall", ["remove"], { ROOT: root }).code).toBe(0);
  });

  itWith({ tools: ["nft"] }, "GIVEN wrong arguments THEN the usage is printed", () => {
    const r = runScript("firewall", ["apply", RULESET], { ROOT: makeRoot() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("usage: firewall.sh apply '<ruleset>' '<unit>' | remove");
  });
});
