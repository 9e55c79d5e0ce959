import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SCRIPTS_DIR } from "../../components/render/command";
import { monitoringUnitSet, STORAGE_ALERT_SCRIPT, storageAlertConfig, type MonitoringPlan } from "../../components/render/monitoring";
import { renderUnitSet } from "../../components/render/systemd";
import { describeWith } from "../tools";
import { makeRoot, runScript } from "./run";

const SCRIPT = path.join(SCRIPTS_DIR, "storage-alert.sh");
const CONFIG = "/etc/dgx-storage/storage-alert.json";
const PLAN: MonitoringPlan = {
  host: "sark",
  mounts: ["/data"],
  iowait: { warningPercent: 20, criticalPercent: 50, sampleSeconds: 1 },
  containers: ["chromadb", "vllm"],
  iops: { targets: [{ dir: "/data", baselineFile: "/var/lib/dgx-storage/fio/data.json" }], probeSeconds: 1, probeSizeMiB: 16 },
};
const TB = 1e12;

interface Alert {
  severity: string;
  what: string;
  where: string;
  value: unknown;
  threshold: unknown;
  message: string;
  key: string;
}

/** The pure decision: config + measurements in, alerts out. */
function decide(measurements: object, plan: MonitoringPlan = PLAN): Alert[] {
  const root = makeRoot({ [CONFIG.slice(1)]: JSON.stringify(storageAlertConfig(plan)) });
  const r = runScript("storage-alert", ["decide", CONFIG], { ROOT: root }, { input: JSON.stringify(measurements) });
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Alert[];
}

describe("storage-alert decisions (worked examples)", () => {
  const usage = (usedTB: number, availTB: number) => ({ usage: [{ mount: "/data", fs: "/", usedBytes: usedTB * TB, availBytes: availTB * TB }] });

  it("GIVEN SARK's disk as the plan gives it (1.9 TB used, 1.7 TB free: 52.8%) THEN no alert", () => {
    expect(decide(usage(1.9, 1.7))).toEqual([]);
  });

  it("GIVEN 3.0 TB used, 0.6 TB free (83.3%) THEN a warning that says what, where, value and threshold", () => {
    expect(decide(usage(3.0, 0.6))).toEqual([
      {
        severity: "warning",
        what: "disk usage",
        where: "/data",
        value: 83.3,
        threshold: 80,
        message: "disk usage on sark at /data (filesystem /): 83.3% used (3.00 TB of 3.60 TB), threshold 80%",
        key: "usage:/data",
      },
    ]);
  });

  it("GIVEN 3.3 of 3.6 TB (91.7%) THEN critical only; exactly 80.0% is not above 80", () => {
    expect(decide(usage(3.3, 0.3)).map((a) => [a.severity, a.value, a.threshold])).toEqual([["critical", 91.7, 90]]);
    expect(decide(usage(2.88, 0.72))).toEqual([]); // 80.0% exactly
  });

  it("GIVEN iowait as floats THEN they are compared as numbers (9.75 is below 20; 20.01 is above; 50.5 critical)", () => {
    // the plan's `[ $(iostat ...) -gt 80 ]` fails on "9.75" (integer expected) and on several values at once
    expect(decide({ iowait: { percent: 9.75 } })).toEqual([]);
    expect(decide({ iowait: { percent: 20.01 } }).map((a) => [a.severity, a.what, a.where, a.value, a.threshold, a.message])).toEqual([
      ["warning", "CPU iowait", "sark", 20.01, 20, "CPU iowait on sark: 20.0% over 1s, threshold 20%"],
    ]);
    expect(decide({ iowait: { percent: 50.5 } })[0]!.severity).toBe("critical");
  });

  it("GIVEN a probe at 40,000 IOPS against a baseline of 85,937 THEN warning (threshold 42,969); 45,000 is fine", () => {
    const iops = (v: number) => ({ iops: [{ dir: "/data", baselineFile: "/b.json", baseline: 85937.063, iops: v }] });
    expect(decide(iops(40000))).toEqual([
      {
        severity: "warning",
        what: "IOPS",
        where: "/data",
        value: 40000,
        threshold: 42969,
        message: "random-read IOPS in /data on sark: 40000, below 50% of the baseline 85937 (threshold 42969)",
        key: "iops:/data",
      },
    ]);
    expect(decide(iops(45000))).toEqual([]);
  });

  it("GIVEN no baseline yet THEN an info line and no IOPS verdict", () => {
    const a = decide({ iops: [{ dir: "/data", baselineFile: "/var/lib/dgx-storage/fio/data.json", baseline: null, iops: null }] });
    expect(a.map((x) => [x.severity, x.message])).toEqual([
      ["info", "IOPS check in /data on sark skipped: no baseline yet (/var/lib/dgx-storage/fio/data.json)"],
    ]);
  });

  it("GIVEN container states THEN exited/restarting/unhealthy/missing are critical, paused a warning, starting info, healthy nothing", () => {
    const a = decide({
      containers: [
        { name: "a", status: "running", health: "healthy" },
        { name: "b", status: "running", health: null },
        { name: "c", status: "exited", health: null, exitCode: 137, restartCount: 0 },
        { name: "d", status: "restarting", health: null, restartCount: 12 },
        { name: "e", status: "running", health: "unhealthy" },
        { name: "f", missing: true },
        { name: "g", status: "paused" },
        { name: "h", status: "running", health: "starting" },
      ],
    });
    expect(a.map((x) => [x.severity, x.where, x.value, x.threshold])).toEqual([
      ["critical", "c", "exited", "running"],
      ["critical", "d", "restarting", "running"],
      ["critical", "e", "unhealthy", "healthy"],
      ["critical", "f", "missing", "running"],
      ["warning", "g", "paused", "running"],
      ["info", "h", "starting", "healthy"],
    ]);
    expect(a[0]!.message).toBe("container c on sark is exited, exit code 137 (expected running)");
    expect(a[1]!.message).toBe("container d on sark is restarting, 12 restarts (expected running)");
  });

  it("GIVEN a data source that failed THEN a warning names it", () => {
    expect(
      decide({ usage: [{ mount: "/data", error: "df: /data: No such file or directory" }], iowait: { error: "iostat: not found" } }).map((a) => a.message),
    ).toEqual(["cannot read disk usage of /data on sark: df: /data: No such file or directory", "cannot read CPU iowait on sark: iostat: not found"]);
  });
});

