/**
 * The Observability component under mocks: exact children and command strings, the order
 * (after the host's packages, the Prometheus config after the webhook file), the webhook URL only
 * on stdin into a file the checks do not read, the storage check switched to metrics, and the
 * static textfile (backup maximum ages as the missed-schedule watch has them).
 */
import { describe, expect, it } from "vitest";
import { parseHostConfig } from "../../components/config";
import { ALERTMANAGER_WEBHOOK_FILE, HEARTBEAT_FILE } from "../../components/observability";
import { backupMaxAges, managerFiles, staticTextfile } from "../../components/plan/observability";
import { scriptCommand, sha256 } from "../../components/render/command";
import { STATIC_METRICS_FILE } from "../../components/render/observability";
import { OBSERVABILITY_FIXTURE, withValue } from "../fixtures";
import { pinnedStackConfig, runStack, SENTINEL_SSH_KEY, waitsFor } from "../harness";

const COMMAND = "command:remote:Command";
const WEBHOOK = "https://ntfy.example/dgx-sentinel-observability-91af";

const withObs = (stack: "sark" | "clu") => ({ ...pinnedStackConfig(stack), observability: OBSERVABILITY_FIXTURE[stack] });
const run = (stack: "sark" | "clu") =>
  runStack({ stack, config: withObs(stack), secrets: { sshPrivateKey: SENTINEL_SSH_KEY, alertWebhook: WEBHOOK }, preview: true });

