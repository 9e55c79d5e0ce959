/**
 * Migration benchmark: the plan's procedure against ours, in paired rounds on the same generated
 * data, and a scaling table of our downtime against the tree's size and the share that changed.
 *
 *   npx tsx bench/migration.ts [--files 100000] [--size-mb 2048] [--changed-pct 1] [--rounds 3] [--dir /var/tmp]
 *   npx tsx bench/migration.ts --table [--table-files 10000,100000,1000000] [--table-changed 0.1,1,10]
 *                              [--mb-per-100k 500] [--rounds 3] [--no-cp]
 *
 * - plan: stop the service, `rsync -av` of everything, start it; its downtime is the whole copy.
 * - ours: components/scripts/migrate.sh for real (no container: the stop and the start cost the
 *   same on both sides). The share of files changes right before the stop (MIGRATE_BEFORE_STOP),
 *   after the live passes: the worst moment, everything changed lands in the final pass. Its
 *   downtime is stop to hand-over (the state file's stopped_at and handover_at).
 * - throughput: our pass 1 (the whole copy, service running) against `cp -a` of the same data to
 *   the same disk.
 * A round runs the plan, ours and cp -a once each, the order turning from round to round; each
 * run's output is removed before the next starts, and caches are dropped before every timed step
 * (root), so no step reads what another has just read. The figures are the medians of the
 * per-round ratios, the spread beside them. Goals: downtime at most 5% of the plan's (10% at
 * 1,000,000 files), pass 1 at least 90% of cp -a's throughput; exit 1 when one is missed. The
 * table judges the downtime goal at its 1% rows of 100,000 and 1,000,000 files, the shapes the
 * goals were set at; its other rows are printed with "none set".
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SCRIPTS_DIR } from "../components/render/command";

function opt(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}
const TABLE = process.argv.includes("--table");
const ROUNDS = Number(opt("rounds", "3"));
const WITH_CP = !process.argv.includes("--no-cp");
const BASE = fs.mkdtempSync(path.join(opt("dir", "/var/tmp"), "dgx-bench-migration-"));
// the Debian python3 first, as on the servers (a version manager's shim starts ten times slower)
const ENV = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ""}` };

function sh(cmd: string): string {
  return execFileSync("bash", ["-euo", "pipefail", "-c", cmd], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, env: ENV });
}
function dropCaches(): void {
  spawnSync("bash", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], { stdio: "ignore" });
}
function timed(cmd: string): number {
  dropCaches();
  const t0 = process.hrtime.bigint();
  sh(cmd);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** `files` files totalling about `mb` MiB, 1,000 a directory, sizes varied around the mean. */
function generate(dir: string, files: number, mb: number): void {
  const mean = Math.max(1, Math.floor((mb * 1024 * 1024) / files));
  // one python process writes all files: far faster than a process per file
  sh(`python3 -c '
import os, random, sys
root, n, mean = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(42)
block = os.urandom(4 * 1024 * 1024)
for i in range(n):
    d = os.path.join(root, "d%05d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    size = random.randint(mean // 2, mean + mean // 2)
    off = random.randint(0, len(block) - size) if size < len(block) else 0
    with open(os.path.join(d, "f%07d.bin" % i), "wb") as f:
        f.write(block[off:off + size] if size <= len(block) else os.urandom(size))
' "${dir}" ${files} ${mean}`);
}

/** The shell command that rewrites `pct`% of the files (64 bytes each, in place), as a service would. */
const changeScript = (dir: string, files: number, pct: number, seed: number) =>
  `python3 -c '
import os, random, sys
root, n, pct, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
random.seed(seed)
for i in random.sample(range(n), max(1, int(n * pct / 100))):
    with open(os.path.join(root, "d%05d" % (i // 1000), "f%07d.bin" % i), "r+b") as f:
        f.write(os.urandom(64))
' "${dir}" ${files} ${pct} ${seed}`;

interface Ours {
  downtime: number;
  pass1: number;
  total: number;
  finalLine: string;
}

