/**
 * The e2e engine's pure parts (test/e2e/engine.ts, providers.ts): the dependency rule,
 * scheduling, each provider's diff rule, protect / retainOnDelete / deleteBeforeReplace, the
 * unknown-input guard, and what the Node SDK itself sends (under the mock runtime, with the
 * capture hook the engine uses).
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { deleteAction, deleteWaves, planFor, replaceOrder, Scheduler, type StateEntry } from "./e2e/engine";
import {
  containerCreateRequest,
  containerUpdateCallsApi,
  diffCommand,
  diffContainer,
  diffNetwork,
  diffVolume,
  goDurationNs,
  volumeState,
} from "./e2e/providers";
import { startCapture, type Registration } from "../tools/mock-capture";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake step: records its start and end (ms since t0), takes `ms`, succeeds unless `fail`. */
function recorder() {
  const t0 = Date.now();
  const times = new Map<string, { start: number; end: number }>();
  const work =
    (name: string, ms: number, fail = false) =>
    async () => {
      const start = Date.now() - t0;
      await sleep(ms);
      times.set(name, { start, end: Date.now() - t0 });
      return !fail;
    };
  const overlap = (a: string, b: string) => times.get(a)!.start < times.get(b)!.end && times.get(b)!.start < times.get(a)!.end;
  return { times, work, overlap };
}

const entry = (over: Partial<StateEntry>): StateEntry => ({
  urn: "urn:x",
  type: "command:remote:Command",
  name: "x",
  custom: true,
  id: "x-id",
  parent: "",
  inputs: {},
  outputs: {},
  dependencies: [],
  provider: "",
  protect: false,
  retainOnDelete: false,
  deleteBeforeReplace: false,
  ...over,
});

describe("scheduling", () => {
  it("GIVEN a component that depends on X and a child whose request names no dependency THEN the child does not wait for X", async () => {
    const s = new Scheduler();
    const r = recorder();
    const x = s.submit("X", [], r.work("X", 80));
    const component = s.submit("C", ["X"], r.work("C", 1));
    const child = s.submit("C$child", [], r.work("child", 20));
    expect(await Promise.all([x, component, child])).toEqual(["ok", "ok", "ok"]);
    expect(r.times.get("child")!.end).toBeLessThan(r.times.get("X")!.end);
    // the component itself waited
    expect(r.times.get("C")!.start).toBeGreaterThanOrEqual(r.times.get("X")!.end);
  });

  it("GIVEN two independent steps THEN they overlap; GIVEN an edge THEN they do not", async () => {
    const s = new Scheduler();
    const r = recorder();
    await Promise.all([s.submit("A", [], r.work("A", 50)), s.submit("B", [], r.work("B", 50)), s.submit("C", ["A"], r.work("C", 10))]);
    expect(r.overlap("A", "B")).toBe(true);
    expect(r.overlap("A", "C")).toBe(false);
    expect(r.times.get("C")!.start).toBeGreaterThanOrEqual(r.times.get("A")!.end);
  });

  it("GIVEN a failed step THEN its dependents are skipped and independent steps still run", async () => {
    const s = new Scheduler();
    const r = recorder();
    const out = await Promise.all([
      s.submit("A", [], r.work("A", 10, true)),
      s.submit("B", ["A"], r.work("B", 10)),
      s.submit("C", ["B"], r.work("C", 10)),
      s.submit("D", [], r.work("D", 30)),
    ]);
    expect(out).toEqual(["failed", "skipped", "skipped", "ok"]);
    expect([...r.times.keys()].sort()).toEqual(["A", "D"]);
  });

  it("deletes go in reverse dependency order: dependents, children and a provider's resources first", () => {
    const provider = entry({ urn: "P", type: "pulumi:providers:docker" });
    const volume = entry({ urn: "V", provider: "P::P-id" });
    const container = entry({ urn: "K", dependencies: ["V"], parent: "S" });
    const component = entry({ urn: "S", custom: false });
    const waves = deleteWaves([provider, volume, component, container]).map((w) => w.map((e) => e.urn).sort());
    expect(waves).toEqual([["K"], ["S", "V"], ["P"]]);
  });
});