// ---- the check, run for real with stub commands and a webhook on loopback --------------------

const IOSTAT = `Linux 6.8.0 (sark) \t11/24/2026 \t_x86_64_\t(128 CPU)

avg-cpu:  %user   %nice %system %iowait  %steal   %idle
           2.10    0.00    0.80    0.45    0.00   96.65

avg-cpu:  %user   %nice %system %iowait  %steal   %idle
           5.00    0.00    3.00   27.50    0.00   64.50

`;

/** A bin directory of stub commands; each reads its canned output from $STUB_DIR. */
function stubs(dir: string): string {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  const put = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  put("df", `printf '%s\\n' "$*" >>"$STUB_DIR/df.args"; cat "$STUB_DIR/df.out"`);
  put(
    "iostat",
    `[[ "$*" == "-c 1 2" ]] || { echo "unexpected iostat $*" >&2; exit 2; }; printf '%s' "$LC_ALL" >"$STUB_DIR/iostat.lc"; cat "$STUB_DIR/iostat.out"`,
  );
  put(
    "docker",
    `name="\${!#}"; if [[ -f "$STUB_DIR/docker.$name" ]]; then cat "$STUB_DIR/docker.$name"; else echo "Error: No such container: $name" >&2; exit 1; fi`,
  );
  put("fio", `printf '%s\\n' "$*" >>"$STUB_DIR/fio.args"; cat "$STUB_DIR/fio.out"`);
  put("logger", `printf '%s\\n' "$*" >>"$STUB_DIR/journal"`);
  return bin;
}

