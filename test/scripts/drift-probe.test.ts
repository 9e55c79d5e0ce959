import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { renderDriftTable, type Drift, type DriftExpectation } from "../../components/render/drift";
import { renderSysctl } from "../../components/render/sysctl";
import { makeRoot, runScript, snapshotTree } from "./run";

const SYSCTL = renderSysctl({ "vm.swappiness": 10 });
const FRAGMENT = JSON.stringify({ "log-driver": "json-file", "storage-driver": "overlay2" });
const EXPECT: DriftExpectation = {
  host: "sark",
  files: [
    { path: "/etc/sysctl.d/90-dgx-storage.conf", content: SYSCTL, kind: "file" },
    { path: "/etc/docker/daemon.json", content: FRAGMENT, kind: "managed-keys" },
  ],
  sysctl: { "vm.swappiness": "10" },
  enabledUnits: ["dgx-storage-alert.timer"],
  containers: [],
  migrations: ["chromadb"],
};

/** A host as the program leaves it; storage-driver left to a dockerd flag by the merge. */
function converged(): string {
  return makeRoot({
    "etc/sysctl.d/90-dgx-storage.conf": SYSCTL,
    "etc/docker/daemon.json": JSON.stringify({ "default-runtime": "nvidia", "log-driver": "json-file" }),
    "var/lib/dgx-storage/daemon-json.state.json": JSON.stringify({ managed: { "log-driver": { present: false, value: null } } }),
    "var/lib/dgx-storage/migrations/chromadb.json": JSON.stringify({ state: "complete" }),
    "proc/sys/vm/swappiness": "10\n",
  });
}

function probe(root: string): Drift[] {
  const r = runScript("drift-probe", [], { ROOT: root }, { input: JSON.stringify(EXPECT) });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Drift[];
}

describe("drift-probe.sh", () => {
  it("GIVEN a host as declared THEN no drift (a key left to a dockerd flag is not expected in the file)", () => {
    expect(probe(converged())).toEqual([]);
  });

  it("GIVEN a hand-edited daemon.json key, sysctl file and live value, and an unfinished migration THEN exactly those", () => {
    const root = converged();
    fs.writeFileSync(path.join(root, "etc/docker/daemon.json"), JSON.stringify({ "default-runtime": "nvidia", "log-driver": "local" }));
    fs.appendFileSync(path.join(root, "etc/sysctl.d/90-dgx-storage.conf"), "vm.dirty_ratio = 5\n");
    fs.writeFileSync(path.join(root, "proc/sys/vm/swappiness"), "60\n");
    fs.writeFileSync(path.join(root, "var/lib/dgx-storage/migrations/chromadb.json"), JSON.stringify({ state: "verified" }));
    const drifts = probe(root);
    expect(drifts.map((d) => [d.kind, d.what, d.expected, d.actual.replace(/sha256 \w+ /, "sha256 … ")])).toEqual([
      ["file", "/etc/sysctl.d/90-dgx-storage.conf", expect.stringMatching(/^sha256 /), "sha256 … (edited on the host?)"],
      ["daemon.json", "log-driver", '"json-file"', '"local"'],
      ["sysctl", "vm.swappiness", "10", "60"],
      ["migration", "chromadb", "complete", "verified"],
    ]);
  });

  it("GIVEN a missing file THEN it says so; the probe never writes", () => {
    const root = converged();
    fs.rmSync(path.join(root, "etc/sysctl.d/90-dgx-storage.conf"));
    const before = snapshotTree(root);
    expect(probe(root)).toContainEqual({ kind: "file", what: "/etc/sysctl.d/90-dgx-storage.conf", expected: "present", actual: "missing" });
    // content, mode and mtime of every file and directory
    expect(snapshotTree(root)).toEqual(before);
  });
});

describe("drift table", () => {
  it("prints one line per difference, or no drift", () => {
    expect(renderDriftTable("clu", [])).toBe("clu: no drift\n");
    const t = renderDriftTable("sark", [{ kind: "sysctl", what: "vm.swappiness", expected: "10", actual: "60" }]);
    expect(t.split("\n")).toEqual(["sark: 1 difference", "kind    what           expected  actual", "sysctl  vm.swappiness  10        60", ""]);
  });
});
