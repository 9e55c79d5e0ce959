import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CAPACITY_THRESHOLDS, parseDf, projectCapacity, projectFromDf, yearsUntil, type CapacityInput } from "../../components/render/capacity";
import { renderCapacityChart } from "../../components/render/chart";
import { compareWithTargets, FIO_JOBS, parseFioJson, parseFioSummary } from "../../components/render/fio";
import { bundledScript } from "../../components/render/command";
import { hostPathEnv } from "../../components/render/host-paths";
import {
  ALERT_SERVICE,
  ALERT_TIMER,
  monitoringUnitSet,
  SMARTD_ALERT_HOOK,
  STORAGE_ALERT_CONFIG,
  STORAGE_ALERT_SCRIPT,
  type MonitoringPlan,
} from "../../components/render/monitoring";
import { parseSmartdConf, renderSmartdConf } from "../../components/render/smartd";
import { parseUnit } from "../../components/render/systemd";

const START = new Date("2026-01-01T00:00:00Z");
/** The plan's figures (TB, decimal, as the plan writes them). */
const SARK: CapacityInput = { size: 3.7, used: 1.9, annualGrowth: 0.2, start: START };
const CLU: CapacityInput = { size: 3.7, used: 1.3, annualGrowth: 0.2, start: START };
const FIXTURE = path.join(__dirname, "..", "fixtures", "fio-baseline-1s.json");

describe("capacity projection (compound growth of used bytes, the default)", () => {
  it("GIVEN SARK 1.9 of 3.7 TB at 20%/yr THEN years 1-3 are 61.62%, 73.95%, 88.74%", () => {
    const p = projectCapacity(SARK);
    expect(p.model).toBe("compound");
    expect(p.percentNow).toBe(51.35); // the plan's "54%" is df's Use% with other rounding; 1.9/3.7 is 51.35%
    expect(p.years.map((y) => [y.year, y.date, y.percent])).toEqual([
      [1, "2027-01-01", 61.62], // 1.9 * 1.2 = 2.28 TB
      [2, "2028-01-01", 73.95], // 2.736 TB
      [3, "2028-12-31", 88.74], // 3.2832 TB; 3 x 365.25 days lands on Dec 31 of a leap-year span
    ]);
    expect(p.years[2]!.used).toBeCloseTo(3.2832, 10);
  });

  it("GIVEN SARK THEN 60% is crossed after 0.85 years (2026-11-09), 80% on 2028-06-08, 90% on 2029-01-30", () => {
    // t = ln(threshold * 3.7 / 1.9) / ln(1.2): 0.8537, 2.4316, 3.0776 years; date = start + ceil(t * 365.25) days
    expect(projectCapacity(SARK).thresholds).toEqual([
      { percent: 60, action: "Add additional container storage volumes", date: "2026-11-09", years: 0.85, alreadyReached: false },
      { percent: 80, action: "Implement data compression", date: "2028-06-08", years: 2.43, alreadyReached: false },
      { percent: 90, action: "Archive cold data to external storage", date: "2029-01-30", years: 3.08, alreadyReached: false },
    ]);
  });

  it("GIVEN CLU 1.3 of 3.7 TB THEN 42.16/50.59/60.71% and 60% on 2028-12-09, 80% on 2030-07-08, 90% on 2031-03-01", () => {
    const p = projectCapacity(CLU);
    expect(p.percentNow).toBe(35.14);
    expect(p.years.map((y) => y.percent)).toEqual([42.16, 50.59, 60.71]);
    expect(p.thresholds.map((t) => [t.percent, t.date, t.years])).toEqual([
      [60, "2028-12-09", 2.94],
      [80, "2030-07-08", 4.51],
      [90, "2031-03-01", 5.16],
    ]);
  });

  it("GIVEN the linear model THEN the plan's own table (+20/+40/+60% of today's usage) comes out", () => {
    const p = projectCapacity({ ...SARK, model: "linear" });
    expect(p.years.map((y) => y.used)).toEqual([1.9 * 1.2, 1.9 * 1.4, 1.9 * 1.6].map((x) => expect.closeTo(x, 10)));
    expect(p.thresholds.map((t) => t.date)).toEqual(["2026-11-05", "2028-10-16", "2029-10-07"]);
    // compound reaches every threshold after the first year earlier than linear: the safe side
    expect(projectCapacity(SARK).thresholds[1]!.date! < p.thresholds[1]!.date!).toBe(true);
  });

  it("GIVEN the percentage-points model THEN SARK would be past 100% in year 3 (why it is not the default)", () => {
    const p = projectCapacity({ ...SARK, model: "points" });
    expect(p.years.map((y) => y.percent)).toEqual([71.35, 91.35, 111.35]);
  });

  it("GIVEN usage already past a threshold or no growth THEN 'now' and 'never'", () => {
    const full = projectCapacity({ size: 100, used: 85, annualGrowth: 0.2, start: START });
    expect(full.thresholds.map((t) => [t.percent, t.date, t.alreadyReached])).toEqual([
      [60, "2026-01-01", true],
      [80, "2026-01-01", true],
      [90, "2026-04-26", false], // ln(90/85)/ln(1.2) = 0.3135 years = 114.5 days -> day 115
    ]);
    expect(projectCapacity({ ...SARK, annualGrowth: 0 }).thresholds.map((t) => t.date)).toEqual([null, null, null]);
    expect(yearsUntil({ ...SARK, used: 0 }, 0.6)).toBeNull();
  });

  it("refuses impossible inputs", () => {
    expect(() => projectCapacity({ ...SARK, used: 4 })).toThrow(/used must be between 0 and size/);
    expect(() => projectCapacity({ ...SARK, size: 0 })).toThrow(/size must be positive/);
    expect(() => projectCapacity({ ...SARK, annualGrowth: -0.1 })).toThrow(/annualGrowth/);
  });

  it("GIVEN a live df reading THEN capacity is used + available (ext4's root reserve excluded)", () => {
    const df = parseDf(
      [
        "Filesystem              1-blocks          Used     Available Capacity Mounted on",
        "/dev/nvme0n1p2    3936818184192 1900000000000 1836818184192      51% /",
        "/dev/loop3             62738432      57344000       1056768      99% /mnt/with space",
      ].join("\n"),
    );
    expect(df).toEqual([
      { mount: "/", sizeBytes: 3936818184192, usedBytes: 1900000000000, availBytes: 1836818184192 },
      { mount: "/mnt/with space", sizeBytes: 62738432, usedBytes: 57344000, availBytes: 1056768 },
    ]);
    const p = projectFromDf(df[0]!, 0.2, START);
    expect(p.size).toBe(1900000000000 + 1836818184192);
    expect(p.percentNow).toBe(50.85);
    // 0.6 * 3.7368e12 / 1.9e12 = 1.18005; ln(1.18005)/ln(1.2) = 0.9081 years = 331.7 days -> day 332
    expect(p.thresholds[0]!.date).toBe("2026-11-29");
    expect(() => parseDf("h\n/dev/x a b c d /m")).toThrow(/numbers expected/);
  });
});

