/**
 * Monitoring on the test hosts: packages, fstrim (once, and util-linux's timer), smartd's config,
 * the storage-alert timer firing on a small loop-mounted filesystem filled past 80%, the fio
 * baseline, and a second round that changes nothing.
 *
 * Each stack is applied twice by the e2e engine (engine.ts), as converge.e2e.test.ts does (test
 * stacks test/e2e/Pulumi.test-*.yaml); the second apply runs nothing. sark also gets the alert webhook secret, pointing at a receiver
 * on the host itself, so the secret-file command and the POST are exercised.
 * The hosts have no NVMe and run in containers: smartd's syntax check only (the unit does not
 * start: ConditionVirtualization=no).
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baselineOutput, baselineFile, SMARTD_CONF } from "../../components/plan/monitoring";
import { scriptCommand } from "../../components/render/command";
import { SMARTD_ALERT_HOOK } from "../../components/render/monitoring";
import { renderSmartdConf } from "../../components/render/smartd";
import type { ApplyResult, Engine } from "./engine";
import {
  addOperator,
  engineFor,
  installedFiles,
  mustRoot,
  ssh,
  startHosts,
  startWebhookReceiver,
  stopHosts,
  type HostName,
  type TestHosts,
  testStackConfig,
  WEBHOOK_RECEIVER_URL,
  type WebhookReceiver,
} from "./hosts";

const WEBHOOK = `${WEBHOOK_RECEIVER_URL}/alerts/e2e-secret-token`;
const ALERT_MOUNT = "/mnt/alert-test";
const FIO_PATH = "/var/tmp";

let hosts: TestHosts;
let key: string;
let receiver: WebhookReceiver;
let engine: Engine;
const rounds: Record<HostName, ApplyResult>[] = [];
const started = Date.now();

const apply = (name: HostName) =>
  engine.up({
    stack: `test-${name}`,
    config: testStackConfig(hosts, name),
    secrets: { sshPrivateKey: key, ...(name === "sark" ? { alertWebhook: WEBHOOK } : {}) },
  });

async function converge(): Promise<void> {
  const sark = await apply("sark");
  const clu = await apply("clu");
  rounds.push({ sark, clu });
}

/** A command's output after an apply (from the engine's state: nothing new when the apply did not run it). */
const result = (round: number, name: string) => {
  const r = rounds[round]![name.startsWith("sark-") ? "sark" : "clu"];
  return { stdout: r.stdout(name), stderr: r.stderr(name) };
};

/** Every file under the directories the monitoring commands install to (content, mode, owner, mtime), and the timers enabled. */
const installed = (name: HostName) =>
  installedFiles(hosts, name, ["etc/dgx-storage", "etc/systemd/system", "usr/local/lib/dgx-storage", "etc/smartd.conf"]) +
  mustRoot(hosts, name, "systemctl is-enabled dgx-storage-alert.timer fstrim.timer");

/** Runs the alert check now (the oneshot service the timer starts) and returns the journal lines it wrote. */
function runAlertCheck(): string {
  const since = mustRoot(hosts, "sark", "sleep 1; date +%s").trim();
  mustRoot(hosts, "sark", "systemctl start dgx-storage-alert.service");
  return mustRoot(hosts, "sark", `journalctl -t storage-alert -o cat --no-pager --since @${since}`);
}

beforeAll(() => {
  hosts = startHosts();
  key = fs.readFileSync(hosts.privateKeyPath, "utf8");
  engine = engineFor(hosts);
  addOperator(hosts, "sark");
  addOperator(hosts, "clu");
  // the usage alert's filesystem: a small ext4 on a loop device (monitoring.mounts of test-sark)
  mustRoot(
    hosts,
    "sark",
    `set -e; mkdir -p ${ALERT_MOUNT}; truncate -s 64M /var/tmp/alert-test.img; mkfs.ext4 -q -F /var/tmp/alert-test.img; mount -o loop /var/tmp/alert-test.img ${ALERT_MOUNT}`,
  );
  // the webhook receiver: appends each POST body to a file (what ntfy or healthchecks would get)
  receiver = startWebhookReceiver(hosts, "sark");
});