describe("what the Node SDK sends (mock runtime, the engine's capture hook)", () => {
  it("GIVEN a component with dependsOn X THEN its child's request does not name X, yet is only sent once X is answered (the SDK waits for the parent's URN)", async () => {
    const seen: { name: string; at: number; deps: readonly string[] }[] = [];
    const answered = new Map<string, number>();
    const t0 = Date.now();
    const capture = await startCapture({
      stack: "unit",
      config: {},
      secrets: {},
      preview: false,
      hook: {
        async register(reg: Registration) {
          seen.push({ name: reg.name, at: Date.now() - t0, deps: reg.dependsOn });
          if (reg.name === "x") await sleep(100);
          answered.set(reg.name, Date.now() - t0);
          return { id: reg.custom ? `${reg.name}-id` : "", outputs: reg.inputs };
        },
        async read() {
          return undefined;
        },
      },
    });
    class Thing extends pulumi.CustomResource {
      constructor(name: string, opts?: pulumi.CustomResourceOptions) {
        super("unit:index:Thing", name, {}, opts);
      }
    }
    class Group extends pulumi.ComponentResource {
      constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("unit:index:Group", name, {}, opts);
        new Thing(`${name}-child`, { parent: this });
        this.registerOutputs({});
      }
    }
    const x = new Thing("x");
    new Group("g", { dependsOn: [x] });
    await capture.settled();
    const xUrn = await new Promise<string>((r) => x.urn.apply(r));
    const child = seen.find((s) => s.name === "g-child")!;
    const group = seen.find((s) => s.name === "g")!;
    expect(group.deps).toEqual([xUrn]);
    expect(child.deps).toEqual([]);
    expect(child.at).toBeGreaterThanOrEqual(answered.get("x")!);
  });
});

describe("command:remote:Command diff (pulumi-command v1.2.1)", () => {
  const olds = { create: "a", triggers: ["h1"], connection: { host: "127.0.0.1" } };
  it("a trigger change replaces", () => {
    expect(diffCommand(olds, { ...olds, triggers: ["h2"] })).toEqual({ kind: "replace", changed: ["triggers"], replaceKeys: ["triggers"] });
  });
  it("a changed create string is an update (create runs again)", () => {
    expect(diffCommand(olds, { ...olds, create: "b" })).toEqual({ kind: "update", changed: ["create"], replaceKeys: [] });
  });
  it("no change: nothing runs", () => {
    expect(diffCommand(olds, { ...olds, connection: { host: "127.0.0.1" } }).kind).toBe("same");
  });
});

describe("docker container diff (terraform-provider-docker v4.5.0)", () => {
  const olds = {
    name: "c",
    image: "img:1",
    restart: "unless-stopped",
    envs: ["A=1", "B=2"],
    labels: [{ label: "managed-by", value: "dgx-storage" }],
    healthcheck: { tests: ["CMD", "true"], interval: "30s" },
    wait: true,
  };
  it("a ForceNew attribute (image, mounts, envs) replaces", () => {
    expect(diffContainer(olds, { ...olds, image: "img:2" })).toMatchObject({ kind: "replace", replaceKeys: ["image"] });
    expect(diffContainer(olds, { ...olds, envs: ["A=1"] })).toMatchObject({ kind: "replace", replaceKeys: ["envs"] });
    expect(diffContainer(olds, { ...olds, mounts: [{ type: "bind", source: "/b", target: "/d" }] })).toMatchObject({
      kind: "replace",
      replaceKeys: ["mounts"],
    });
  });
  it("restart alone is an update through ContainerUpdate; a health check change only changes the state", () => {
    const restart = diffContainer(olds, { ...olds, restart: "always" });
    expect(restart).toEqual({ kind: "update", changed: ["restart"], replaceKeys: [] });
    expect(containerUpdateCallsApi(restart)).toBe(true);
    const health = diffContainer(olds, { ...olds, healthcheck: { tests: ["CMD", "false"], interval: "30s" } });
    expect(health.kind).toBe("update");
    expect(containerUpdateCallsApi(health)).toBe(false);
  });
  it("sets ignore order; a Computed attribute left out keeps the state's value", () => {
    expect(diffContainer(olds, { ...olds, envs: ["B=2", "A=1"] }).kind).toBe("same");
    const { labels: _l, ...withoutLabels } = olds;
    expect(diffContainer(olds, withoutLabels).kind).toBe("same");
  });
});