describe("the Observability component", () => {
  it("sark (manager): packages, textfile, Prometheus/Alertmanager config; each after the host's packages", async () => {
    const r = await run("sark");
    const comp = r.byName("sark-observability");
    expect(comp.type).toBe("dgx-storage:index:Observability");
    expect(
      r.registrations
        .filter((x) => x.parent === comp.urn)
        .map((x) => `${x.type} ${x.name}`)
        .sort(),
    ).toEqual(["packages", "prometheus", "textfile"].map((role) => `${COMMAND} sark-observability-${role}`));
    expect(r.byName("sark-observability-packages").inputs.create).toBe(
      scriptCommand("apt-ensure", ["prometheus-node-exporter", "prometheus-node-exporter-collectors", "moreutils", "prometheus", "prometheus-alertmanager"], {
        sudo: true,
      }),
    );
    expect(waitsFor(r, "sark-observability-packages", "sark-packages")).toBe(true);
    expect(waitsFor(r, "sark-observability-prometheus", "sark-alert-webhook")).toBe(true);
    expect(waitsFor(r, "sark-observability-textfile", "sark-observability-packages")).toBe(true);
    const config = parseHostConfig(withObs("sark"), { source: "test" });
    const files = managerFiles(config, config.observability!, true)!;
    const prom = r.byName("sark-observability-prometheus");
    expect(prom.inputs.create).toBe(
      scriptCommand("observability-config", ["apply", files.prometheus, files.rules, files.alertmanager, files.console, ALERTMANAGER_WEBHOOK_FILE], {
        sudo: true,
      }),
    );
    expect((prom.inputs.triggers as string[])[0]).toBe(sha256(files.prometheus + files.rules + files.alertmanager + files.console));
    expect(prom.inputs.delete).toBe(scriptCommand("observability-config", ["remove"], { sudo: true }));
    expect(JSON.stringify(r.registrations.map((x) => x.inputs.create ?? ""))).not.toContain("dgx-sentinel-observability");
  });

  it("the webhook URL goes on stdin into Alertmanager's file, not the one the checks POST to; the storage check writes metrics", async () => {
    const r = await run("sark");
    const w = r.byName("sark-alert-webhook");
    expect(w.inputs.create).toBe(scriptCommand("secret-file", ["apply", ALERTMANAGER_WEBHOOK_FILE], { sudo: true }));
    expect(w.inputs.stdin).toBe(`${WEBHOOK}\n`);
    expect(w.inputs.create).not.toContain("alert-webhook ");
    const units = r.byName("sark-monitoring-units").inputs.create as string;
    expect(units).toContain('\\"webhookFile\\": null');
    expect(units).toContain('\\"textfileDir\\": \\"/var/lib/prometheus/node-exporter\\"');
  });

  it("clu (scraped only): no Prometheus, no webhook file at all; the textfile with its backup maximum ages", async () => {
    const r = await run("clu");
    const comp = r.byName("clu-observability");
    expect(
      r.registrations
        .filter((x) => x.parent === comp.urn)
        .map((x) => x.name)
        .sort(),
    ).toEqual(["clu-observability-packages", "clu-observability-textfile"]);
    expect(r.registrations.some((x) => x.name === "clu-alert-webhook")).toBe(false);
    const config = parseHostConfig(withObs("clu"), { source: "test" });
    const text = staticTextfile(config, new Date("2026-11-30T00:00:00Z"));
    expect(r.byName("clu-observability-textfile").inputs.create).toBe(
      scriptCommand("observability-config", ["textfile", STATIC_METRICS_FILE, text], { sudo: true }),
    );
    const ages = backupMaxAges("clu", config.backup!);
    expect(ages.length).toBeGreaterThan(0);
    for (const a of ages) expect(text).toContain(`dgx_backup_max_age_seconds{backup_job="${a.job}"} ${a.seconds}\n`);
    expect(text).toMatch(/^dgx_capacity_projected_timestamp_seconds\{mount="\/data",percent="80"\} \d+$/m);
  });

  it("the cloud copy and drill of each target are watched: weekly and monthly maximum ages in the static textfile, for BackupMissed", () => {
    const cloud = {
      targets: [
        { name: "s3-main", s3: { region: "eu-central-1", bucket: "dgx-backups" }, protection: "versioning" },
        { name: "az-main", azure: { account: "dgxbackups", container: "sark" }, protection: "backup-dir" },
      ],
    };
    const config = parseHostConfig(withValue(withObs("sark"), "backup.cloud", cloud), { source: "test" });
    const text = staticTextfile(config, new Date("2026-11-30T00:00:00Z"));
    // the period and half a period (render/backup.ts maxAgeSeconds) of Thu 06:00 and the 22nd 06:00
    const week = 7 * 86400 * 1.5;
    const month = 31 * 86400 * 1.5;
    for (const t of ["s3-main", "az-main"]) {
      expect(text).toContain(`dgx_backup_max_age_seconds{backup_job="cloud-copy-${t}"} ${week}\n`);
      expect(text).toContain(`dgx_backup_max_age_seconds{backup_job="cloud-drill-${t}"} ${month}\n`);
    }
  });

  it("observability.prometheus.migrationStuckHours reaches the MigrationStuck rule (default 24 h)", () => {
    const at = (hours?: number) => {
      const obs = { prometheus: { ...OBSERVABILITY_FIXTURE.sark.prometheus, ...(hours !== undefined ? { migrationStuckHours: hours } : {}) } };
      const config = parseHostConfig({ ...pinnedStackConfig("sark"), observability: obs }, { source: "test" });
      return managerFiles(config, config.observability!, false)!.rules;
    };
    expect(at()).toContain('(time() - dgx_migration_started_timestamp_seconds) > 86400 and on(host, migration) dgx_migration_state{state="copying"} == 1');
    expect(at(6)).toContain("(time() - dgx_migration_started_timestamp_seconds) > 21600 and on(host, migration)");
    expect(() =>
      parseHostConfig(
        { ...pinnedStackConfig("sark"), observability: { prometheus: { ...OBSERVABILITY_FIXTURE.sark.prometheus, migrationStuckHours: 0 } } },
        { source: "test" },
      ),
    ).toThrow(/observability\.prometheus\.migrationStuckHours/);
  });

  it("the heartbeat URL (a secret) goes on stdin into /etc/dgx-storage/heartbeat-url, which borg-run.sh reads; never in a command string", async () => {
    const HB = "https://hc.example/ping/dgx-sentinel-heartbeat-3b7d";
    const r = await runStack({ stack: "clu", config: withObs("clu"), secrets: { sshPrivateKey: SENTINEL_SSH_KEY, heartbeatUrl: HB }, preview: true });
    const c = r.byName("clu-heartbeat-url");
    expect(c.inputs.create).toBe(scriptCommand("secret-file", ["apply", HEARTBEAT_FILE], { sudo: true }));
    expect(c.inputs.delete).toBe(scriptCommand("secret-file", ["remove", HEARTBEAT_FILE], { sudo: true }));
    expect(c.inputs.stdin).toBe(`${HB}\n`);
    expect(c.secretPaths).toContain("stdin");
    expect(c.inputs.logging).toBe("none");
    expect(JSON.stringify(r.registrations.map((x) => [x.inputs.create, x.inputs.triggers]))).not.toContain("dgx-sentinel-heartbeat");
  });

  it("the door refuses a target host listed twice and a bad address, naming the key", () => {
    const bad = {
      ...pinnedStackConfig("sark"),
      observability: {
        prometheus: {
          targets: [
            { host: "sark", address: "a:1" },
            { host: "sark", address: "nope" },
          ],
        },
      },
    };
    expect(() => parseHostConfig(bad, { source: "test" })).toThrow(
      /observability\.prometheus\.targets\.1\.address: "nope" is invalid[\s\S]*observability\.prometheus\.targets\.1: .*listed once/,
    );
  });
});
