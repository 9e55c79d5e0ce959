/**
 * migrate-state.py, the one door of every change to a migration's marker: with node_exporter's
 * textfile directory it rewrites the migration's metrics (state one-hot, first start, downtime)
 * atomically on each `set`; and migrate.sh passes it that directory, so a real run and finalize
 * leave the metrics of a verified, then complete, migration.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it, vi } from "vitest";
import { SCRIPTS_DIR } from "../../components/render/command";
import { TEXTFILE_DIR } from "../../components/render/observability";
import { describeWith } from "../tools";
import { fidelityTree, HOST_PATH, migrate, MIGRATE_TOOLS, newRoot } from "./migrate-fixtures";
import { makeRoot, runScript } from "./run";

vi.setConfig({ testTimeout: 120_000 });

/** migrate-state.py as migrate.sh runs it. */
function state(args: readonly string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync("python3", [path.join(SCRIPTS_DIR, "migrate-state.py"), ...args], { encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const promtoolCheck = (text: string) => spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });

describeWith({ tools: ["python3", "promtool"] }, "migrate-state.py set with --metrics-dir", () => {
  it("GIVEN a migration through its states THEN each set rewrites dgx_migration_<name>.prom: state one-hot, first start, downtime once verified; promtool-clean, no temporary file left", () => {
    const root = makeRoot();
    const dir = path.join(root, "textfile");
    fs.mkdirSync(dir);
    const marker = path.join(root, "chroma-db.json");
    const prom = path.join(dir, "dgx_migration_chroma_db.prom");
    const set = (...kv: string[]) => {
      const r = state(["--metrics-dir", dir, "set", marker, ...kv]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(fs.readdirSync(dir)).toEqual(["dgx_migration_chroma_db.prom"]);
      const text = fs.readFileSync(prom, "utf8");
      const check = promtoolCheck(text);
      expect(check.status, check.stdout + check.stderr).toBe(0);
      return text;
    };
    const oneHot = (s: string) =>
      ["copying", "verified", "complete"].map((x) => `dgx_migration_state{migration="chroma-db",state="${x}"} ${x === s ? 1 : 0}\n`).join("");
    // 2026-01-31T12:00:00Z
    const t0 = Date.UTC(2026, 0, 31, 12) / 1000;

    expect(set("state=copying", "source=/src", "destination=/dst", "started_at=2026-01-31T12:00:00Z")).toBe(
      "# HELP dgx_migration_state 1 for the state migrate.sh last recorded (copying, verified, complete)\n" +
        "# TYPE dgx_migration_state gauge\n" +
        oneHot("copying") +
        "# HELP dgx_migration_started_timestamp_seconds Unix time the migration's first run started copying\n" +
        "# TYPE dgx_migration_started_timestamp_seconds gauge\n" +
        `dgx_migration_started_timestamp_seconds{migration="chroma-db"} ${t0}\n`,
    );
    expect(JSON.parse(fs.readFileSync(marker, "utf8")).first_started_at).toBe("2026-01-31T12:00:00Z");

    // the run failed and runs again a day later: a new started_at, the first start kept
    const again = set("state=copying", "started_at=2026-02-01T12:00:00Z");
    expect(again).toContain(`dgx_migration_started_timestamp_seconds{migration="chroma-db"} ${t0}\n`);
    expect(again).not.toContain("dgx_migration_downtime_seconds");

    set("service_stopped=1", "writers=abc:unless-stopped");
    const verified = set("bytes_copied=10", "stopped_at=1769947200.25", "state=verified", "handover_at=1769947203.5", "service_stopped=");
    expect(verified).toContain(oneHot("verified"));
    expect(verified).toContain(
      "# HELP dgx_migration_downtime_seconds Seconds the service was stopped: the writers stopped to the new container healthy\n" +
        "# TYPE dgx_migration_downtime_seconds gauge\n" +
        'dgx_migration_downtime_seconds{migration="chroma-db"} 3.2\n',
    );
    // finalize's own figure wins
    const complete = set("state=complete", "completed_at=2026-02-02T00:00:00Z", "downtime_s=3.3");
    expect(complete).toContain(oneHot("complete"));
    expect(complete).toContain('dgx_migration_downtime_seconds{migration="chroma-db"} 3.3\n');
    expect(complete).not.toMatch(/\} \S+ \S+$/m); // no sample timestamps
    // the marker is what it was without metrics, plus the first start
    expect(JSON.parse(fs.readFileSync(marker, "utf8"))).toEqual({
      bytes_copied: "10",
      completed_at: "2026-02-02T00:00:00Z",
      destination: "/dst",
      downtime_s: "3.3",
      first_started_at: "2026-01-31T12:00:00Z",
      handover_at: "1769947203.5",
      source: "/src",
      started_at: "2026-02-01T12:00:00Z",
      state: "complete",
      stopped_at: "1769947200.25",
      writers: "abc:unless-stopped",
    });
    expect(fs.readdirSync(root).sort()).toEqual(["chroma-db.json", "textfile"]);
  });

  it("GIVEN no textfile directory (node_exporter not installed) or no --metrics-dir THEN the marker is written and nothing else; get is unchanged", () => {
    const root = makeRoot();
    const marker = path.join(root, "m.json");
    expect(state(["--metrics-dir", path.join(root, "absent"), "set", marker, "state=copying"]).code).toBe(0);
    expect(state(["set", marker, "bytes_copied=5"]).code).toBe(0);
    expect(fs.readdirSync(root)).toEqual(["m.json"]);
    expect(state(["get", marker, "state"]).stdout).toBe("copying\n");
    expect(state(["get", marker, "nothing"]).stdout).toBe("\n");
    const bad = state(["--metrics-dir"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--metrics-dir needs a directory");
  });
});

/**
 * The downtime sample of the chroma migration's metrics, as a number (NaN when it is missing):
 * compared as numbers, as Python writes a whole number of seconds as 0.0 or 3.0, JavaScript as 0 or 3.
 */
const downtimeOf = (text: string) => Number(/^dgx_migration_downtime_seconds\{migration="chroma"\} (\S+)$/m.exec(text)?.[1]);

describeWith({ tools: [...MIGRATE_TOOLS, "promtool"], root: true }, "migrate.sh gives migrate-state.py the textfile directory", () => {
  it("GIVEN node_exporter's textfile directory WHEN a migration runs and is finalized THEN its metrics say verified, then complete, with the marker's downtime", () => {
    const root = newRoot();
    fidelityTree(root);
    fs.mkdirSync(path.join(root, TEXTFILE_DIR), { recursive: true });
    const prom = path.join(root, TEXTFILE_DIR, "dgx_migration_chroma.prom");
    const r = migrate(root);
    expect(r.code, r.stderr).toBe(0);
    const markerFile = path.join(root, "var/lib/dgx-storage/migrations/chroma.json");
    let marker = JSON.parse(fs.readFileSync(markerFile, "utf8"));
    let text = fs.readFileSync(prom, "utf8");
    expect(text).toContain('dgx_migration_state{migration="chroma",state="verified"} 1\n');
    expect(text).toContain(`dgx_migration_started_timestamp_seconds{migration="chroma"} ${Date.parse(marker.first_started_at) / 1000}\n`);
    expect(downtimeOf(text)).toBeCloseTo(Number(marker.handover_at) - Number(marker.stopped_at), 1);
    expect(promtoolCheck(text).status).toBe(0);

    const f = runScript("migrate", ["finalize", "chroma", "-", "/src", "/dst", "30"], { ROOT: root, PATH: HOST_PATH });
    expect(f.code, f.stderr).toBe(0);
    marker = JSON.parse(fs.readFileSync(markerFile, "utf8"));
    text = fs.readFileSync(prom, "utf8");
    expect(text).toContain('dgx_migration_state{migration="chroma",state="complete"} 1\n');
    expect(text).toContain('dgx_migration_state{migration="chroma",state="verified"} 0\n');
    // a number (NaN, which toBe would take as equal to NaN, fails here), and the one written
    expect(Number(marker.downtime_s)).toBeGreaterThanOrEqual(0);
    expect(downtimeOf(text)).toBe(Number(marker.downtime_s));
    expect(fs.readdirSync(path.join(root, TEXTFILE_DIR))).toEqual(["dgx_migration_chroma.prom"]);
  });
});