describe("docker volume and network diff: declaration against the read state, all ForceNew", () => {
  const inspect = {
    Name: "v",
    Driver: "local",
    Options: { type: "none", o: "bind", device: "/data/x" },
    Labels: { "managed-by": "dgx-storage" },
    Mountpoint: "/var/lib/docker/volumes/v/_data",
  };
  const declared = {
    name: "v",
    driver: "local",
    driverOpts: { type: "none", o: "bind", device: "/data/x" },
    labels: [{ label: "managed-by", value: "dgx-storage" }],
  };
  it("a volume that already existed with other options is a replacement on the next apply", () => {
    expect(diffVolume(volumeState(inspect), declared).kind).toBe("same");
    expect(diffVolume(volumeState({ ...inspect, Options: null }), declared)).toMatchObject({ kind: "replace", replaceKeys: ["driverOpts"] });
  });
  it("a network's Computed options are compared only when declared", () => {
    const state = {
      name: "n",
      driver: "overlay",
      attachable: true,
      internal: false,
      scope: "swarm",
      options: { "com.docker.network.driver.overlay.vxlanid_list": "4097" },
      labels: [],
    };
    expect(diffNetwork(state, { name: "n", driver: "overlay", attachable: true }).kind).toBe("same");
    expect(diffNetwork(state, { name: "n", driver: "overlay", attachable: true, options: { encrypted: "" } })).toMatchObject({
      kind: "replace",
      replaceKeys: ["options"],
    });
  });
});

describe("engine rules", () => {
  const cmd = entry({ inputs: { create: "a", triggers: ["h1"] }, protect: true });
  it("protect refuses a replacement", () => {
    const plan = planFor(cmd, { type: cmd.type, urn: cmd.urn, protect: true, inputs: { create: "a", triggers: ["h2"] } });
    expect(plan.op).toBe("replace");
    expect(plan.refused).toMatch(/currently marked for protection/);
    // an update of a protected resource is allowed
    expect(planFor(cmd, { type: cmd.type, urn: cmd.urn, protect: true, inputs: { create: "b", triggers: ["h1"] } })).toMatchObject({ op: "update" });
  });
  it("retainOnDelete only forgets; deleteBeforeReplace deletes the old one first", () => {
    expect(deleteAction({ retainOnDelete: true })).toBe("forget");
    expect(deleteAction({ retainOnDelete: false })).toBe("provider-delete");
    expect(replaceOrder({ deleteBeforeReplace: true })).toEqual(["delete old", "create new"]);
    expect(replaceOrder({ deleteBeforeReplace: false })).toEqual(["create new", "delete old after all creates"]);
  });
  it("no state: create", () => {
    expect(planFor(undefined, { type: cmd.type, urn: cmd.urn, protect: false, inputs: {} })).toEqual({ op: "create" });
  });
});

describe("container translation", () => {
  const base = { name: "vllm", image: "standin:1" };
  it("refuses an input it does not translate, naming it", () => {
    expect(() => containerCreateRequest({ ...base, gpus: "all", privileged: true })).toThrow(/does not translate the input\(s\) gpus, privileged/);
  });
  it("shm_size is MiB, device requests carry one capability list, ports default to tcp on 0.0.0.0", () => {
    const r = containerCreateRequest({
      ...base,
      shmSize: 16384,
      deviceRequests: [{ driver: "nvidia", count: 1, capabilities: ["gpu"] }],
      ports: [{ internal: 8000, external: 8000 }],
      healthcheck: { tests: ["CMD", "true"], interval: "1m30s", timeout: "500ms", retries: 3 },
      networksAdvanced: [{ name: "optimized-swarm", aliases: ["vllm"] }],
      wait: true,
      waitTimeout: 1200,
    });
    const host = r.body.HostConfig as Record<string, unknown>;
    expect(host.ShmSize).toBe(16384 * 1024 * 1024);
    expect(host.DeviceRequests).toEqual([{ Driver: "nvidia", Count: 1, DeviceIDs: null, Capabilities: [["gpu"]] }]);
    expect(host.PortBindings).toEqual({ "8000/tcp": [{ HostIp: "0.0.0.0", HostPort: "8000" }] });
    expect(r.body.Healthcheck).toEqual({ Test: ["CMD", "true"], Interval: 90e9, Timeout: 500e6, StartPeriod: 0, Retries: 3 });
    expect(r.networks).toEqual([{ name: "optimized-swarm", aliases: ["vllm"] }]);
    expect([r.wait, r.waitTimeout]).toEqual([true, 1200]);
    expect(host.RestartPolicy).toEqual({ Name: "no", MaximumRetryCount: 0 });
  });
  it("Go durations", () => {
    expect(goDurationNs("30s")).toBe(30e9);
    expect(goDurationNs("900s")).toBe(900e9);
    expect(() => goDurationNs("30")).toThrow(/not a Go duration/);
  });
});