describe("capacity chart (SVG)", () => {
  const svg = renderCapacityChart([
    { host: "sark", input: SARK },
    { host: "clu", input: CLU },
  ]);

  it("is well-formed XML (python's parser) of a sensible size", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chart-"));
    const file = path.join(dir, "capacity.svg");
    fs.writeFileSync(file, svg);
    const r = spawnSync(
      "python3",
      [
        "-c",
        "import sys, xml.etree.ElementTree as ET; r = ET.parse(sys.argv[1]).getroot(); print(r.tag, r.get('width'), r.get('height'), len(list(r.iter())))",
        file,
      ],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^\{http:\/\/www\.w3\.org\/2000\/svg\}svg 960 480 \d+\n$/);
    expect(svg.length).toBeGreaterThan(4_000);
    expect(svg.length).toBeLessThan(30_000);
  });

  it("has the three threshold lines with the plan's actions and both hosts' series", () => {
    for (const t of CAPACITY_THRESHOLDS) {
      expect(svg).toContain(`<g id="threshold-${t.percent}" class="threshold">`);
      expect(svg).toContain(`${t.percent}%: ${t.action}`);
    }
    // y = 48 + 376 - pct/100 * 376
    expect(svg).toContain(`<line x1="64" y1="198.4" x2="710" y2="198.4"`); // 60%
    expect(svg).toContain(`<g id="series-sark" class="series">`);
    expect(svg).toContain(`<g id="series-clu" class="series">`);
    // 37 monthly points per host
    const polylines = [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].map((m) => m[1]!.split(" ").length);
    expect(polylines).toEqual([37, 37]);
    expect(svg).toContain("sark 88.74%");
    expect(svg).toContain("clu 60.71%");
    expect(svg).toMatchSnapshot();
  });

  it("escapes text and refuses an empty chart", () => {
    expect(renderCapacityChart([{ host: "a<b", input: CLU }])).toContain("a&lt;b 60.71%");
    expect(() => renderCapacityChart([])).toThrow(/at least one series/);
  });
});

