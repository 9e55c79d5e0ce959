/**
 * How long the program takes when `pulumi preview` runs it: the old way (Pulumi.yaml
 * `typescript: true`: the SDK's run entry registers its vendored ts-node 7, which type-checks)
 * beside the new way (`typescript: false`, `nodeargs: --require ./tools/register-ts.cjs`), and tsx
 * (`--import tsx`) for reference. Both loaders keep compiled files in a cache, so each is run cold
 * (empty cache: a preview after a change of the code) and warm (a preview after a change of the
 * stack files only). No Pulumi CLI: each run evaluates index.ts of a stack under Pulumi's mock
 * runtime in a fresh node process (bench/preview-child.cjs), from process start until every
 * resource is registered.
 *
 *   npx tsx bench/preview.ts [--rounds R] [--stack sark|clu]
 *
 * Method: every round runs the ways back to back, in an order that rotates from round to round,
 * and the ratio new/old of that round counts: pairs cancel slow drifts of a shared machine that
 * medians of separate runs keep. One run of each way before the rounds fills the kept caches.
 *
 * Goal: the new way's program time (median) at most 3 s on this project's 2-core machines, and
 * every way registers the same number of resources. Exit status 1 when missed.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "..");
const CHILD = path.join(__dirname, "preview-child.cjs");
const GOAL_MS = 3000;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const rounds = Number(option("rounds", "6"));
const stack = option("stack", "clu");
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds needs a positive whole number, got ${option("rounds", "")}`);
if (!["sark", "clu"].includes(stack)) throw new Error(`--stack is sark or clu, got ${stack}`);

interface Way {
  readonly name: "old-cold" | "old-warm" | "new-cold" | "new" | "tsx";
  readonly what: string;
  readonly nodeArgs: readonly string[];
  readonly mode: "old" | "new";
  /** Environment of the child: a cache directory, fresh for each run when `fresh`. */
  readonly cacheEnv?: { readonly name: string; readonly fresh: boolean };
}
const HOOK = ["--require", "./tools/register-ts.cjs"];
const WAYS: readonly Way[] = [
  // ts-node 7 keeps each compiled file in a cache (TS_NODE_CACHE_DIRECTORY) and skips compiling
  // and type-checking a file it finds there: cold is a preview after a change of the code (or a
  // fresh machine), warm one after a change of the stack files only
  {
    name: "old-cold",
    what: "typescript: true: vendored ts-node 7, type check, empty cache",
    nodeArgs: [],
    mode: "old",
    cacheEnv: { name: "TS_NODE_CACHE_DIRECTORY", fresh: true },
  },
  {
    name: "old-warm",
    what: "typescript: true: vendored ts-node 7, every file in its cache",
    nodeArgs: [],
    mode: "old",
    cacheEnv: { name: "TS_NODE_CACHE_DIRECTORY", fresh: false },
  },
  {
    name: "new-cold",
    what: "typescript: false, nodeargs --require ./tools/register-ts.cjs, empty cache",
    nodeArgs: HOOK,
    mode: "new",
    cacheEnv: { name: "REGISTER_TS_CACHE_DIR", fresh: true },
  },
  {
    name: "new",
    what: "typescript: false, nodeargs --require ./tools/register-ts.cjs",
    nodeArgs: HOOK,
    mode: "new",
    cacheEnv: { name: "REGISTER_TS_CACHE_DIR", fresh: false },
  },
  { name: "tsx", what: "typescript: false, nodeargs --import tsx (its own cache)", nodeArgs: ["--import", "tsx"], mode: "new" },
];

interface Sample {
  readonly wallMs: number;
  readonly totalMs: number;
  readonly requireMs: number;
  readonly resources: number;
  readonly undefinedWarnings: number;
}

const WORK = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-preview-bench-"));
let runs = 0;

function runOnce(way: Way): Sample {
  const env = { ...process.env };
  if (way.cacheEnv) env[way.cacheEnv.name] = path.join(WORK, way.cacheEnv.fresh ? `fresh-${runs++}` : `kept-${way.name}`);
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [...way.nodeArgs, CHILD, way.mode, stack], { cwd: REPO, encoding: "utf8", timeout: 300_000, env });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{")) throw new Error(`${way.name}: exit ${r.status}\n${r.stderr}`);
  const j = JSON.parse(line) as { totalMs: number; requireMs: number; resources: number };
  return {
    wallMs,
    totalMs: j.totalMs,
    requireMs: j.requireMs,
    resources: j.resources,
    undefinedWarnings: (r.stderr.match(/Undefined value \(/g) ?? []).length,
  };
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const s1 = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const samples = new Map<Way["name"], Sample[]>(WAYS.map((w) => [w.name, []]));
console.log(
  `preview bench: stack ${stack}, ${rounds} rounds, ${WAYS.length} ways per round, node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`,
);
// not counted: fills the kept caches, as any preview after the first finds them
for (const way of WAYS) runOnce(way);
for (let round = 0; round < rounds; round++) {
  const order = WAYS.map((_, i) => WAYS[(i + round) % WAYS.length]!);
  const got: string[] = [];
  for (const way of order) {
    const s = runOnce(way);
    samples.get(way.name)!.push(s);
    got.push(`${way.name} ${s1(s.totalMs)}`);
  }
  const ratio = (a: Way["name"], b: Way["name"]) => (samples.get(a)![round]!.totalMs / samples.get(b)![round]!.totalMs).toFixed(3);
  console.log(`round ${round + 1}: ${got.join(", ")}; new/old-cold ${ratio("new", "old-cold")}, new/old-warm ${ratio("new", "old-warm")}`);
}

console.log("\nway       program (median, min..max)     of it: loading index.ts   wall (spawn to exit)   resources");
for (const w of WAYS) {
  const xs = samples.get(w.name)!;
  const t = xs.map((x) => x.totalMs);
  console.log(
    `${w.name.padEnd(9)} ${s1(median(t))} (${s1(Math.min(...t))}..${s1(Math.max(...t))})`.padEnd(41) +
      `${s1(median(xs.map((x) => x.requireMs)))}`.padEnd(23) +
      `${s1(median(xs.map((x) => x.wallMs)))}`.padEnd(23) +
      `${[...new Set(xs.map((x) => x.resources))].join("/")}   ${w.what}`,
  );
}
const pairs = (a: Way["name"], b: Way["name"]) => samples.get(a)!.map((x, i) => x.totalMs / samples.get(b)![i]!.totalMs);
for (const [a, b] of [
  ["new", "old-cold"],
  ["new", "old-warm"],
  ["new-cold", "old-cold"],
  ["tsx", "old-warm"],
] as const) {
  const p = pairs(a, b);
  console.log(
    `${a}/${b} paired ratio: median ${median(p).toFixed(3)} (worst ${Math.max(...p).toFixed(3)}, best ${Math.min(...p).toFixed(3)}) over ${p.length} rounds`,
  );
}
fs.rmSync(WORK, { recursive: true, force: true });
const newMedian = median(samples.get("new")!.map((x) => x.totalMs));
const counts = new Set(WAYS.flatMap((w) => samples.get(w.name)!.map((x) => x.resources)));
const warnings = samples.get("new")!.reduce((n, x) => n + x.undefinedWarnings, 0);
const ok = newMedian <= GOAL_MS && counts.size === 1;
console.log(
  `goal: new way at most ${s1(GOAL_MS)}: ${s1(newMedian)} ${newMedian <= GOAL_MS ? "met" : "MISSED"}; same resources in every way: ${counts.size === 1 ? "yes" : "NO"}; "Undefined value" warnings (new way): ${warnings}`,
);
process.exit(ok ? 0 : 1);
