/**
 * The Monitoring component of both stacks under mocks: exact names, command strings,
 * triggers, dependencies, the webhook secret only on stdin, and the stack outputs. Plus the config
 * door's rules for the monitoring, maintenance and capacity sections.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadStackFile, parseHostConfig } from "../../components/config";
import { baselineFile, monitoringPlan, pathSlug, type BaselineOutput, type LiveCapacity, type PlannedCapacity } from "../../components/plan/monitoring";
import { scriptCommand, sha256, shq } from "../../components/render/command";
import { parseFioJson } from "../../components/render/fio";
import { monitoringUnitSet, SMARTD_ALERT_HOOK } from "../../components/render/monitoring";
import { renderSmartdConf } from "../../components/render/smartd";
import { renderUnitSet } from "../../components/render/systemd";
import { validConfig, withValue } from "../fixtures";
import { expectConfigProblem, pinnedStackConfig, REPO, runStack, SENTINEL_SSH_KEY, waitsFor, type StackRun } from "../harness";

const COMMAND = "command:remote:Command";
const SENTINEL_WEBHOOK = "https://ntfy.example/dgx-sentinel-webhook-7c2e";
const FIO_STDOUT =
  JSON.stringify(
    parseFioJson(fs.readFileSync(path.join(__dirname, "..", "fixtures", "fio-baseline-1s.json"), "utf8"), {
      dir: "/data",
      size: "8G",
      runtimeSeconds: 30,
      measuredAt: "2026-11-24T12:00:00Z",
    }),
  ) + "\n";
const TB = 1e12;
const DF_STDOUT = `# measured 2026-11-24\nFilesystem 1-blocks Used Available Capacity Mounted-on\n/dev/md0 ${3.7 * TB} ${1.9 * TB} ${1.8 * TB} 52% /data\n`;

function run(stack: "sark" | "clu", opts: { webhook?: string; preview?: boolean } = {}): Promise<StackRun> {
  return runStack({
    stack,
    config: pinnedStackConfig(stack),
    secrets: { sshPrivateKey: SENTINEL_SSH_KEY, ...(opts.webhook !== undefined ? { alertWebhook: opts.webhook } : {}) },
    preview: opts.preview ?? true,
    commandStdout: (name) => (name.includes("-monitoring-fio-") ? FIO_STDOUT : name.endsWith("-monitoring-df") ? DF_STDOUT : undefined),
  });
}

const tail = (script: Parameters<typeof scriptCommand>[0], args: string[]) => scriptCommand(script, args, { sudo: true });

describe.each(["sark", "clu"] as const)("%s: the Monitoring component", (stack) => {
  const config = loadStackFile(path.join(REPO, `Pulumi.${stack}.yaml`));
  const mon = config.monitoring!;
  const mounts = stack === "sark" ? ["/data", "/mnt/borg-backup"] : ["/data"];

  it("declares exactly its children, named after it, in one component", async () => {
    const r = await run(stack);
    const comp = r.byName(`${stack}-monitoring`);
    expect(comp.type).toBe("dgx-storage:index:Monitoring");
    expect(r.registrations.find((x) => x.urn === comp.parent)?.name).toBe(stack);
    // (registration order follows dependencies: compared sorted)
    const children = r.registrations.filter((x) => x.parent === comp.urn).map((x) => `${x.type} ${x.name}`);
    expect(children.sort()).toEqual(["units", "fstrim", "smartd", "fio-data", "df"].map((role) => `${COMMAND} ${stack}-monitoring-${role}`).sort());
  });

  it("has the host install smartmontools, sysstat and fio with apt-ensure (no delete: packages stay), before any of its commands", async () => {
    const r = await run(stack);
    const c = r.byName(`${stack}-packages`);
    // nftables: the firewall of the stack's network section
    expect(c.inputs.create).toBe(tail("apt-ensure", ["python3", "rsync", "inotify-tools", "borgbackup", "smartmontools", "sysstat", "fio", "nftables"]));
    expect(c.inputs.triggers).toEqual(["python3 rsync inotify-tools borgbackup smartmontools sysstat fio nftables"]);
    expect(c.inputs).not.toHaveProperty("delete");
    expect(c.dependsOn).toEqual([r.byName(`${stack}-preflight`).urn]);
    for (const role of ["units", "fstrim", "smartd", "fio-data", "df"])
      expect(waitsFor(r, `${stack}-monitoring-${role}`, `${stack}-packages`), role).toBe(true);
  });

  it("installs the monitoring unit set (alert check, smartd hook, fstrim.timer) after the packages and every service's switch; delete removes it", async () => {
    const r = await run(stack);
    const manifest = renderUnitSet(
      monitoringUnitSet(
        monitoringPlan(
          stack,
          mon,
          Object.values(config.services).map((s) => s.containerName),
          true,
        ),
      ),
    );
    const c = r.byName(`${stack}-monitoring-units`);
    expect(c.inputs.create).toBe(tail("install-units", ["apply", "monitoring", manifest]));
    expect(String(c.inputs.create).endsWith(` install-units apply monitoring ${shq(manifest)}`)).toBe(true);
    expect(c.inputs.delete).toBe(tail("install-units", ["remove", "monitoring"]));
    expect(c.inputs.triggers).toEqual([sha256(manifest)]);
    expect(waitsFor(r, c.name, `${stack}-packages`)).toBe(true);
    for (const svc of Object.keys(config.services)) expect(waitsFor(r, c.name, `${stack}-${svc}-switch`), svc).toBe(true);
    const set = JSON.parse(manifest) as { files: { path: string; content: string }[]; enable: string[] };
    expect(set.enable).toEqual(["dgx-storage-alert.timer", "fstrim.timer"]);
    const alertConfig = JSON.parse(set.files.find((f) => f.path === "/etc/dgx-storage/storage-alert.json")!.content) as Record<string, unknown>;
    expect(alertConfig).toMatchObject({
      host: stack,
      mounts,
      usage: { warning: 80, critical: 90 },
      iops: { targets: [{ dir: "/data", baselineFile: "/var/lib/dgx-storage/fio/data.json" }], minFraction: 0.5 },
      containers: stack === "sark" ? ["chromadb"] : ["memory-service", "vllm"],
      webhookFile: "/etc/dgx-storage/alert-webhook",
    });
  });

  it("trims the data mount once, triggered by the mount list", async () => {
    const c = (await run(stack)).byName(`${stack}-monitoring-fstrim`);
    expect(c.inputs.create).toBe(tail("fstrim-once", ["/data"]));
    expect(c.inputs.triggers).toEqual(["/data"]);
    expect(c.inputs).not.toHaveProperty("delete");
  });

  it("configures smartd for the four NVMe devices after the unit set (its hook); delete restores the distribution's file", async () => {
    const r = await run(stack);
    const conf = renderSmartdConf({
      devices: ["/dev/nvme0n1", "/dev/nvme1n1", "/dev/nvme2n1", "/dev/nvme3n1"].map((p) => ({ path: p })),
      alertExec: SMARTD_ALERT_HOOK,
      temperatureCriticalC: 70,
    });
    expect(conf).toContain("/dev/nvme3n1 -d nvme -H -l error -W 0,0,71 ");
    const c = r.byName(`${stack}-monitoring-smartd`);
    expect(c.inputs.create).toBe(tail("smartd-config", ["apply", "/etc/smartd.conf", conf]));
    expect(c.inputs.delete).toBe(tail("smartd-config", ["remove", "/etc/smartd.conf"]));
    expect(c.inputs.triggers).toEqual([sha256(conf)]);
    expect(c.dependsOn).toEqual(expect.arrayContaining([r.byName(`${stack}-packages`).urn, r.byName(`${stack}-monitoring-units`).urn]));
  });

  it("runs fio on each baseline path; the trigger is path, size, runtime and the config's trigger string, identical on a second run", async () => {
    const first = await run(stack);
    const c = first.byName(`${stack}-monitoring-fio-data`);
    expect(c.inputs.create).toBe(tail("fio-baseline", ["/data", "8G", "30", "/var/lib/dgx-storage/fio/data.json"]));
    expect(c.inputs.triggers).toEqual(["/data", "8G", "30", "1"]);
    expect(c.inputs).not.toHaveProperty("delete");
    expect(waitsFor(first, c.name, `${stack}-packages`)).toBe(true);
    const second = await run(stack);
    expect(second.byName(`${stack}-monitoring-fio-data`).inputs.triggers).toEqual(c.inputs.triggers);
    // a changed trigger string in config is the way to measure again
    const bumped = await runStack({
      stack,
      config: withValue(pinnedStackConfig(stack), "monitoring.baseline.trigger", "2"),
      secrets: { sshPrivateKey: SENTINEL_SSH_KEY },
    });
    expect(bumped.byName(`${stack}-monitoring-fio-data`).inputs.triggers).toEqual(["/data", "8G", "30", "2"]);
  });

  it("reads df of the data mounts read-only, triggered by the mount list", async () => {
    const c = (await run(stack)).byName(`${stack}-monitoring-df`);
    expect(c.inputs.create).toBe(tail("df-read", mounts));
    expect(c.inputs.triggers).toEqual([mounts.join(" ")]);
    expect(c.inputs).not.toHaveProperty("delete");
  });

  it("has no webhook command without the secret", async () => {
    const r = await run(stack);
    expect(r.registrations.some((x) => x.name.endsWith("-webhook"))).toBe(false);
  });
});

describe("the alert webhook secret", () => {
  it("GIVEN alertWebhook as a secret THEN the host writes it from stdin only, logging none, outputs secret, before the unit set", async () => {
    const r = await run("sark", { webhook: SENTINEL_WEBHOOK });
    const c = r.byName("sark-alert-webhook");
    expect(c.parent).toBe(r.byName("sark").urn);
    expect(c.inputs.create).toBe(tail("secret-file", ["apply", "/etc/dgx-storage/alert-webhook"]));
    expect(c.inputs.delete).toBe(tail("secret-file", ["remove", "/etc/dgx-storage/alert-webhook"]));
    expect(c.inputs.stdin).toBe(`${SENTINEL_WEBHOOK}\n`);
    expect(c.secretPaths).toContain("stdin");
    expect(c.inputs.logging).toBe("none");
    expect(c.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(c.inputs.triggers).toEqual(["/etc/dgx-storage/alert-webhook", sha256(`${SENTINEL_WEBHOOK}\n`)]);
    expect(c.secretPaths).toContain("triggers[1]");
    for (const x of r.registrations) expect(JSON.stringify(x.plainInputs)).not.toContain("sentinel-webhook");
    const units = r.byName("sark-monitoring-units");
    expect(units.dependsOn).toEqual(expect.arrayContaining([r.byName("sark-packages").urn, c.urn]));
    expect(String(units.inputs.create)).not.toContain("sentinel-webhook");
  });

  it("GIVEN a malformed webhook THEN the door lists it without showing the value", async () => {
    const error = await run("sark", { webhook: "ftp://x y" }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/alertWebhook: \(secret, not shown\) is invalid; expected an http\(s\) URL on one line/);
    expect(error?.message).not.toContain("ftp://");
  });

  it("is optional: a stack without it is complete; sshPrivateKey is still required", () => {
    expect(() => parseHostConfig(validConfig(), { source: "f", secretsPresent: ["sshPrivateKey"] })).not.toThrow();
    expect(() => parseHostConfig(validConfig(), { source: "f", secretsPresent: ["alertWebhook"] })).toThrow(/sshPrivateKey: \(missing\) secret/);
    expect(() => parseHostConfig({ ...validConfig(), alertWebhook: "https://x" }, { source: "f" })).toThrow(/alertWebhook: must be set as a secret/);
  });
});

describe("stack outputs", () => {
  it("GIVEN a preview THEN the baseline is not measured yet and the projections from config are there", async () => {
    const r = await run("sark");
    const planned = r.exports.capacityPlanned as PlannedCapacity[];
    expect(planned.map((p) => [p.name, p.mount, p.projection.percentNow])).toEqual([
      ["primary", "/data", 51.35],
      ["backup", "/mnt/borg-backup", 27.78],
    ]);
    // the worked example in README "Disks" (compound, from 2026-01-01)
    expect(planned[0]!.projection.years.map((y) => y.percent)).toEqual([61.62, 73.95, 88.74]);
    expect(planned[0]!.projection.thresholds.map((t) => [t.percent, t.date, t.action])).toEqual([
      [60, "2026-11-09", "Add additional container storage volumes"],
      [80, "2028-06-08", "Implement data compression"],
      [90, "2029-01-30", "Archive cold data to external storage"],
    ]);
  });

  it("GIVEN pulumi up THEN fio's summary is exported beside the plan's targets, met or not, and df is projected", async () => {
    const r = await run("sark", { preview: false });
    const [b] = r.exports.performanceBaseline as BaselineOutput[];
    expect(b).toMatchObject({ path: "/data", measured: true, size: "8G", runtimeSeconds: 30, measuredAt: "2026-11-24T12:00:00Z" });
    expect(b!.targets!.map((t) => [t.name, t.target, t.met])).toEqual([
      ["iops", ">50,000 IOPS", true],
      ["readThroughput", ">1 GB/s read", true],
      ["writeThroughput", ">500 MB/s write", true],
      ["averageLatency", "<5 ms average latency", true],
    ]);
    expect(b!.allTargetsMet).toBe(true);
    expect(Math.round(b!.jobs!["randread-4k-qd32"]!.iops)).toBe(85937);
    const [live] = r.exports.capacityLive as LiveCapacity[];
    expect(live).toMatchObject({ mount: "/data", measuredAt: "2026-11-24", usedBytes: 1.9 * TB, availBytes: 1.8 * TB });
    // used / (used + available), as df's Use% and the alert
    expect(live!.projection!.percentNow).toBe(51.35);
    expect(live!.projection!.start).toBe("2026-11-24");
  });

  it("GIVEN no monitoring and no maintenance section THEN there is no Monitoring component and the outputs are absent", async () => {
    const config = { ...pinnedStackConfig("sark") };
    delete config.monitoring;
    delete config.maintenance;
    const r = await runStack({ stack: "sark", config });
    expect(r.registrations.some((x) => x.type === "dgx-storage:index:Monitoring")).toBe(false);
    expect(r.exports.performanceBaseline).toBeUndefined();
  });

  it("GIVEN only maintenance THEN the unit set enables fstrim.timer alone and the mounts are trimmed", async () => {
    const config = { ...pinnedStackConfig("sark") };
    delete config.monitoring;
    const r = await runStack({ stack: "sark", config });
    const children = r.registrations.filter((x) => x.parent === r.byName("sark-monitoring").urn).map((x) => x.name);
    expect(children.sort()).toEqual(["sark-monitoring-fstrim", "sark-monitoring-units"]);
    expect(r.byName("sark-monitoring-units").inputs.create).toBe(
      tail("install-units", ["apply", "monitoring", renderUnitSet({ files: [], enable: ["fstrim.timer"] })]),
    );
  });
});

describe("names and paths", () => {
  it("derives a resource and file name from a data path", () => {
    expect(pathSlug("/data")).toBe("data");
    expect(pathSlug("/data/enhanced")).toBe("data-enhanced");
    expect(pathSlug("/")).toBe("root");
    expect(baselineFile("/var/tmp")).toBe("/var/lib/dgx-storage/fio/var-tmp.json");
  });
});

describe("config door: monitoring, maintenance, capacity", () => {
  const base = () => ({
    ...validConfig(),
    maintenance: { fstrim: { mounts: ["/data"] } },
    monitoring: { mounts: ["/data"], nvmeDevices: ["/dev/nvme0n1"], baseline: { paths: ["/data"] } },
  });

  it("fills the documented defaults", () => {
    const c = parseHostConfig(base(), { source: "f" });
    expect(c.maintenance).toEqual({ fstrim: { mounts: ["/data"], timer: true } });
    expect(c.monitoring).toEqual({
      mounts: ["/data"],
      nvmeDevices: ["/dev/nvme0n1"],
      allowMissingDevices: false,
      temperatureCriticalC: 70,
      usage: { warning: 80, critical: 90 },
      iowait: { warning: 20, critical: 50, sampleSeconds: 5 },
      iopsDropPercent: 50,
      intervalMinutes: 5,
      repeatMinutes: 60,
      baseline: { paths: ["/data"], size: "4G", runtimeSeconds: 30, trigger: "1" },
    });
    expect(c.capacity?.model).toBe("compound");
    expect(c.capacity?.asOf).toBeUndefined();
  });

  it.each<[string, (c: Record<string, unknown>) => Record<string, unknown>, string, string]>([
    ["relative fstrim mount", (c) => withValue(c, "maintenance.fstrim.mounts", ["data"]), "maintenance.fstrim.mounts.0", "absolute path"],
    ["fstrim mount twice", (c) => withValue(c, "maintenance.fstrim.mounts", ["/data", "/data"]), "maintenance.fstrim.mounts.1", "a mount listed once"],
    ["relative baseline path", (c) => withValue(c, "monitoring.baseline.paths", ["data"]), "monitoring.baseline.paths.0", "absolute path"],
    ["bad fio size", (c) => withValue(c, "monitoring.baseline.size", "4 GB"), "monitoring.baseline.size", "fio's syntax"],
    ["warning above critical", (c) => withValue(c, "monitoring.usage", { warning: 95, critical: 90 }), "monitoring.usage.warning", "warning at most critical"],
    ["usage above 100", (c) => withValue(c, "monitoring.usage", { warning: 80, critical: 120 }), "monitoring.usage.critical", "at most 100"],
    ["device not under /dev", (c) => withValue(c, "monitoring.nvmeDevices", ["nvme0n1"]), "monitoring.nvmeDevices.0", "a device path"],
    ["device twice", (c) => withValue(c, "monitoring.nvmeDevices", ["/dev/nvme0n1", "/dev/nvme0n1"]), "monitoring.nvmeDevices.1", "a device listed once"],
    ["no data mount", (c) => withValue(c, "monitoring.mounts", []), "monitoring.mounts", "at least one data mount"],
    ["IOPS drop of 100%", (c) => withValue(c, "monitoring.iopsDropPercent", 100), "monitoring.iopsDropPercent", "from 1 to 99"],
    ["capacity disk not watched", (c) => withValue(c, "monitoring.mounts", ["/srv"]), "capacity.disks.0.mount", "a mount of monitoring.mounts (/srv)"],
    ["unknown growth model", (c) => withValue(c, "capacity.model", "exponential"), "capacity.model", '"compound", "linear", "points"'],
    ["impossible asOf date", (c) => withValue(c, "capacity.asOf", "2026-02-30"), "capacity.asOf", "a real calendar date"],
    ["typo in a key", (c) => withValue(c, "monitoring.nvmeDevice", ["/dev/nvme0n1"]), "monitoring.nvmeDevice", "unknown key"],
  ])("rejects %s", (_label, mutate, key, expected) => {
    expectConfigProblem(mutate(base()), key, expected);
  });
});
