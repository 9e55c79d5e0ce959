import { describe, expect, it } from "vitest";
import { expectConfigProblem, pinnedStackConfig, runStack, waitsFor } from "../harness";

describe("data migration under mocks", () => {
  it("sark: the destination made, the container created stopped on it, copy and cut-over, the switch, then finalize", async () => {
    const r = await runStack({ stack: "sark", config: pinnedStackConfig("sark") });
    const service = r.byName("sark-chromadb");
    const migration = r.byName("sark-chromadb-migrate-chromadb");
    const dir = r.byName("sark-chromadb-migrate-chromadb-dir");
    const run = r.byName("sark-chromadb-migrate-chromadb-run");
    const container = r.byName("sark-chromadb-container");
    const sw = r.byName("sark-chromadb-switch");
    const finalize = r.byName("sark-chromadb-migrate-chromadb-finalize");
    expect(migration.parent).toBe(service.urn);
    expect(run.parent).toBe(migration.urn);
    expect(finalize.parent).toBe(migration.urn);
    expect(String(dir.inputs.create)).toMatch(/ ensure-dir \/data\/enhanced\/chromadb 0:0 0700$/);
    // the stack file archives the source into sark's repository first; the last word is the new container's id
    expect(String(run.inputs.create)).toMatch(
      / migrate run chromadb sark-chromadb-container-id \/home\/maxvamp\/chromadb-data \/data\/enhanced\/chromadb - 10 300 borg:sark:sark:\/mnt\/borg-backup$/,
    );
    expect(String(finalize.inputs.create)).toMatch(
      / migrate finalize chromadb sark-chromadb-container-id \/home\/maxvamp\/chromadb-data \/data\/enhanced\/chromadb 300$/,
    );
    // never undone by pulumi destroy
    for (const c of [dir, run, finalize]) expect(c.inputs).not.toHaveProperty("delete");
    expect(container.dependsOn).toEqual(expect.arrayContaining([dir.urn, r.byName("sark-chromadb-adopt").urn]));
    expect(run.dependsOn).toContain(container.urn);
    expect(sw.dependsOn).toEqual(expect.arrayContaining([container.urn, run.urn]));
    expect(finalize.dependsOn).toEqual(expect.arrayContaining([sw.urn, container.urn]));
    expect(container.inputs.mounts).toEqual([{ type: "bind", source: "/data/enhanced/chromadb", target: "/chroma/chroma", readOnly: false }]);
    expect(container.deleteBeforeReplace).toBe(true);
  });

  it("clu moves the memory service's data; vLLM's container does not wait for it", async () => {
    const r = await runStack({ stack: "clu", config: pinnedStackConfig("clu") });
    expect(String(r.byName("clu-memory-service-migrate-memory-service-run").inputs.create)).toMatch(
      / migrate run memory-service clu-memory-service-container-id \/home\/maxvamp\/memory-data \/data\/enhanced\/memory-service - 10 300 borg:clu:clu:\/data\/borg$/,
    );
    expect(waitsFor(r, "clu-vllm-container", "clu-memory-service-migrate-memory-service-run")).toBe(false);
    expect(waitsFor(r, "clu-vllm-switch", "clu-memory-service-migrate-memory-service-run")).toBe(false);
  });

  it("a stack without migrations mounts the source as configured", async () => {
    const { migrations: _m, ...config } = pinnedStackConfig("sark");
    const r = await runStack({ stack: "sark", config });
    expect(r.byName("sark-chromadb-container").inputs.mounts).toEqual([
      { type: "bind", source: "/home/maxvamp/chromadb-data", target: "/chroma/chroma", readOnly: false },
    ]);
    expect(r.registrations.filter((x) => x.name.includes("migrate"))).toEqual([]);
  });
});

describe("config door: migrations", () => {
  const base = () => pinnedStackConfig("sark");
  const migration = (patch: Record<string, unknown>) => ({
    ...base(),
    migrations: [{ name: "chromadb", service: "chromadb", source: "/home/maxvamp/chromadb-data", destination: "/data/enhanced/chromadb", ...patch }],
  });
  const reject = expectConfigProblem;

  it("rejects an unknown service", () => reject(migration({ service: "chroma" }), "migrations.0.service", "a service of this stack (chromadb)"));
  it("rejects a source the service does not mount", () =>
    reject(
      migration({ source: "/home/maxvamp/other" }),
      "migrations.0.source",
      "a path that service chromadb mounts (its bind mounts: /home/maxvamp/chromadb-data)",
    ));
  it("rejects a destination inside the source", () =>
    reject(migration({ destination: "/home/maxvamp/chromadb-data/new" }), "migrations.0.destination", "neither equal to nor inside the source"));
  it("rejects a destination equal to the source", () =>
    reject(migration({ destination: "/home/maxvamp/chromadb-data" }), "migrations.0.destination", "neither equal to nor inside the source"));
  it("rejects a destination that contains the source", () =>
    reject(migration({ destination: "/home" }), "migrations.0.destination", "neither equal to nor inside"));
  it("rejects a relative destination", () => reject(migration({ destination: "data/enhanced" }), "migrations.0.destination", "absolute path"));
  it("rejects a mount point that does not hold the destination", () =>
    reject(migration({ mount: "/srv" }), "migrations.0.mount", "the mount point that holds the destination"));
  it("rejects a margin above 100%", () => reject(migration({ marginPercent: 150 }), "migrations.0.marginPercent", "at most 100"));
  it("rejects two migrations with one name", () => {
    const m = migration({});
    const list = m.migrations as Record<string, unknown>[];
    reject({ ...m, migrations: [...list, { ...list[0], destination: "/data/other" }] }, "migrations.1.name", "a unique name");
  });
});