describe("fio JSON parsing and the plan's targets", () => {
  const raw = fs.readFileSync(FIXTURE, "utf8");

  it("GIVEN a real fio 3.33 output (1 s per job, on this machine) THEN the summary has the four jobs", () => {
    const s = parseFioJson(raw);
    expect(s.fio).toBe("fio-3.33");
    expect(Object.keys(s.jobs)).toEqual([...FIO_JOBS]);
    expect(s.jobs["randread-4k-qd1"]).toEqual({
      rw: "randread",
      blockSize: "4k",
      ioDepth: 1,
      iops: 17804.196,
      bandwidthBytesPerSec: 72925986,
      latencyUs: { mean: 55.867, p50: 41.216, p99: 58.112, p99_9: 171.008 },
    });
    expect(s.jobs["write-1m"]!.rw).toBe("write");
    expect(s.jobs["write-1m"]!.bandwidthBytesPerSec).toBe(6940923652); // the write side, not the (empty) read side
    expect(parseFioJson("note: something fio says first\n" + raw).jobs["read-1m"]!.iops).toBe(1134.062);
  });

  it("agrees with the host script's own summary of the same output", () => {
    const r = spawnSync("bash", [path.join(__dirname, "..", "..", "components", "scripts", "fio-baseline.sh"), "summarize", FIXTURE], {
      encoding: "utf8",
      env: { ...process.env, ...hostPathEnv() },
    });
    expect(r.stderr).toBe("");
    const fromScript = parseFioSummary(r.stdout);
    expect(fromScript).toEqual(parseFioJson(raw));
  });

  it("marks each target met or not", () => {
    const checks = compareWithTargets(parseFioJson(raw));
    expect(checks.map((c) => [c.name, c.job, c.value, c.threshold, c.met])).toEqual([
      ["iops", "randread-4k-qd32", 85937.063, 50000, true],
      ["readThroughput", "read-1m", 1189149743, 1e9, true],
      ["writeThroughput", "write-1m", 6940923652, 5e8, true],
      ["averageLatency", "randread-4k-qd1", 0.055867, 5, true],
    ]);
    const slow = parseFioJson(raw);
    const worse = { ...slow, jobs: { ...slow.jobs, "randread-4k-qd32": { ...slow.jobs["randread-4k-qd32"]!, iops: 50_000 } } };
    expect(compareWithTargets(worse)[0]).toMatchObject({ met: false, comparison: ">", target: ">50,000 IOPS" });
  });

  it("refuses what is not a summary", () => {
    expect(() => parseFioSummary('{"version": 1, "jobs": {}}')).toThrow(/lacks job randread-4k-qd1/);
    expect(() => parseFioJson("fio: no such file")).toThrow(/no JSON/);
  });
});

