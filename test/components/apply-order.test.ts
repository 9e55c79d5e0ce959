/**
 * The order of a host's first apply, as `pulumi up` would run it: every edge is read from the
 * dependencies each registration sends to the engine (its own dependsOn, expanded through
 * components by the SDK, plus the resources its inputs come from, plus its provider). Pulumi runs
 * everything else in parallel.
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { startCapture } from "../../tools/mock-capture";
import { pinnedStackConfig, runStack, waitsFor, type StackRun } from "../harness";

const COMMAND = "command:remote:Command";

describe.each(["sark", "clu"] as const)("%s: the declared order of the first apply", (stack) => {
  const run = (): Promise<StackRun> => runStack({ stack, config: pinnedStackConfig(stack), preview: false });
  const services = stack === "sark" ? ["chromadb"] : ["memory-service", "vllm"];
  const migrations: Record<string, string[]> = { chromadb: ["chromadb"], "memory-service": ["memory-service"], vllm: [] };
  const before = (r: StackRun, first: string, then: string) => expect(waitsFor(r, then, first), `${then} waits for ${first}`).toBe(true);

  it("runs the read-only preflight before anything else, and nothing before it", async () => {
    const r = await run();
    const pre = r.byName(`${stack}-preflight`);
    expect(pre.dependsOn).toEqual([]);
    for (const x of r.registrations.filter((y) => y.custom && y.name !== pre.name && y.type !== "pulumi:pulumi:StackReference")) {
      before(r, pre.name, x.name);
    }
  });

  it("packages, then daemon.json and its restart, then the kernel settings, then volumes and the swarm", async () => {
    const r = await run();
    before(r, `${stack}-packages`, `${stack}-daemon-merge`);
    before(r, `${stack}-daemon-merge`, `${stack}-daemon-restart`);
    before(r, `${stack}-daemon-restart`, `${stack}-kernel-apply`);
    const swarm = stack === "sark" ? [`${stack}-swarm-init`, `${stack}-swarm-network`] : [`${stack}-swarm-join`];
    const volumes = r.registrations.filter((x) => x.name.startsWith(`${stack}-volumes-`) && x.custom).map((x) => x.name);
    expect(volumes.length).toBeGreaterThan(0);
    for (const x of [...swarm, ...volumes]) before(r, `${stack}-daemon-restart`, x);
    // the swarm command itself carries the edge (its component's dependsOn would not reach it)
    expect(r.byName(swarm[0]!).dependsOn).toEqual(expect.arrayContaining([r.byName(`${stack}-daemon-restart`).urn, r.byName(`${stack}-kernel-apply`).urn]));
  });

  it("the borg repository and its units after the packages; hand-made jobs looked at after the units", async () => {
    const r = await run();
    before(r, `${stack}-packages`, `${stack}-backup-repo`);
    before(r, `${stack}-backup-repo`, `${stack}-backup-units`);
    before(r, `${stack}-backup-units`, `${stack}-backup-existing-jobs`);
  });

  it("per service: adopt, the container created stopped, the migration (archive, copy, cut-over), the switch, finalize", async () => {
    const r = await run();
    for (const svc of services) {
      const s = `${stack}-${svc}`;
      for (const prepared of [
        `${stack}-daemon-restart`,
        `${stack}-kernel-apply`,
        `${stack}-backup-units`,
        `${stack}-backup-existing-jobs`,
        stack === "sark" ? `${stack}-swarm-network` : `${stack}-swarm-join`,
      ]) {
        before(r, prepared, `${s}-adopt`);
        before(r, prepared, `${s}-container`);
      }
      before(r, `${s}-adopt`, `${s}-container`);
      before(r, `${s}-container`, `${s}-switch`);
      for (const m of migrations[svc]!) {
        const mig = `${s}-migrate-${m}`;
        before(r, `${mig}-dir`, `${s}-container`);
        before(r, `${s}-container`, `${mig}-run`);
        for (const prepared of [`${stack}-daemon-restart`, `${stack}-backup-units`]) before(r, prepared, `${mig}-run`);
        before(r, `${mig}-run`, `${s}-switch`);
        before(r, `${s}-switch`, `${mig}-finalize`);
      }
    }
  });

  it("fstrim, smartd, the fio baseline, the alert units and the live df only after every service is switched and every migration finished", async () => {
    const r = await run();
    const last = services.flatMap((svc) => [`${stack}-${svc}-switch`, ...migrations[svc]!.map((m) => `${stack}-${svc}-migrate-${m}-finalize`)]);
    for (const late of ["units", "fstrim", "smartd", "fio-data", "df"]) for (const l of last) before(r, l, `${stack}-monitoring-${late}`);
  });

  it("nothing that restarts dockerd or loads the data disks can overlap a migration: each is ordered before or after every copy", async () => {
    const r = await run();
    const copies = r.ofType(COMMAND).filter((c) => c.name.endsWith("-run") && c.name.includes("-migrate-"));
    expect(copies.length).toBe(migrations[services[0]!]!.length);
    const disruptive = [
      `${stack}-daemon-merge`,
      `${stack}-daemon-restart`,
      `${stack}-packages`,
      `${stack}-monitoring-fstrim`,
      `${stack}-monitoring-fio-data`,
      `${stack}-monitoring-units`,
      `${stack}-monitoring-smartd`,
    ];
    for (const c of copies) {
      for (const d of disruptive) expect(waitsFor(r, c.name, d) || waitsFor(r, d, c.name), `${d} and ${c.name} are ordered`).toBe(true);
    }
  });
});

describe("what the order relies on: the SDK sends a resource's own dependsOn, nothing of its parent's", () => {
  it("GIVEN a component that depends on X THEN its child's registration does not name X, and a resource depending on the component names the child", async () => {
    const capture = await startCapture({ stack: "edges", config: {}, secrets: {}, preview: true });
    class Thing extends pulumi.CustomResource {
      constructor(name: string, opts: pulumi.CustomResourceOptions = {}) {
        super("test:index:Thing", name, {}, opts);
      }
    }
    class Box extends pulumi.ComponentResource {
      constructor(name: string, opts: pulumi.ComponentResourceOptions) {
        super("test:index:Box", name, {}, opts);
        new Thing(`${name}-child`, { parent: this });
        this.registerOutputs({});
      }
    }
    const x = new Thing("x");
    const box = new Box("box", { dependsOn: [x] });
    new Thing("after-box", { dependsOn: [box] });
    await capture.settled();
    const by = (n: string) => capture.registrations.find((r) => r.name === n)!;
    expect(by("box").dependsOn).toEqual([by("x").urn]);
    expect(by("box-child").dependsOn).toEqual([]);
    expect(by("after-box").dependsOn).toEqual([by("box-child").urn]);
  });
});
