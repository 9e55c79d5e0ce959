import { describe, expect, it } from "vitest";
import { expectConfigProblem, pinnedStackConfig, runStack } from "./harness";


describe("data migration under mocks", () => {
  it("sark: copy and verify, then the container on the destination, then finalize", async () => {
    const r = await runStack({ stack: "sark", config: pinnedStackConfig("sark") });
    const migration = r.byName("sark-migrate-chromadb");
    const run = r.byName("sark-migrate-chromadb-run");
    const container = r.byName("sark-chromadb-container");
    const finalize = r.byName("sark-migrate-chromadb-finalize");
    expect(run.parent).toBe(migration.urn);
    expect(finalize.parent).toBe(migration.urn);
    expect(String(run.inputs.create)).toMatch(/ migrate run chromadb chromadb \/home\/maxvamp\/chromadb-data \/data\/enhanced\/chromadb - 10 300 none$/);
    expect(String(finalize.inputs.create)).toMatch(/ migrate finalize chromadb chromadb \/home\/maxvamp\/chromadb-data \/data\/enhanced\/chromadb 300$/);
    // never undone by pulumi destroy
    expect(run.inputs).not.toHaveProperty("delete");
    expect(finalize.inputs).not.toHaveProperty("delete");
    expect(container.dependsOn).toContain(run.urn);
    expect(finalize.dependsOn).toEqual([container.urn]);
    expect(container.inputs.mounts).toEqual([{ type: "bind", source: "/data/enhanced/chromadb", target: "/chroma/chroma", readOnly: false }]);
    expect(container.deleteBeforeReplace).toBe(true);
  });

  it("clu moves the memory service's data", async () => {
    const r = await runStack({ stack: "clu", config: pinnedStackConfig("clu") });
    expect(String(r.byName("clu-migrate-memory-service-run").inputs.create)).toMatch(
      / migrate run memory-service memory-service \/home\/maxvamp\/memory-data \/data\/enhanced\/memory-service - 10 300 none$/,
    );
    expect(r.byName("clu-vllm-container").dependsOn).not.toContain(r.byName("clu-migrate-memory-service-run").urn);
  });

  it("a stack without migrations mounts the source as configured", async () => {
    const { migrations: _m, ...config } = pinnedStackConfig("sark");
    const r = await runStack({ stack: "sark", config });
    expect(r.byName("sark-chromadb-container").inputs.mounts).toEqual([{ type: "bind", source: "/home/maxvamp/chromadb-data", target: "/chroma/chroma", readOnly: false }]);
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
    reject(migration({ source: "/home/maxvamp/other" }), "migrations.0.source", "a path that service chromadb mounts (its bind mounts: /home/maxvamp/chromadb-data)"));
  it("rejects a destination inside the source", () =>
    reject(migration({ destination: "/home/maxvamp/chromadb-data/new" }), "migrations.0.destination", "neither equal to nor inside the source"));
  it("rejects a destination equal to the source", () =>
    reject(migration({ destination: "/home/maxvamp/chromadb-data" }), "migrations.0.destination", "neither equal to nor inside the source"));
  it("rejects a destination that contains the source", () => reject(migration({ destination: "/home" }), "migrations.0.destination", "neither equal to nor inside"));
  it("rejects a relative destination", () => reject(migration({ destination: "data/enhanced" }), "migrations.0.destination", "absolute path"));
  it("rejects a mount point that does not hold the destination", () => reject(migration({ mount: "/srv" }), "migrations.0.mount", "the mount point that holds the destination"));
  it("rejects a margin above 100%", () => reject(migration({ marginPercent: 150 }), "migrations.0.marginPercent", "at most 100"));
  it("rejects two migrations with one name", () => {
    const m = migration({});
    const list = m.migrations as Record<string, unknown>[];
    reject({ ...m, migrations: [...list, { ...list[0], destination: "/data/other" }] }, "migrations.1.name", "a unique name");
  });
});