describe("smartd.conf writer", () => {
  const conf = renderSmartdConf({
    devices: [{ path: "/dev/nvme0" }, { path: "/dev/nvme1n1", optional: true }],
    alertExec: SMARTD_ALERT_HOOK,
  });

  it("round-trips: one line per device, >70 C as CRIT 71, the alert hook, no mailer", () => {
    expect(conf.split("\n")[0]).toMatch(/^# Managed by dgx-storage/);
    const tail = ["-H", "-l", "error", "-W", "0,0,71", "-m", "<nomailer>", "-M", "daily", "-M", "exec", "/usr/local/lib/dgx-storage/smartd-alert"];
    expect(parseSmartdConf(conf)).toEqual([
      ["/dev/nvme0", ["-d", "nvme", ...tail]],
      ["/dev/nvme1n1", ["-d", "nvme", "-d", "removable", ...tail]],
    ]);
    expect(conf).toMatchSnapshot();
  });

  it("takes a mail address, other limits, and refuses bad input", () => {
    const c = renderSmartdConf({
      devices: [{ path: "/dev/nvme0" }],
      alertExec: "/x",
      mailTo: "root,ops@example.org",
      temperatureCriticalC: 75,
      temperatureInfoC: 65,
    });
    expect(c).toContain("-W 0,65,76 -m root,ops@example.org -M daily -M exec /x");
    expect(() => renderSmartdConf({ devices: [], alertExec: "/x" })).toThrow(/at least one device/);
    expect(() => renderSmartdConf({ devices: [{ path: "nvme0" }], alertExec: "/x" })).toThrow(/not a device path/);
    expect(() => renderSmartdConf({ devices: [{ path: "/dev/nvme0" }, { path: "/dev/nvme0" }], alertExec: "/x" })).toThrow(/twice/);
    expect(() => renderSmartdConf({ devices: [{ path: "/dev/nvme0" }], alertExec: "/x y" })).toThrow(/alertExec/);
    expect(() => renderSmartdConf({ devices: [{ path: "/dev/nvme0" }], alertExec: "/x", mailTo: "a b" })).toThrow(/mailTo/);
  });
});

describe("monitoring unit set", () => {
  const plan: MonitoringPlan = {
    host: "sark",
    mounts: ["/data/chroma", "/"],
    containers: ["chromadb"],
    iops: { targets: [{ dir: "/data", baselineFile: "/var/lib/dgx-storage/fio/data.json" }] },
  };
  const set = monitoringUnitSet(plan);
  const file = (p: string) => {
    const f = set.files.find((x) => x.path === p);
    if (!f) throw new Error(`no ${p} in the set`);
    return f;
  };

  it("has the script, the smartd hook, the config and the service + timer; enables the timer and fstrim.timer", () => {
    expect(set.files.map((f) => [f.path, f.mode])).toEqual([
      [STORAGE_ALERT_SCRIPT, "0755"],
      [SMARTD_ALERT_HOOK, "0755"],
      [STORAGE_ALERT_CONFIG, "0644"],
      [`/etc/systemd/system/${ALERT_SERVICE}`, "0644"],
      [`/etc/systemd/system/${ALERT_TIMER}`, "0644"],
    ]);
    expect(set.enable).toEqual(["dgx-storage-alert.timer", "fstrim.timer"]);
    expect(monitoringUnitSet({ ...plan, fstrimTimer: false }).enable).toEqual(["dgx-storage-alert.timer"]);
    expect(file(STORAGE_ALERT_SCRIPT).content).toBe(bundledScript("storage-alert"));
    expect(file(SMARTD_ALERT_HOOK).content).toContain("exec /usr/local/lib/dgx-storage/storage-alert.sh smartd /etc/dgx-storage/storage-alert.json\n");
  });

  it("round-trips the units (a oneshot check every 5 minutes)", () => {
    expect(parseUnit(file(`/etc/systemd/system/${ALERT_SERVICE}`).content)).toEqual([
      [
        "Unit",
        [
          ["Description", "dgx-storage: storage alert check (usage, I/O wait, IOPS, containers)"],
          ["After", "docker.service"],
        ],
      ],
      [
        "Service",
        [
          ["Type", "oneshot"],
          ["ExecStart", "/bin/bash /usr/local/lib/dgx-storage/storage-alert.sh check /etc/dgx-storage/storage-alert.json"],
          ["TimeoutStartSec", "4min"],
        ],
      ],
    ]);
    expect(parseUnit(file(`/etc/systemd/system/${ALERT_TIMER}`).content)).toEqual([
      ["Unit", [["Description", "dgx-storage: storage alert check every 5 minutes"]]],
      [
        "Timer",
        [
          ["OnBootSec", "2min"],
          ["OnUnitActiveSec", "5min"],
          ["AccuracySec", "30s"],
        ],
      ],
      ["Install", [["WantedBy", "timers.target"]]],
    ]);
    expect(
      set.files
        .filter((f) => !f.path.endsWith(".sh"))
        .map((f) => `--- ${f.path}\n${f.content}`)
        .join("\n"),
    ).toMatchSnapshot();
  });

  it("writes the config with the plan's defaults", () => {
    expect(JSON.parse(file(STORAGE_ALERT_CONFIG).content)).toEqual({
      host: "sark",
      mounts: ["/data/chroma", "/"],
      usage: { warning: 80, critical: 90 },
      iowait: { warning: 20, critical: 50, sampleSeconds: 5 },
      iops: {
        targets: [{ dir: "/data", baselineFile: "/var/lib/dgx-storage/fio/data.json" }],
        minFraction: 0.5,
        probeSeconds: 5,
        probeSizeMiB: 256,
        everyMinutes: 60,
      },
      containers: ["chromadb"],
      repeatMinutes: 60,
      webhookFile: "/etc/dgx-storage/alert-webhook",
    });
  });

  it.each([
    [{ mounts: ["data"] }, /mount 'data' is not an absolute path/],
    [{ usage: { warningPercent: 95, criticalPercent: 90 } }, /usage: need 0 < warning <= critical <= 100/],
    [{ containers: ["bad name"] }, /'bad name' is not a container name/],
    [{ iops: { targets: [], minFraction: 1.5 } }, /minFraction/],
    [{ intervalMinutes: 0 }, /intervalMinutes/],
  ] as [Partial<MonitoringPlan>, RegExp][])("refuses %j", (bad, message) => {
    expect(() => monitoringUnitSet({ ...plan, ...bad })).toThrow(message);
  });
});
