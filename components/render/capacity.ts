/**
 * Capacity planning (plan phase 6): projected usage for years 1-3 and the date each expansion
 * threshold is reached.
 *
 * The plan says both "20% annual growth" and "Year 1: +20%, Year 2: +40%, Year 3: +60%
 * utilization". The default model here is **compound growth of the used bytes**: used(t) =
 * used0 * (1 + rate)^t, t in years. Reasons: "annual growth" of stored data is a rate on what is
 * stored (data begets data: logs, embeddings, model versions), and compounding reaches every
 * threshold earlier than the plan's linear table, which is the safe side for ordering disks.
 * The other two readings are available:
 *   - "linear": used(t) = used0 * (1 + rate * t) reproduces the plan's table exactly
 *     (+20/+40/+60% of today's usage after 1/2/3 years);
 *   - "points": utilization rises by rate * 100 percentage points a year. With SARK at 51% that
 *     is 91% after two years and past 100% in the third, which the plan cannot have meant.
 */

export type GrowthModel = "compound" | "linear" | "points";

/** The plan's thresholds and what it says to do at each. */
export const CAPACITY_THRESHOLDS = [
  { percent: 60, action: "Add additional container storage volumes" },
  { percent: 80, action: "Implement data compression" },
  { percent: 90, action: "Archive cold data to external storage" },
] as const;

export interface CapacityInput {
  /** Usable size of the filesystem, bytes (or any unit, as long as `used` is in the same one). */
  readonly size: number;
  readonly used: number;
  /** Annual growth rate, 0.2 = 20%. */
  readonly annualGrowth: number;
  /** The day the reading was taken (UTC midnight is used). */
  readonly start: Date;
  /** @default "compound" */
  readonly model?: GrowthModel;
}

export interface YearProjection {
  readonly year: number;
  readonly date: string;
  readonly used: number;
  /** Utilization, percent of size, two decimals. */
  readonly percent: number;
}

export interface ThresholdCrossing {
  readonly percent: number;
  readonly action: string;
  /** The first day on which the projection is at or above the threshold; "now" when it already is; null when never (no growth). */
  readonly date: string | null;
  /** Years from the start, two decimals (0 when already reached, null when never). */
  readonly years: number | null;
  readonly alreadyReached: boolean;
}

export interface CapacityProjection {
  readonly model: GrowthModel;
  readonly start: string;
  readonly size: number;
  readonly used: number;
  readonly percentNow: number;
  readonly years: readonly YearProjection[];
  readonly thresholds: readonly ThresholdCrossing[];
}

/** One projection year is 365.25 days (a Julian year): dates stay within a day of the calendar. */
export const YEAR_MS = 365.25 * 86_400_000;
const DAY_MS = 86_400_000;

const round2 = (x: number) => Math.round(x * 100) / 100;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const utcMidnight = (d: Date) => Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());

function check(input: CapacityInput): void {
  const { size, used, annualGrowth, start } = input;
  if (!(size > 0)) throw new Error(`size must be positive, got ${size}`);
  if (!(used >= 0) || used > size) throw new Error(`used must be between 0 and size (${size}), got ${used}`);
  if (!(annualGrowth >= 0) || !Number.isFinite(annualGrowth)) throw new Error(`annualGrowth must be 0 or more, got ${annualGrowth}`);
  if (Number.isNaN(start.getTime())) throw new Error("start is not a valid date");
}

/** Projected used amount after t years (fractional), under the model. */
export function usedAt(input: CapacityInput, t: number): number {
  const { size, used, annualGrowth: g } = input;
  switch (input.model ?? "compound") {
    case "compound":
      return used * Math.pow(1 + g, t);
    case "linear":
      return used * (1 + g * t);
    case "points":
      return used + g * size * t;
  }
}

/** Years until utilization reaches `fraction` of size (0 when already there, null when never). */
export function yearsUntil(input: CapacityInput, fraction: number): number | null {
  const { size, used, annualGrowth: g } = input;
  const target = fraction * size;
  if (used >= target) return 0;
  if (g === 0 || used === 0) return input.model === "points" && g > 0 ? (target - used) / (g * size) : null;
  switch (input.model ?? "compound") {
    case "compound":
      return Math.log(target / used) / Math.log(1 + g);
    case "linear":
      return (target / used - 1) / g;
    case "points":
      return (target - used) / (g * size);
  }
}

/** Projection for years 1..3 and the three thresholds. */
export function projectCapacity(input: CapacityInput): CapacityProjection {
  check(input);
  const t0 = utcMidnight(input.start);
  const model = input.model ?? "compound";
  return {
    model,
    start: isoDay(t0),
    size: input.size,
    used: input.used,
    percentNow: round2((input.used / input.size) * 100),
    years: [1, 2, 3].map((year) => {
      const used = usedAt(input, year);
      return { year, date: isoDay(t0 + year * YEAR_MS), used, percent: round2((used / input.size) * 100) };
    }),
    thresholds: CAPACITY_THRESHOLDS.map(({ percent, action }) => {
      const t = yearsUntil(input, percent / 100);
      if (t === null) return { percent, action, date: null, years: null, alreadyReached: false };
      // the first whole day at or past the crossing
      const date = t === 0 ? isoDay(t0) : isoDay(Math.ceil((t0 + t * YEAR_MS) / DAY_MS) * DAY_MS);
      return { percent, action, date, years: round2(t), alreadyReached: t === 0 };
    }),
  };
}

/** A live reading of one data mount, as `df -B1` reports it. */
export interface DfReading {
  readonly mount: string;
  /** "1B-blocks": the filesystem size, including blocks reserved for root. */
  readonly sizeBytes: number;
  readonly usedBytes: number;
  readonly availBytes: number;
}

/**
 * The projection from a live `df` reading. Capacity is used + available (what df's Use% divides
 * by, and what storage-alert.sh compares with its 80/90% thresholds): ext4 reserves 5% for root,
 * which the data can never use, so the raw size would report every threshold late.
 */
export function projectFromDf(df: DfReading, annualGrowth: number, start: Date, model: GrowthModel = "compound"): CapacityProjection {
  return projectCapacity({ size: df.usedBytes + df.availBytes, used: df.usedBytes, annualGrowth, start, model });
}

/** Parses `df -B1 -P <mount>...` output into readings (header skipped). */
export function parseDf(text: string): DfReading[] {
  const lines = text.trim().split("\n").slice(1);
  return lines
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      if (f.length < 6) throw new Error(`not a df -P line: ${l}`);
      const [size, used, avail] = [f[1], f[2], f[3]].map((x) => Number(x));
      if (![size, used, avail].every((x) => Number.isFinite(x))) throw new Error(`not a df -B1 line (numbers expected): ${l}`);
      return { mount: f.slice(5).join(" "), sizeBytes: size!, usedBytes: used!, availBytes: avail! };
    });
}

/** Monthly points from the start to +years, for charts: [date, percent]. */
export function projectionSeries(input: CapacityInput, years = 3): { date: string; t: number; percent: number }[] {
  check(input);
  const t0 = utcMidnight(input.start);
  const out: { date: string; t: number; percent: number }[] = [];
  for (let m = 0; m <= years * 12; m++) {
    const t = m / 12;
    out.push({ date: isoDay(t0 + t * YEAR_MS), t, percent: round2((usedAt(input, t) / input.size) * 100) });
  }
  return out;
}