afterAll(() => {
  // also when a test failed: no test host outlives the suite (stop-hosts also restores vm.* sysctls)
  stopHosts();
  console.log(`monitoring e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("monitoring on the test hosts", () => {
  it("round 1: both stacks apply; the monitoring commands after the packages, smartd after the units", async () => {
    const t0 = Date.now();
    await converge();
    console.log(`round 1: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const s = rounds[0]!.sark;
    const before = (a: string, b: string) => expect(s.step(a).end, `${a} before ${b}`).toBeLessThanOrEqual(s.step(b).start);
    before("sark-packages", "sark-monitoring-units");
    before("sark-alert-webhook", "sark-monitoring-units");
    before("sark-monitoring-units", "sark-monitoring-smartd");
    before("sark-packages", "sark-monitoring-fio-var-tmp");
    expect(rounds[0]!.clu.names("create")).toEqual(expect.arrayContaining(["clu-packages", "clu-monitoring-units", "clu-monitoring-df"]));
  });

  it("the host's packages are installed (python3, borgbackup, smartmontools, sysstat, fio), and the check says so", () => {
    for (const name of ["sark", "clu"] as const) {
      expect(mustRoot(hosts, name, "dpkg-query -W -f='${Package} ${Status}\\n' smartmontools sysstat fio | sort")).toBe(
        "fio install ok installed\nsmartmontools install ok installed\nsysstat install ok installed\n",
      );
    }
    expect(result(0, "sark-packages").stdout).toBe("apt-ensure: already installed: python3 borgbackup smartmontools sysstat fio");
  });

  it("fstrim: the one-off command explains a filesystem without discard, trims a real one, and fstrim.timer is enabled", () => {
    expect(result(0, "sark-monitoring-fstrim").stdout).toMatch(
      /^fstrim-once: \/run: not trimmed, its filesystem or device does not support discard \(fstrim: .+\)$/,
    );
    // the same script on the loop-mounted ext4, as the command would run it
    const h = hosts.hosts.sark;
    const r = ssh(
      { address: h.address, port: h.port, user: "maxvamp", hostKey: h.hostKey },
      hosts.privateKeyPath,
      scriptCommand("fstrim-once", [ALERT_MOUNT], { sudo: true }),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^fstrim-once: \/mnt\/alert-test: [\d.]+ [KMG]?i?B \(\d+ bytes\) trimmed/);
    for (const name of ["sark", "clu"] as const) {
      expect(mustRoot(hosts, name, "systemctl is-enabled fstrim.timer dgx-storage-alert.timer")).toBe("enabled\nenabled\n");
    }
  });

  it("smartd's config passed smartd's own syntax check; smartd cannot run in a container (documented)", () => {
    const r = result(0, "sark-monitoring-smartd");
    expect(r.stderr).toContain("the configuration parses, but smartd cannot monitor its devices");
    expect(r.stdout).toContain(`${SMARTD_CONF} changed`);
    expect(r.stdout).toContain("smartd not (re)started: none of the configured devices is present on sark");
    expect(mustRoot(hosts, "sark", `cat ${SMARTD_CONF}`)).toBe(
      renderSmartdConf({ devices: [{ path: "/dev/nvme0n1" }], alertExec: SMARTD_ALERT_HOOK, temperatureCriticalC: 70 }),
    );
    // and the reason smartd would not run here anyway: Debian's unit refuses virtualised hosts
    // (ConditionVirtualization=no, checked when the enabled unit was started at boot)
    expect(
      mustRoot(hosts, "sark", "systemctl show -p ConditionResult --value smartmontools.service; systemd-detect-virt -c || true").trim().split("\n")[0],
    ).toBe("no");
  });

  it("the alert timer is listed with a next run", () => {
    const timers = mustRoot(hosts, "sark", "systemctl list-timers --all --no-pager dgx-storage-alert.timer");
    const line = timers.split("\n").find((l) => l.includes("dgx-storage-alert.timer"))!;
    expect(line).toBeDefined();
    // NEXT is a date, not "-" (a timer with no next elapse)
    expect(line).toMatch(/^\w{3} \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \w+ /);
  });

  it("the webhook URL reached the host only on stdin: a 0600 file with it, never in a command line", () => {
    expect(mustRoot(hosts, "sark", "stat -c '%a %U' /etc/dgx-storage/alert-webhook; cat /etc/dgx-storage/alert-webhook")).toBe(`600 root\n${WEBHOOK}\n`);
    const cmd = rounds[0]!.sark.run.byName("sark-alert-webhook");
    expect(cmd.inputs.create).not.toContain("e2e-secret-token");
    expect(cmd.inputs.stdin).toBe(`${WEBHOOK}\n`);
    expect(cmd.secretPaths).toContain("stdin");
    expect(cmd.inputs.logging).toBe("none");
    expect(mustRoot(hosts, "sark", "journalctl --no-pager -o cat")).not.toContain("e2e-secret-token");
  });

  it("the storage alert stays quiet below 80% and fires above it: journal (tag storage-alert) and webhook", () => {
    const quiet = runAlertCheck();
    expect(quiet).not.toMatch(/disk usage on sark at \/mnt\/alert-test/);
    expect(mustRoot(hosts, "sark", "journalctl -u dgx-storage-alert.service -o cat --no-pager -n 20")).toMatch(
      /2 mounts, 1 containers, 1 IOPS targets checked/,
    );
    // 85% of the space the data can have (used + available, as df's Use%)
    const [used, avail] = mustRoot(hosts, "sark", `df -P -B1 ${ALERT_MOUNT} | tail -1`).trim().split(/\s+/).slice(2, 4).map(Number);
    const fill = Math.ceil(0.85 * (used! + avail!) - used!);
    mustRoot(hosts, "sark", `fallocate -l ${fill} ${ALERT_MOUNT}/fill && sync`);
    const fired = runAlertCheck();
    const line = fired.split("\n").find((l) => l.includes(`disk usage on sark at ${ALERT_MOUNT}`));
    expect(line).toMatch(/^warning: disk usage on sark at \/mnt\/alert-test: 8[5-6]\.\d% used \(.+ of .+\), threshold 80%$/);
    expect(mustRoot(hosts, "sark", `journalctl -t storage-alert -p warning..warning -o cat --no-pager | grep -c 'at ${ALERT_MOUNT}' || true`).trim()).not.toBe(
      "0",
    );
    expect(receiver.received()).toMatch(/^\/alerts\/e2e-secret-token .*disk usage on sark at \/mnt\/alert-test.*threshold 80%/m);
    // below the threshold again: no usage alert, and the webhook hears "resolved" once
    mustRoot(hosts, "sark", `rm -f ${ALERT_MOUNT}/fill && sync`);
    expect(runAlertCheck()).not.toMatch(/disk usage on sark at \/mnt\/alert-test/);
    expect(receiver.received()).toMatch(/resolved: .*\/mnt\/alert-test/);
  });

  it("the fio baseline ran once per path; its stdout parses into the outputs beside the plan's targets", () => {
    const r = result(0, "sark-monitoring-fio-var-tmp");
    const out = baselineOutput(FIO_PATH, r.stdout);
    expect(out.measured).toBe(true);
    expect(Object.keys(out.jobs!).sort()).toEqual(["randread-4k-qd1", "randread-4k-qd32", "read-1m", "write-1m"]);
    expect(out.targets!.map((t) => t.name)).toEqual(["iops", "readThroughput", "writeThroughput", "averageLatency"]);
    for (const t of out.targets!) expect(typeof t.met).toBe("boolean");
    expect(JSON.parse(mustRoot(hosts, "sark", `cat ${baselineFile(FIO_PATH)}`))).toEqual(JSON.parse(r.stdout));
    expect(mustRoot(hosts, "sark", `ls -a ${FIO_PATH}`)).not.toContain(".dgx-storage-fio.tmp");
    const j = out.jobs!;
    console.log(
      `fio baseline on the test host (${FIO_PATH}, 64M, 1 s/job): ` +
        `randread-4k-qd1 ${Math.round(j["randread-4k-qd1"]!.iops)} IOPS, mean ${j["randread-4k-qd1"]!.latencyUs.mean} us; ` +
        `randread-4k-qd32 ${Math.round(j["randread-4k-qd32"]!.iops)} IOPS; ` +
        `read-1m ${(j["read-1m"]!.bandwidthBytesPerSec / 1e9).toFixed(2)} GB/s; write-1m ${(j["write-1m"]!.bandwidthBytesPerSec / 1e9).toFixed(2)} GB/s; ` +
        `targets met: ${out.targets!.map((t) => `${t.name}=${t.met}`).join(" ")}`,
    );
  });

  it("round 2 runs nothing (fio included: its trigger is unchanged) and changes no installed file", async () => {
    const before = { sark: installed("sark"), clu: installed("clu"), fio: mustRoot(hosts, "sark", `stat -c '%Y %s' ${baselineFile(FIO_PATH)}`) };
    const t0 = Date.now();
    await converge();
    console.log(`round 2: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const name of ["sark", "clu"] as const) {
      expect(rounds[1]![name].steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    }
    expect(rounds[1]!.sark.step("sark-monitoring-fio-var-tmp").op).toBe("same");
    expect(rounds[1]!.sark.run.byName("sark-monitoring-fio-var-tmp").inputs.triggers).toEqual([FIO_PATH, "64M", "1", "1"]);
    expect(installed("sark")).toBe(before.sark);
    expect(installed("clu")).toBe(before.clu);
    expect(mustRoot(hosts, "sark", `stat -c '%Y %s' ${baselineFile(FIO_PATH)}`)).toBe(before.fio);
  });
});