function df(usedBytes: number, availBytes: number): string {
  return `Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/nvme0n1p2 ${usedBytes + availBytes} ${usedBytes} ${availBytes} 50% /\n`;
}

let server: http.Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/** A webhook receiver on 127.0.0.1 that records every POST. */
async function webhook(): Promise<{ url: string; posts: { headers: http.IncomingHttpHeaders; body: string }[] }> {
  const posts: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      posts.push({ headers: req.headers, body });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/dgx`, posts };
}

/** Runs the check asynchronously (the webhook server lives in this process). */
function check(root: string, stubDir: string, bin: string, extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn("bash", [SCRIPT, "check", CONFIG], {
      env: { ...process.env, ROOT: root, STUB_DIR: stubDir, PATH: `${bin}:${process.env.PATH}`, ...extraEnv },
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function setup(plan: MonitoringPlan, url?: string) {
  const root = makeRoot({ [CONFIG.slice(1)]: JSON.stringify(storageAlertConfig(plan)), ...(url ? { "etc/dgx-storage/alert-webhook": `${url}\n` } : {}) });
  fs.mkdirSync(path.join(root, "data"));
  const stubDir = fs.mkdtempSync(path.join(os.tmpdir(), "alert-stubs-"));
  const bin = stubs(stubDir);
  const journal = () => (fs.existsSync(path.join(stubDir, "journal")) ? fs.readFileSync(path.join(stubDir, "journal"), "utf8") : "");
  return { root, stubDir, bin, journal };
}

describe("storage-alert.sh check (stub data sources, webhook on loopback)", () => {
  it("GIVEN a full disk, high iowait, slow IOPS and a dead container THEN journal lines with priorities and one POST each", async () => {
    const hook = await webhook();
    const { root, stubDir, bin, journal } = setup(PLAN, hook.url);
    fs.writeFileSync(path.join(stubDir, "df.out"), df(3.4 * TB, 0.2 * TB));
    fs.writeFileSync(path.join(stubDir, "iostat.out"), IOSTAT);
    fs.writeFileSync(path.join(stubDir, "docker.chromadb"), `{"Status":"running","Health":{"Status":"healthy"},"ExitCode":0}|0\n`);
    fs.writeFileSync(path.join(stubDir, "docker.vllm"), `{"Status":"exited","ExitCode":1}|3\n`);
    fs.writeFileSync(path.join(stubDir, "fio.out"), JSON.stringify({ jobs: [{ read: { iops: 30000.5 } }] }));
    fs.mkdirSync(path.join(root, "var/lib/dgx-storage/fio"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dgx-storage/fio/data.json"), JSON.stringify({ version: 1, jobs: { "randread-4k-qd32": { iops: 85937.063 } } }));

    const r = await check(root, stubDir, bin);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("storage-alert: 1 mounts, 2 containers, 1 IOPS targets checked: 2 critical, 2 warning, 0 info\n");
    expect(journal().split("\n").filter(Boolean)).toEqual([
      "-t storage-alert -p daemon.crit -- critical: disk usage on sark at /data (filesystem /): 94.4% used (3.40 TB of 3.60 TB), threshold 90%",
      "-t storage-alert -p daemon.crit -- critical: container vllm on sark is exited, exit code 1, 3 restarts (expected running)",
      "-t storage-alert -p daemon.warning -- warning: CPU iowait on sark: 27.5% over 1s, threshold 20%",
      "-t storage-alert -p daemon.warning -- warning: random-read IOPS in /data on sark: 30000, below 50% of the baseline 85937 (threshold 42969)",
    ]);
    expect(fs.readFileSync(path.join(stubDir, "df.args"), "utf8")).toBe(`-P -B1 -- ${root}/data\n`);
    expect(fs.readFileSync(path.join(stubDir, "iostat.lc"), "utf8")).toBe("C");
    expect(fs.readFileSync(path.join(stubDir, "fio.args"), "utf8")).toContain(
      `--filename=${root}/data/.dgx-storage-probe --size=16M --rw=randread --bs=4k --iodepth=32 --direct=1`,
    );
    expect(hook.posts.map((p) => [p.headers.title, p.headers.priority, p.body])).toEqual([
      ["storage-alert sark: critical", "5", "critical: disk usage on sark at /data (filesystem /): 94.4% used (3.40 TB of 3.60 TB), threshold 90%"],
      ["storage-alert sark: critical", "5", "critical: container vllm on sark is exited, exit code 1, 3 restarts (expected running)"],
      ["storage-alert sark: warning", "4", "warning: CPU iowait on sark: 27.5% over 1s, threshold 20%"],
      ["storage-alert sark: warning", "4", "warning: random-read IOPS in /data on sark: 30000, below 50% of the baseline 85937 (threshold 42969)"],
    ]);

    // WHEN it runs again with the same state THEN the journal gets them again, the webhook does not,
    // and the fio probe is not repeated within the hour
    const again = await check(root, stubDir, bin);
    expect(again.code).toBe(0);
    expect(journal().split("\n").filter(Boolean)).toHaveLength(8);
    expect(hook.posts).toHaveLength(4);
    expect(fs.readFileSync(path.join(stubDir, "fio.args"), "utf8").split("\n").filter(Boolean)).toHaveLength(1);

    // WHEN the disk is cleaned up and vllm runs again THEN those two are sent once as resolved
    fs.writeFileSync(path.join(stubDir, "df.out"), df(1.9 * TB, 1.7 * TB));
    fs.writeFileSync(path.join(stubDir, "docker.vllm"), `{"Status":"running","ExitCode":0}|3\n`);
    await check(root, stubDir, bin);
    expect(hook.posts.slice(4).map((p) => [p.headers.priority, p.body])).toEqual([
      ["3", "resolved: container vllm on sark is exited, exit code 1, 3 restarts (expected running)"],
      ["3", "resolved: disk usage on sark at /data (filesystem /): 94.4% used (3.40 TB of 3.60 TB), threshold 90%"],
    ]);
    await check(root, stubDir, bin);
    expect(hook.posts).toHaveLength(6);
  });

  it("GIVEN metrics on (textfileDir, webhookFile null) THEN the measurements go to dgx_storage.prom (promtool-clean, no timestamps) and nothing is POSTed, though a webhook file exists", async () => {
    const hook = await webhook();
    const plan: MonitoringPlan = { ...PLAN, webhookFile: null, textfileDir: "/var/lib/prometheus/node-exporter" };
    const { root, stubDir, bin, journal } = setup(plan, hook.url);
    fs.mkdirSync(path.join(root, "var/lib/prometheus/node-exporter"), { recursive: true });
    fs.writeFileSync(path.join(stubDir, "df.out"), df(3.4 * TB, 0.2 * TB));
    fs.writeFileSync(path.join(stubDir, "iostat.out"), IOSTAT);
    fs.writeFileSync(path.join(stubDir, "docker.chromadb"), `{"Status":"running","Health":{"Status":"unhealthy"},"ExitCode":0}|2\n`);
    fs.writeFileSync(path.join(stubDir, "fio.out"), JSON.stringify({ jobs: [{ read: { iops: 30000.5 } }] }));
    fs.mkdirSync(path.join(root, "var/lib/dgx-storage/fio"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dgx-storage/fio/data.json"), JSON.stringify({ version: 1, jobs: { "randread-4k-qd32": { iops: 85937.063 } } }));
    const r = await check(root, stubDir, bin);
    expect(r.code).toBe(0);
    const text = fs.readFileSync(path.join(root, "var/lib/prometheus/node-exporter/dgx_storage.prom"), "utf8");
    const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
    expect(samples).toEqual([
      'dgx_container_restarting{container="chromadb"} 0',
      'dgx_container_restarting{container="vllm"} 0',
      'dgx_container_restarts_total{container="chromadb"} 2',
      'dgx_container_running{container="chromadb"} 1',
      'dgx_container_running{container="vllm"} 0',
      'dgx_container_unhealthy{container="chromadb"} 1',
      'dgx_container_unhealthy{container="vllm"} 0',
      'dgx_storage_avail_bytes{mount="/data"} 200000000000',
      'dgx_storage_iops_baseline{dir="/data"} 85937.063',
      'dgx_storage_iops_probe{dir="/data"} 30000.5',
      "dgx_storage_iowait_percent 27.5",
      'dgx_storage_used_bytes{mount="/data"} 3400000000000',
      'dgx_storage_used_percent{mount="/data"} 94.444',
    ]);
    const lint = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    expect(hook.posts).toEqual([]);
    expect(journal()).toContain("daemon.crit -- critical: disk usage on sark at /data");
  });

  it("GIVEN everything fine, no baseline and no webhook file THEN only the info line, nothing sent", async () => {
    const { root, stubDir, bin, journal } = setup(PLAN);
    fs.writeFileSync(path.join(stubDir, "df.out"), df(1.9 * TB, 1.7 * TB));
    fs.writeFileSync(path.join(stubDir, "iostat.out"), IOSTAT.replace("27.50", " 0.20"));
    fs.writeFileSync(path.join(stubDir, "docker.chromadb"), `{"Status":"running","Health":{"Status":"healthy"}}|0\n`);
    fs.writeFileSync(path.join(stubDir, "docker.vllm"), `{"Status":"running"}|0\n`);
    const r = await check(root, stubDir, bin);
    expect(r.code).toBe(0);
    expect(journal()).toBe(
      "-t storage-alert -p daemon.info -- info: IOPS check in /data on sark skipped: no baseline yet (/var/lib/dgx-storage/fio/data.json)\n",
    );
    expect(fs.existsSync(path.join(stubDir, "fio.args"))).toBe(false);
  });

  it("GIVEN an unreachable webhook THEN the alert still reaches the journal, with the delivery failure, and is retried next run", async () => {
    const { root, stubDir, bin, journal } = setup({ ...PLAN, containers: [], iops: { targets: [] } }, "http://127.0.0.1:9/");
    fs.writeFileSync(path.join(stubDir, "df.out"), df(3.4 * TB, 0.2 * TB));
    fs.writeFileSync(path.join(stubDir, "iostat.out"), IOSTAT.replace("27.50", " 0.20"));
    const r = await check(root, stubDir, bin);
    expect(r.code).toBe(0);
    expect(journal()).toContain("daemon.crit -- critical: disk usage on sark at /data");
    expect(journal()).toMatch(/daemon\.warning -- warning: webhook delivery failed \(URLError: .*refused.*\); will retry next run/);
    const state = JSON.parse(fs.readFileSync(path.join(root, "var/lib/dgx-storage/storage-alert.state.json"), "utf8")) as { alerts: object };
    expect(state.alerts).toEqual({});
  });

  it("DRY_RUN=1 logs what it would send and keeps no state", async () => {
    const { root, stubDir, bin, journal } = setup({ ...PLAN, containers: [], iops: { targets: [] } });
    fs.writeFileSync(path.join(stubDir, "df.out"), df(3.0 * TB, 0.6 * TB));
    fs.writeFileSync(path.join(stubDir, "iostat.out"), IOSTAT.replace("27.50", " 0.20"));
    const r = await check(root, stubDir, bin, { DRY_RUN: "1" });
    expect(r.stdout).toContain("storage-alert: dry run: would log (daemon.warning) warning: disk usage on sark at /data (filesystem /): 83.3% used");
    expect(journal()).toBe("");
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage"))).toBe(false);
  });

  it("smartd mode turns smartd's variables into a critical alert", async () => {
    const hook = await webhook();
    const { root, stubDir, bin, journal } = setup(PLAN, hook.url);
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      const p = spawn("bash", [SCRIPT, "smartd", CONFIG], {
        env: {
          ...process.env,
          ROOT: root,
          STUB_DIR: stubDir,
          PATH: `${bin}:${process.env.PATH}`,
          SMARTD_FAILTYPE: "Temperature",
          SMARTD_DEVICE: "/dev/nvme0",
          SMARTD_DEVICESTRING: "/dev/nvme0",
          SMARTD_MESSAGE: "Device: /dev/nvme0, Temperature 72 Celsius reached critical limit of 71 Celsius (Min/Max 35/72)",
        },
      });
      let out = "";
      p.stdout.on("data", (c: Buffer) => (out += c.toString()));
      p.stderr.on("data", (c: Buffer) => (out += c.toString()));
      p.on("close", (code) => resolve({ code: code ?? -1, out }));
    });
    expect(r).toEqual({ code: 0, out: "" }); // smartd treats output from its hook as a problem
    const line =
      "critical: SMART Temperature on sark at /dev/nvme0: Device: /dev/nvme0, Temperature 72 Celsius reached critical limit of 71 Celsius (Min/Max 35/72)";
    expect(journal()).toBe(`-t storage-alert -p daemon.crit -- ${line}\n`);
    expect(hook.posts.map((p) => p.body)).toEqual([line]);
  });

  it("refuses bad usage", () => {
    expect(runScript("storage-alert", ["check"]).stderr).toContain("usage: storage-alert.sh check|smartd|decide <config.json>");
    expect(runScript("storage-alert", ["check", "/etc/nope.json"], { ROOT: makeRoot() }).stderr).toContain("config file /etc/nope.json does not exist");
  });
});

describe("the monitoring set as install-units.sh installs it", () => {
  it("GIVEN the set applied to a temporary root THEN the installed (bundled) script runs on the installed config", () => {
    const root = makeRoot();
    const r = runScript("install-units", ["apply", "monitoring", renderUnitSet(monitoringUnitSet(PLAN))], { ROOT: root });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("would enable --now dgx-storage-alert.timer");
    expect(r.stdout).toContain("would enable --now fstrim.timer");
    const installed = path.join(root, STORAGE_ALERT_SCRIPT);
    expect(fs.statSync(installed).mode & 0o777).toBe(0o755);
    const d = spawnSync(installed, ["decide", CONFIG], {
      input: JSON.stringify({ iowait: { percent: 60 } }),
      encoding: "utf8",
      env: { ...process.env, ROOT: root },
    });
    expect(d.stderr).toBe("");
    expect((JSON.parse(d.stdout) as Alert[]).map((a) => a.severity)).toEqual(["critical"]);
  });
});

// ---- a real filesystem filled past the threshold --------------------------------------------

describeWith({ tools: ["losetup", "mkfs.ext4", "iostat", "df"], root: true }, "storage-alert.sh on a real loop-mounted filesystem (root only)", () => {
  it("GIVEN a 64 MiB ext4 (52.7 MB usable) filled to 30 MiB THEN silence; to 44 MiB (87%) THEN a warning in the journal", async () => {
    const { root, stubDir, bin, journal } = setup({ host: "test", mounts: ["/data"], iowait: { warningPercent: 99, criticalPercent: 100, sampleSeconds: 1 } });
    const img = path.join(stubDir, "fs.img");
    // real df and iostat: only logger is a stub (to read the journal lines back)
    for (const name of ["df", "iostat", "docker", "fio"]) fs.rmSync(path.join(bin, name));
    const sh = (cmd: string) => {
      const r = spawnSync("bash", ["-c", cmd], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };
    sh(`truncate -s 64M ${img} && mkfs.ext4 -q -F ${img} && mount -o loop ${img} ${root}/data`);
    try {
      sh(`fallocate -l 30M ${root}/data/fill`);
      const below = await check(root, stubDir, bin);
      expect(below.stderr).toBe("");
      expect(journal()).toBe("");
      sh(`fallocate -l 44M ${root}/data/fill`);
      await check(root, stubDir, bin);
      expect(journal()).toMatch(
        /^-t storage-alert -p daemon\.warning -- warning: disk usage on test at \/data: 8\d\.\d% used \(\d\d\.\d\d MB of \d\d\.\d\d MB\), threshold 80%\n$/,
      );
    } finally {
      sh(`umount ${root}/data`);
    }
  });
});
