import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseHostConfig } from "../../components/config";
import { checkListedOnce, checkOnThisHost, checkUnique } from "../../components/config/primitives";
import { pinnedStackConfig } from "../harness";

/** The issues a rule adds, run as a refinement of an empty object (as the door runs it). */
function issuesOf(rule: (ctx: z.RefinementCtx) => void): { path: PropertyKey[]; message: string; input: unknown }[] {
  const r = z
    .object({})
    .superRefine((_, ctx) => rule(ctx))
    .safeParse({}, { reportInput: true });
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path, message: i.message, input: (i as { input?: unknown }).input }));
}

describe("checkUnique: the one duplicate check of the cross-field rules", () => {
  it("GIVEN a plain list THEN every repeat names the index of the first", () => {
    expect(issuesOf((ctx) => checkListedOnce(ctx, ["/a", "/b", "/a", "/a"], ["monitoring", "mounts"], "a mount"))).toEqual([
      { path: ["monitoring", "mounts", 2], message: "a mount listed once (it is already at [0])", input: "/a" },
      { path: ["monitoring", "mounts", 3], message: "a mount listed once (it is already at [0])", input: "/a" },
    ]);
  });

  it("GIVEN a key function THEN entries compare by key, and an undefined key is left to its own problem", () => {
    const list = [{ n: "x", v: 1 }, { v: 2 }, { n: "x", v: 3 }, { v: 4 }];
    expect(
      issuesOf((ctx) =>
        checkUnique(ctx, list, { key: (e) => e.n, at: (i) => ["l", i, "n"], input: (e) => e.v, message: (first, e) => `unique (l[${first}] has v ${e.v})` }),
      ),
    ).toEqual([{ path: ["l", 2, "n"], message: "unique (l[0] has v 1)", input: 3 }]);
  });

  it("GIVEN something that is not a list THEN it adds nothing (the field's own check reports it)", () => {
    expect(issuesOf((ctx) => checkListedOnce(ctx, "not a list", ["x"], "a path"))).toEqual([]);
  });
});

describe("checkOnThisHost: the one placement check of volumes and services", () => {
  const what = "a volume belongs in the stack file of the host that keeps it";
  it("GIVEN an item of another host THEN one issue at its path names this stack's host and shows the other", () => {
    expect(issuesOf((ctx) => checkOnThisHost(ctx, "sark", "clu", ["volumes", 0, "host"], what))).toEqual([
      { path: ["volumes", 0, "host"], message: `this stack's host 'sark': ${what}`, input: "clu" },
    ]);
  });

  it("GIVEN this host's item, or a host name that is itself invalid THEN nothing", () => {
    expect(issuesOf((ctx) => checkOnThisHost(ctx, "sark", "sark", ["volumes", 0, "host"], what))).toEqual([]);
    expect(issuesOf((ctx) => checkOnThisHost(ctx, undefined, "clu", ["volumes", 0, "host"], what))).toEqual([]);
  });
});

describe("config door: migrations are unique", () => {
  const moving = (migrations: Record<string, unknown>[]) => {
    const config = pinnedStackConfig("sark");
    const svc = (config.services as Record<string, { mounts: { source: string }[] }>).chromadb!;
    const source = svc.mounts.find((m) => m.source.startsWith("/"))!.source;
    return { ...config, migrations: migrations.map((m) => ({ service: "chromadb", source, ...m })) };
  };
  const problems = (values: Record<string, unknown>) => {
    try {
      parseHostConfig(values, { source: "Pulumi.sark.yaml" });
    } catch (e) {
      return (e as Error).message.split("\n").slice(1);
    }
    throw new Error("the config was accepted");
  };

  it("rejects a second migration with the same name, naming the first", () => {
    const lines = problems(
      moving([
        { name: "move", destination: "/data/a" },
        { name: "move", destination: "/data/b" },
      ]),
    );
    expect(lines).toContain('  - migrations.1.name: "move" is invalid; expected a unique name (migrations[0] has it)');
  });

  it("rejects a second migration to the same destination, naming the first", () => {
    const lines = problems(
      moving([
        { name: "one", destination: "/data/a" },
        { name: "two", destination: "/data/a" },
      ]),
    );
    expect(lines).toContain('  - migrations.1.destination: "/data/a" is invalid; expected a destination no other migration uses (migrations[0])');
  });
});
