/**
 * The performance baseline (plan phase 1.2 and "Success Criteria"): fio's JSON output turned into
 * a summary, and the summary compared with the plan's targets.
 *
 * `components/scripts/fio-baseline.sh` computes the same summary on the host (its python block);
 * test/scripts/fio.test.ts and test/render/monitoring.test.ts check on a real fio output that both agree.
 */

/** The four jobs fio-baseline.sh runs, in order. */
export const FIO_JOBS = ["randread-4k-qd1", "randread-4k-qd32", "read-1m", "write-1m"] as const;
export type FioJobName = (typeof FIO_JOBS)[number];

export interface FioLatencyUs {
  /** Mean total latency (submission + completion), microseconds. */
  readonly mean: number;
  /** Completion-latency percentiles, microseconds (null when fio did not report them). */
  readonly p50: number | null;
  readonly p99: number | null;
  readonly p99_9: number | null;
}

export interface FioJobSummary {
  readonly rw: string;
  readonly blockSize: string;
  readonly ioDepth: number;
  readonly iops: number;
  readonly bandwidthBytesPerSec: number;
  readonly latencyUs: FioLatencyUs;
}

/** What fio-baseline.sh writes to its <out.json> and prints; the alert check's baseline. */
export interface FioSummary {
  readonly version: 1;
  /** fio's version string, e.g. "fio-3.33". */
  readonly fio: string | null;
  readonly dir?: string;
  readonly size?: string;
  readonly runtimeSeconds?: number;
  readonly measuredAt?: string;
  readonly jobs: Readonly<Record<string, FioJobSummary>>;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const us = (ns: number | undefined | null): number | null => (ns === undefined || ns === null ? null : round3(ns / 1000));

interface RawSide {
  iops: number;
  bw_bytes: number;
  lat_ns: { mean: number };
  clat_ns?: { percentile?: Record<string, number> };
}
interface RawJob {
  jobname: string;
  "job options"?: Record<string, string>;
  read: RawSide;
  write: RawSide;
}

/**
 * Parses fio's `--output-format=json` text (notes fio prints before the document are skipped)
 * into the summary, job by job: the read side for read jobs, the write side for write jobs.
 */
export function parseFioJson(text: string, meta: Omit<FioSummary, "version" | "fio" | "jobs"> = {}): FioSummary {
  const start = text.indexOf("{");
  if (start < 0) throw new Error("fio output holds no JSON document");
  const data = JSON.parse(text.slice(start)) as { "fio version"?: string; jobs?: RawJob[] };
  const jobs: Record<string, FioJobSummary> = {};
  for (const job of data.jobs ?? []) {
    const opts = job["job options"] ?? {};
    const rw = opts.rw ?? "";
    const side = rw === "write" || rw === "randwrite" ? job.write : job.read;
    const pct = side.clat_ns?.percentile ?? {};
    jobs[job.jobname] = {
      rw,
      blockSize: opts.bs ?? "",
      ioDepth: Number(opts.iodepth ?? "1"),
      iops: round3(side.iops),
      bandwidthBytesPerSec: side.bw_bytes,
      latencyUs: { mean: us(side.lat_ns.mean) ?? 0, p50: us(pct["50.000000"]), p99: us(pct["99.000000"]), p99_9: us(pct["99.900000"]) },
    };
  }
  if (Object.keys(jobs).length === 0) throw new Error("fio output holds no jobs");
  return { version: 1, fio: data["fio version"] ?? null, ...meta, jobs };
}

/** Reads the summary fio-baseline.sh printed (the remote command's stdout) and checks its shape. */
export function parseFioSummary(text: string): FioSummary {
  const s = JSON.parse(text) as FioSummary;
  if (s.version !== 1 || typeof s.jobs !== "object" || s.jobs === null) throw new Error("not a fio-baseline summary (version 1)");
  for (const name of FIO_JOBS) {
    const j = s.jobs[name];
    if (!j || typeof j.iops !== "number" || typeof j.bandwidthBytesPerSec !== "number") throw new Error(`the summary lacks job ${name}`);
  }
  return s;
}

/** One success criterion of the plan, measured. */
export interface TargetCheck {
  readonly name: string;
  /** The plan's wording. */
  readonly target: string;
  readonly job: FioJobName;
  readonly value: number;
  readonly unit: string;
  readonly threshold: number;
  readonly comparison: ">" | "<";
  readonly met: boolean;
}

/**
 * The plan's performance targets. Decimal units, as storage vendors and fio's own "GB/s" use:
 * 1 GB/s = 1e9 bytes/s. "Average latency" is the mean latency of a single request (4k QD1): at a
 * deep queue the mean grows with the queue by design and says nothing about response time.
 */
export function compareWithTargets(s: FioSummary): TargetCheck[] {
  const job = (n: FioJobName) => {
    const j = s.jobs[n];
    if (!j) throw new Error(`the summary lacks job ${n}`);
    return j;
  };
  const check = (name: string, target: string, jobName: FioJobName, value: number, unit: string, comparison: ">" | "<", threshold: number): TargetCheck => ({
    name,
    target,
    job: jobName,
    value,
    unit,
    threshold,
    comparison,
    met: comparison === ">" ? value > threshold : value < threshold,
  });
  return [
    check("iops", ">50,000 IOPS", "randread-4k-qd32", job("randread-4k-qd32").iops, "IOPS", ">", 50_000),
    check("readThroughput", ">1 GB/s read", "read-1m", job("read-1m").bandwidthBytesPerSec, "bytes/s", ">", 1e9),
    check("writeThroughput", ">500 MB/s write", "write-1m", job("write-1m").bandwidthBytesPerSec, "bytes/s", ">", 5e8),
    check("averageLatency", "<5 ms average latency", "randread-4k-qd1", job("randread-4k-qd1").latencyUs.mean / 1000, "ms", "<", 5),
  ];
}
