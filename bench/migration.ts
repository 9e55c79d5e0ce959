/**
 * Migration benchmark: the plan's procedure beside ours, on the same generated data, in one run.
 *
 *   npx tsx bench/migration.ts [--files 100000] [--size-mb 2048] [--changed-pct 1] [--dir /var/tmp]
 *
 * - plan: stop, `rsync -av` of everything, start (its `diff -r` runs after the start); its
 *   downtime is the whole copy.
 * - ours: components/scripts/migrate.sh for real: pass 1 while the "service" runs, then
 *   --changed-pct of the files change (as a running service would change them), then stop, final
 *   pass, verification; its downtime is stop to hand-over (the migrate state file's stopped_at and
 *   handover_at), the time the service is down apart from its own restart.
 * - throughput: our pass 1 (the whole copy) against `cp -a` of the same data to the same disk.
 * Caches are dropped before every timed step (root) so that no step reads what another just read.
 * Goals (issue 5): our downtime at most 10% of the plan's; our throughput at least 70% of cp -a.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SCRIPTS_DIR } from "../components/render/command";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const FILES = arg("files", 100_000);
const SIZE_MB = arg("size-mb", 2048);
const CHANGED_PCT = arg("changed-pct", 1);
const dirArg = process.argv.indexOf("--dir");
const BASE = fs.mkdtempSync(path.join(dirArg > 0 ? process.argv[dirArg + 1]! : "/var/tmp", "dgx-bench-migration-"));

function sh(cmd: string): string {
  return execFileSync("bash", ["-euo", "pipefail", "-c", cmd], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
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

/** FILES files totalling about SIZE_MB, in 100 directories, sizes varied around the mean. */
function generate(dir: string): void {
  const mean = Math.max(1, Math.floor((SIZE_MB * 1024 * 1024) / FILES));
  // one python process writes all files: far faster than a process per file
  sh(`python3 - "${dir}" ${FILES} ${mean} <<'PY'
import os, random, sys
root, n, mean = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(42)
block = os.urandom(4 * 1024 * 1024)
for d in range(100):
    os.makedirs(os.path.join(root, f"d{d:02d}"), exist_ok=True)
for i in range(n):
    size = random.randint(mean // 2, mean + mean // 2)
    off = random.randint(0, len(block) - size) if size < len(block) else 0
    with open(os.path.join(root, f"d{i % 100:02d}", f"f{i:06d}.bin"), "wb") as f:
        f.write(block[off:off + size] if size <= len(block) else os.urandom(size))
PY`);
}

const CHANGE_SCRIPT = (dir: string) =>
  `python3 - "${dir}" ${FILES} ${CHANGED_PCT} <<'PY'
import os, random, sys
root, n, pct = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
random.seed(7)
for i in random.sample(range(n), max(1, int(n * pct / 100))):
    with open(os.path.join(root, f"d{i % 100:02d}", f"f{i:06d}.bin"), "r+b") as f:
        f.write(os.urandom(64))
PY`;

function main(): void {
  const src = path.join(BASE, "src");
  console.log(`dataset: ${FILES} files, about ${SIZE_MB} MiB, in ${BASE}`);
  let t0 = Date.now();
  fs.mkdirSync(src);
  generate(src);
  const bytes = Number(sh(`du -s --block-size=1 ${src} | cut -f1`));
  console.log(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(bytes / 1e9).toFixed(2)} GB on disk)`);

  // cp -a: the throughput reference
  const cpTime = timed(`cp -a ${src} ${BASE}/cp-copy`);
  sh(`rm -rf ${BASE}/cp-copy`);

  // the plan: stop, rsync -av everything, start; downtime = the copy
  const planTime = timed(`rsync -a ${src}/ ${BASE}/plan-copy/`);
  sh(`rm -rf ${BASE}/plan-copy`);

  // ours: the real script (no container: the stop and start themselves are the same in both)
  t0 = Date.now();
  dropCaches();
  const root = path.join(BASE, "root");
  fs.mkdirSync(root);
  fs.renameSync(src, path.join(root, "src"));
  const r = spawnSync("bash", [path.join(SCRIPTS_DIR, "migrate.sh"), "run", "bench", "-", "/src", "/dst", "-", "10", "60", "none"], {
    env: { ...process.env, ROOT: root, MIGRATE_AFTER_PASS1: CHANGE_SCRIPT(path.join(root, "src")) },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`migrate.sh failed:\n${r.stderr}`);
  const total = (Date.now() - t0) / 1000;
  const marker = JSON.parse(fs.readFileSync(path.join(root, "var/lib/dgx-storage/migrations/bench.json"), "utf8")) as Record<string, string>;
  const downtime = Number(marker.handover_at) - Number(marker.stopped_at);
  const pass1 = Number(/pass 1 done in ([\d.]+) s/.exec(r.stdout)?.[1]);
  const files = Number(marker.files_verified);

  // where our downtime goes, from the script's own log
  for (const line of r.stdout.split("\n")) if (/final pass:|final pass and verification took|verifying pass 1|stopping/.test(line)) console.log(`  (${line.trim()})`);
  const mbps = (t: number) => bytes / 1e6 / t;
  const rows: [string, string, string][] = [
    ["plan: downtime (stop, rsync -a of everything, start)", `${planTime.toFixed(1)} s`, ""],
    ["ours: downtime (stop, final pass, verification)", `${downtime.toFixed(1)} s`, `${((downtime / planTime) * 100).toFixed(1)}% of the plan's (goal <= 10%)`],
    ["ours: whole run, service up during pass 1", `${total.toFixed(1)} s`, ""],
    ["cp -a of the same data", `${cpTime.toFixed(1)} s (${mbps(cpTime).toFixed(0)} MB/s)`, ""],
    ["ours: pass 1 copy", `${pass1.toFixed(1)} s (${mbps(pass1).toFixed(0)} MB/s)`, `${((cpTime / pass1) * 100).toFixed(0)}% of cp -a's throughput (goal >= 70%)`],
  ];
  console.log(`\nmigration benchmark: ${FILES} files, ${(bytes / 1e9).toFixed(2)} GB, ${CHANGED_PCT}% changed between our passes, ${files} entries verified`);
  for (const [what, value, ratio] of rows) console.log(`  ${what.padEnd(56)} ${value.padEnd(22)} ${ratio}`);
  console.log(`ratios: downtime ours/plan = ${(downtime / planTime).toFixed(3)}, throughput ours/cp-a = ${(cpTime / pass1).toFixed(2)}`);
  sh(`rm -rf ${BASE}`);
}

main();