/** migrate.sh on the data in `src` (moved under a ROOT and back). */
function ours(src: string, files: number, pct: number, seed: number): Ours {
  const root = path.join(BASE, "root");
  fs.mkdirSync(root);
  fs.renameSync(src, path.join(root, "src"));
  try {
    dropCaches();
    const t0 = Date.now();
    const r = spawnSync("bash", [path.join(SCRIPTS_DIR, "migrate.sh"), "run", "bench", "-", "/src", "/dst", "-", "10", "60", "none"], {
      env: { ...ENV, ROOT: root, MIGRATE_BEFORE_STOP: changeScript(path.join(root, "src"), files, pct, seed) },
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`migrate.sh failed:\n${r.stdout}\n${r.stderr}`);
    const total = (Date.now() - t0) / 1000;
    const marker = JSON.parse(fs.readFileSync(path.join(root, "var/lib/dgx-storage/migrations/bench.json"), "utf8")) as Record<string, string>;
    return {
      downtime: Number(marker.handover_at) - Number(marker.stopped_at),
      pass1: Number(/pass 1 done in ([\d.]+) s/.exec(r.stdout)?.[1]),
      total,
      finalLine: /final pass \(service stopped\): .*/.exec(r.stdout)?.[0] ?? "",
    };
  } finally {
    fs.renameSync(path.join(root, "src"), src);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

interface Round {
  plan: number;
  ours: Ours;
  cp?: number;
}

/** `ROUNDS` paired rounds on the data in `src`; the order of the sides turns each round. */
function rounds(src: string, files: number, pct: number, withCp: boolean): Round[] {
  const out: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const steps: Array<(r: Partial<Round>) => void> = [
      (r) => {
        r.plan = timed(`rsync -a ${src}/ ${BASE}/plan-copy/`);
        sh(`rm -rf ${BASE}/plan-copy`);
      },
      (r) => (r.ours = ours(src, files, pct, 1000 * i + Math.round(pct * 10))),
    ];
    if (withCp)
      steps.push((r) => {
        r.cp = timed(`cp -a ${src} ${BASE}/cp-copy`);
        sh(`rm -rf ${BASE}/cp-copy`);
      });
    const r: Partial<Round> = {};
    for (let k = 0; k < steps.length; k++) steps[(k + i) % steps.length]!(r);
    out.push(r as Round);
    const o = r.ours!;
    console.log(
      `  round ${i + 1}: plan ${r.plan!.toFixed(2)} s, ours ${o.downtime.toFixed(2)} s (${((o.downtime / r.plan!) * 100).toFixed(1)}%)` +
        (r.cp ? `, cp -a ${r.cp.toFixed(1)} s, pass 1 ${o.pass1.toFixed(1)} s (${((r.cp / o.pass1) * 100).toFixed(0)}%)` : "") +
        `, whole run ${o.total.toFixed(1)} s; ${o.finalLine}`,
    );
  }
  return out;
}

function dataset(files: number, mb: number): { src: string; gb: number } {
  const src = path.join(BASE, `src-${files}`);
  fs.mkdirSync(src);
  const t0 = Date.now();
  generate(src, files, mb);
  const bytes = Number(sh(`du -s --block-size=1 ${src} | cut -f1`));
  console.log(`dataset: ${files} files, ${(bytes / 1e9).toFixed(2)} GB on disk, generated in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { src, gb: bytes / 1e9 };
}

const pctOf = (xs: number[]) => `${(median(xs) * 100).toFixed(1)}% (${(Math.min(...xs) * 100).toFixed(1)}-${(Math.max(...xs) * 100).toFixed(1)})`;

function single(): boolean {
  const files = Number(opt("files", "100000"));
  const mb = Number(opt("size-mb", "2048"));
  const pct = Number(opt("changed-pct", "1"));
  const { src, gb } = dataset(files, mb);
  const rs = rounds(src, files, pct, WITH_CP);
  const down = rs.map((r) => r.ours.downtime / r.plan);
  const goal = files >= 1_000_000 ? 0.1 : 0.05;
  console.log(
    `\nmigration benchmark: ${files} files, ${gb.toFixed(2)} GB, ${pct}% changed right before the stop, ${ROUNDS} paired rounds (medians, range in brackets)`,
  );
  console.log(`  plan: downtime (stop, rsync -a of everything, start)   ${median(rs.map((r) => r.plan)).toFixed(2)} s`);
  console.log(`  ours: downtime (stop, final pass, verification)        ${median(rs.map((r) => r.ours.downtime)).toFixed(2)} s`);
  console.log(`  ours/plan downtime, per round                          ${pctOf(down)}   goal <= ${goal * 100}%`);
  let ok = median(down) <= goal;
  if (WITH_CP) {
    const thr = rs.map((r) => r.cp! / r.ours.pass1);
    console.log(`  cp -a of the same data                                 ${median(rs.map((r) => r.cp!)).toFixed(2)} s`);
    console.log(`  ours: pass 1 (service running)                         ${median(rs.map((r) => r.ours.pass1)).toFixed(2)} s`);
    console.log(`  pass 1 throughput / cp -a's, per round                 ${pctOf(thr)}   goal >= 90%`);
    ok &&= median(thr) >= 0.9;
  }
  return ok;
}

function table(): boolean {
  const filesList = opt("table-files", "10000,100000,1000000").split(",").map(Number);
  const pcts = opt("table-changed", "0.1,1,10").split(",").map(Number);
  const mbPer100k = Number(opt("mb-per-100k", "500"));
  const rows: string[] = [];
  let ok = true;
  for (const files of filesList) {
    const { src, gb } = dataset(files, (mbPer100k * files) / 100_000);
    for (const pct of pcts) {
      console.log(`${files} files, ${pct}% changed:`);
      const rs = rounds(src, files, pct, false);
      const down = rs.map((r) => r.ours.downtime / r.plan);
      // the goals are set where the issue measured them: 1% changed before the stop, 100,000
      // files (5%) and 1,000,000 (10%). The other rows show how the share moves: with 10%
      // changed in the last moment, the final pass must copy and compare a tenth of the tree,
      // so no pass can come under 10% of a whole copy; a small tree is its fixed part.
      const goal = pct === 1 && files >= 100_000 ? (files >= 1_000_000 ? 0.1 : 0.05) : undefined;
      const met = goal === undefined || median(down) <= goal;
      ok &&= met;
      rows.push(
        `| ${files.toLocaleString("en")} | ${gb.toFixed(2)} GB | ${pct}% | ${median(rs.map((r) => r.plan)).toFixed(2)} s | ${median(rs.map((r) => r.ours.downtime)).toFixed(2)} s | ${pctOf(down)} | ${goal === undefined ? "none set" : `${goal * 100}%: ${met ? "met" : "MISSED"}`} |`,
      );
    }
    sh(`rm -rf ${src}`);
  }
  console.log(`\nour downtime against the plan's, ${ROUNDS} paired rounds per row (medians; range of the per-round ratios in brackets)`);
  console.log("| files | data | changed before the stop | plan downtime | our downtime | ours / plan | goal |");
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  return ok;
}

try {
  const ok = TABLE ? table() : single();
  if (!ok) {
    console.log("a goal was missed");
    process.exitCode = 1;
  }
} finally {
  sh(`rm -rf ${BASE}`);
}
