import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadStackFile } from "../../components/config";
import { capacityInputs, capacitySeries, plannedCapacity } from "../../components/plan/monitoring";
import { projectCapacity } from "../../components/render/capacity";
import { REPO } from "../harness";

/** The import specifiers of a TypeScript file. */
function importsOf(file: string): string[] {
  return [...fs.readFileSync(file, "utf8").matchAll(/^import [^;]*? from "([^"]+)";/gms)].map((m) => m[1]!);
}

const filesUnder = (dir: string) =>
  fs
    .readdirSync(path.join(REPO, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(dir, f));

describe("plan and config: pure, no SDK", () => {
  it("GIVEN components/plan and the config door (but its runtime entry) THEN nothing imports @pulumi", () => {
    const files = [...filesUnder("components/plan"), ...filesUnder("components/config").filter((f) => !f.endsWith("runtime.ts"))];
    expect(files.length).toBeGreaterThan(15);
    const offending = files.filter((f) => importsOf(path.join(REPO, f)).some((s) => s.startsWith("@pulumi/")));
    expect(offending).toEqual([]);
  });

  it("GIVEN the components THEN none imports dgx-host.ts (HostFile lives in the plan: no cycle)", () => {
    const importers = filesUnder("components")
      .filter((f) => !f.startsWith("components/plan") && f !== "components/dgx-host.ts")
      .filter((f) => importsOf(path.join(REPO, f)).some((s) => s === "./dgx-host" || s === "../dgx-host"));
    expect(importers).toEqual([]);
  });
});

describe("capacity inputs: one place for the stack outputs and synth's chart", () => {
  const today = new Date("2026-03-01T00:00:00Z");
  const configs = ["sark", "clu"].map((s) => loadStackFile(path.join(REPO, `Pulumi.${s}.yaml`)));

  it("GIVEN both stack files THEN the chart has one series per disk, named after the host and the disk", () => {
    const series = capacitySeries(configs, today);
    expect(series.map((s) => s.host)).toEqual(["sark", "sark-backup", "clu"]);
  });

  it("feeds the chart exactly the inputs the planned-capacity output projects", () => {
    const sark = configs[0]!;
    const inputs = capacityInputs(sark.capacity!, today);
    expect(capacitySeries([sark], today).map((s) => s.input)).toEqual(inputs.map((d) => d.input));
    expect(plannedCapacity(sark.capacity!, today).map((p) => p.projection)).toEqual(inputs.map((d) => projectCapacity(d.input)));
    // TB as the plan counts them (decimal), starting on asOf when the stack sets it
    const primary = inputs.find((d) => d.name === "primary")!;
    expect(primary.input.size).toBe(primary.sizeTB * 1e12);
    expect(primary.input.start.toISOString().slice(0, 10)).toBe(sark.capacity!.asOf ?? "2026-03-01");
  });
});
