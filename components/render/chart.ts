/**
 * A capacity chart as a standalone SVG string: projected utilization of one or more hosts from
 * now to +3 years against the plan's 60/80/90% thresholds. No dependencies; synth writes it next
 * to the other reviewed files.
 */
import { CAPACITY_THRESHOLDS, projectionSeries, type CapacityInput } from "./capacity";

export interface ChartSeries {
  /** Host name, shown in the legend and used in element ids (`series-<host>`). */
  readonly host: string;
  readonly input: CapacityInput;
}

export interface ChartOptions {
  /** @default "Projected storage utilization" */
  readonly title?: string;
  /** @default 3 */
  readonly years?: number;
}

const W = 960;
const H = 480;
const M = { left: 64, right: 250, top: 48, bottom: 56 }; // the right margin holds the legend
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const THRESHOLD_COLORS: Record<number, string> = { 60: "#e6a700", 80: "#e8590c", 90: "#c92a2a" };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
const n = (x: number) => (Math.round(x * 10) / 10).toString();

/** Renders the chart. Utilization above 100% is drawn clipped at the top edge. */
export function renderCapacityChart(series: readonly ChartSeries[], opts: ChartOptions = {}): string {
  if (series.length === 0) throw new Error("a chart needs at least one series");
  const years = opts.years ?? 3;
  const title = opts.title ?? "Projected storage utilization";
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (t: number) => M.left + (t / years) * pw;
  const y = (pct: number) => M.top + ph - (Math.min(pct, 100) / 100) * ph;
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${M.left}" y="28" font-size="16" font-weight="bold">${esc(title)}</text>`);

  // axes and grid
  out.push(`<g id="axes" stroke="#999999" stroke-width="1">`);
  out.push(`<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}"/>`);
  out.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}"/>`);
  out.push(`</g>`);
  out.push(`<g id="y-ticks" fill="#333333" text-anchor="end">`);
  for (let p = 0; p <= 100; p += 20) {
    out.push(`<line x1="${M.left - 4}" y1="${n(y(p))}" x2="${M.left + pw}" y2="${n(y(p))}" stroke="#eeeeee"/>`);
    out.push(`<text x="${M.left - 8}" y="${n(y(p) + 4)}">${p}%</text>`);
  }
  out.push(`</g>`);
  const start = projectionSeries(series[0]!.input, years);
  out.push(`<g id="x-ticks" fill="#333333" text-anchor="middle">`);
  for (let m = 0; m <= years * 12; m += 6) {
    const pt = start[m]!;
    out.push(`<line x1="${n(x(pt.t))}" y1="${M.top + ph}" x2="${n(x(pt.t))}" y2="${M.top + ph + 4}" stroke="#999999"/>`);
    out.push(`<text x="${n(x(pt.t))}" y="${M.top + ph + 18}">${pt.date.slice(0, 7)}</text>`);
  }
  out.push(`<text x="${n(M.left + pw / 2)}" y="${H - 12}">time (projection from ${start[0]!.date})</text>`);
  out.push(`</g>`);

  // thresholds
  for (const th of CAPACITY_THRESHOLDS) {
    const color = THRESHOLD_COLORS[th.percent] ?? "#888888";
    out.push(`<g id="threshold-${th.percent}" class="threshold">`);
    out.push(
      `<line x1="${M.left}" y1="${n(y(th.percent))}" x2="${M.left + pw}" y2="${n(y(th.percent))}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    );
    out.push(`</g>`);
  }

  // one polyline per host, with its year-end values marked
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = projectionSeries(s.input, years);
    const id = `series-${s.host.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    out.push(`<g id="${id}" class="series">`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${pts.map((p) => `${n(x(p.t))},${n(y(p.percent))}`).join(" ")}"/>`);
    for (const p of pts.filter((_, m) => m % 12 === 0)) {
      out.push(`<circle cx="${n(x(p.t))}" cy="${n(y(p.percent))}" r="3.5" fill="${color}"><title>${esc(s.host)} ${p.date}: ${p.percent}%</title></circle>`);
    }
    const last = pts[pts.length - 1]!;
    out.push(
      `<text x="${n(x(last.t) - 4)}" y="${n(y(last.percent) - 8)}" text-anchor="end" fill="${color}" font-weight="bold">${esc(s.host)} ${last.percent}%</text>`,
    );
    out.push(`</g>`);
    // legend
    const ly = M.top + ph - 40 + i * 18;
    out.push(`<g class="legend"><line x1="${M.left + pw + 6}" y1="${ly}" x2="${M.left + pw + 26}" y2="${ly}" stroke="${color}" stroke-width="2.5"/>`);
    // the growth model is in the title: the legend stays inside the right margin
    out.push(`<text x="${M.left + pw + 32}" y="${ly + 4}" font-size="11">${esc(s.host)}: ${pts[0]!.percent}% now</text></g>`);
  });
  // threshold labels last, on a white halo, so that no series line hides them
  for (const th of CAPACITY_THRESHOLDS) {
    const color = THRESHOLD_COLORS[th.percent] ?? "#888888";
    out.push(
      `<text class="threshold-label" x="${M.left + 6}" y="${n(y(th.percent) - 4)}" fill="${color}" font-size="11" stroke="#ffffff" stroke-width="3" paint-order="stroke">${th.percent}%: ${esc(th.action)}</text>`,
    );
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
