/**
 * borg-repo.sh and borg-run.sh against real borg (1.2) in temporary roots: repository set-up,
 * archives, restore, retention, the restore drill, alerts, the status records, secrecy of the
 * passphrase, and the append-only off-site key.
 */
import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { offsiteAuthorizedKey } from "../../components/render/backup";
import { bundledScript, SCRIPTS_DIR } from "../../components/render/command";
import { makeRoot, runScript, snapshotTree, type ScriptResult } from "./run";

const SENTINEL = "SENTINEL-pass-7f3a9c1e-do-not-leak";
const REPO = "/mnt/borg-backup";

interface Host {
  readonly root: string;
  /** Outside the root: the fake logger's and the alert command's records. */
  readonly aux: string;
  readonly env: Record<string, string>;
}

/** borg runs on real repositories: more time than runScript's default. */
const TIMEOUT_MS = 120_000;

/** A host root with a fake `logger` (records tag, priority and text) and an alert command. */
function makeHost(files: Record<string, string> = {}): Host {
  const root = makeRoot(files);
  const aux = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-aux-"));
  fs.mkdirSync(path.join(aux, "bin"));
  fs.writeFileSync(path.join(aux, "bin", "logger"), `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >>${aux}/journal\n`, { mode: 0o755 });
  const env = {
    ROOT: root,
    PATH: `${path.join(aux, "bin")}:${process.env.PATH}`,
    BORG_BASE_DIR: path.join(root, "var/lib/dgx-storage/borg"),
    BORG_PASSCOMMAND: `cat ${root}/etc/dgx-storage/borg/sark.pass`,
    ALERT_CMD: `{ echo "[$ALERT_PRIORITY] $ALERT_JOB $(cat)"; } >>${aux}/alerts`,
  };
  return { root, aux, env };
}

const setup = (h: Host, pass = SENTINEL) => runScript("borg-repo", ["apply", "sark", REPO], h.env, { input: `${pass}\n`, timeoutMs: TIMEOUT_MS });
const run = (h: Host, args: readonly string[], env: Record<string, string> = {}) =>
  runScript("borg-run", ["--repo", REPO, "--host", "sark", ...args], { ...h.env, ...env }, { timeoutMs: TIMEOUT_MS });
const borg = (h: Host, args: readonly string[], cwd?: string) => {
  const r = spawnSync("borg", args, { env: { ...process.env, ...h.env }, encoding: "utf8", cwd, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};
const repoDir = (h: Host) => path.join(h.root, REPO);
const archives = (h: Host, glob = "sark-*") =>
  borg(h, ["list", "--short", "--glob-archives", glob, repoDir(h)])
    .stdout.split("\n")
    .filter(Boolean);
const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
const sha = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
const status = (h: Host, job: string) => JSON.parse(read(path.join(h.root, "var/lib/dgx-storage/backup-status", `${job}.json`)));

function writeData(dir: string, count: number, size: number, seed = "a") {
  fs.mkdirSync(dir, { recursive: true });
  // incompressible, distinct content (lz4 would shrink anything repetitive to nothing)
  for (let i = 0; i < count; i++) {
    const key = crypto
      .createHash("sha256")
      .update(seed + i)
      .digest();
    const cipher = crypto.createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
    fs.writeFileSync(path.join(dir, `f${i}.bin`), cipher.update(Buffer.alloc(size)));
  }
}

/** Every file under dir (relative path -> sha256). */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = sha(p);
    }
  };
  walk(dir);
  return out;
}

function sqliteDb(file: string, rows: number) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const py = `import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute("pragma journal_mode=wal")\nc.execute("create table if not exists t(x)")\nc.executemany("insert into t values(?)",[(i,) for i in range(${rows})])\nc.commit()`;
  expect(spawnSync("python3", ["-c", py, file]).status).toBe(0);
}

describe("borg-repo.sh apply", () => {
  it("GIVEN no repository THEN initialises it, writes the pass and key files root-only; a second run changes nothing", () => {
    const h = makeHost();
    const r = setup(h);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("initialised the repokey repository at /mnt/borg-backup");
    const dir = path.join(h.root, "etc/dgx-storage/borg");
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(path.join(dir, "sark.pass"), "utf8")).toBe(`${SENTINEL}\n`);
    expect(fs.statSync(path.join(dir, "sark.pass")).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(dir, "sark.key"), "utf8")).toMatch(/^BORG_KEY [0-9a-f]{64}\n/);
    expect(fs.statSync(path.join(dir, "sark.key")).mode & 0o777).toBe(0o600);
    expect(read(path.join(repoDir(h), "config"))).toContain("[repository]");
    expect(r.stdout + r.stderr).not.toContain(SENTINEL);

    const tree = snapshotTree(h.root);
    const again = setup(h);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("borg-repo: repository sark at /mnt/borg-backup is ready\n");
    expect(snapshotTree(h.root)).toEqual(tree);
  });

  it("GIVEN an existing repository and the wrong passphrase THEN a clear error and the pass file is kept", () => {
    const h = makeHost();
    setup(h);
    const r = setup(h, "not-the-passphrase");
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "borg-repo: error: the passphrase on stdin does not open the existing repository at /mnt/borg-backup; the pass file was left as it was\n",
    );
    expect(read(path.join(h.root, "etc/dgx-storage/borg/sark.pass"))).toBe(`${SENTINEL}\n`);
  });

  it("GIVEN a path holding something else THEN refuses and touches nothing", () => {
    const h = makeHost({ "mnt/borg-backup/photos/a.jpg": "jpeg" });
    const r = setup(h);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/mnt/borg-backup holds something that is not a borg repository (photos)");
    expect(fs.existsSync(path.join(h.root, "etc/dgx-storage/borg"))).toBe(false);
  });

  it("GIVEN no passphrase on stdin THEN refuses", () => {
    const r = setup(makeHost(), "");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("stdin holds no passphrase");
  });
});

describe("borg-repo.sh receive and ssh-key", () => {
  const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2WafrCFvAfp/FX1f23NkOXCpaEuVtFyB30ZFYKH9LA dgx-backup@sark";
  it("GIVEN the line of offsiteAuthorizedKey THEN installs it as the only authorized key and the repository dir 0700; a second run changes nothing", () => {
    const h = makeHost();
    const line = offsiteAuthorizedKey(pub, "/srv/borg-offsite/sark");
    const r = runScript("borg-repo", ["receive", "borg-sark", "/srv/borg-offsite/sark", line], h.env, { timeoutMs: TIMEOUT_MS });
    expect(r.code).toBe(0);
    expect(read(path.join(h.root, "var/lib/borg-sark/.ssh/authorized_keys"))).toBe(`${line}\n`);
    expect(fs.statSync(path.join(h.root, "srv/borg-offsite/sark")).mode & 0o777).toBe(0o700);
    const tree = snapshotTree(h.root);
    expect(runScript("borg-repo", ["receive", "borg-sark", "/srv/borg-offsite/sark", line], h.env, { timeoutMs: TIMEOUT_MS }).stdout).not.toContain(
      "installed",
    );
    expect(snapshotTree(h.root)).toEqual(tree);
  });

  it.each([
    [`command="borg serve --restrict-to-path /srv/borg-offsite/sark",restrict ${pub}`, "must start with"],
    [`command="borg serve --append-only --restrict-to-path /srv",restrict ${pub}`, "must start with"],
    [`command="borg serve --append-only --restrict-to-path /srv/borg-offsite/sark",restrict ${pub}"; rm -rf /`, "does not end with an SSH public key"],
  ])("refuses a key line that does not confine the key: %s", (line, message) => {
    const h = makeHost();
    const r = runScript("borg-repo", ["receive", "borg-sark", "/srv/borg-offsite/sark", line], h.env, { timeoutMs: TIMEOUT_MS });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(fs.existsSync(path.join(h.root, "var"))).toBe(false);
  });

  it("ssh-key creates a key pair once and prints the same public key again", () => {
    const h = makeHost();
    const a = runScript("borg-repo", ["ssh-key", "/etc/dgx-storage/borg/offsite_ed25519"], h.env, { timeoutMs: TIMEOUT_MS });
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^ssh-ed25519 \S+ dgx-backup@/);
    expect(fs.statSync(path.join(h.root, "etc/dgx-storage/borg/offsite_ed25519")).mode & 0o777).toBe(0o600);
    expect(runScript("borg-repo", ["ssh-key", "/etc/dgx-storage/borg/offsite_ed25519"], h.env, { timeoutMs: TIMEOUT_MS }).stdout).toBe(a.stdout);
  });
});

describe("borg-run.sh create, restore, status", () => {
  it("GIVEN data THEN create makes an archive; changed data gives a second one; a restore is identical by sha256", () => {
    const h = makeHost();
    setup(h);
    writeData(path.join(h.root, "data/critical"), 20, 4096);
    sqliteDb(path.join(h.root, "data/chroma/chroma.sqlite3"), 500);
    const args = ["create", "daily", "--sqlite", "/data/chroma/chroma.sqlite3", "/data"];
    const first = run(h, args);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(archives(h)).toHaveLength(1);
    const s1 = status(h, "create-daily");
    expect(s1).toMatchObject({ job: "create-daily", host: "sark", status: "ok", exit_code: 0, archive: archives(h)[0] });
    expect(s1.bytes_added).toBeGreaterThan(20 * 4096 * 0.1);
    expect(read(path.join(h.aux, "journal"))).toMatch(/^-t dgx-backup -p user\.info -- sark create-daily ok: archive sark-daily-\S+, added \d+ bytes$/m);

    fs.writeFileSync(path.join(h.root, "data/critical/f3.bin"), "changed\n");
    sqliteDb(path.join(h.root, "data/chroma/chroma.sqlite3"), 10);
    const second = run(h, args);
    expect(second.code).toBe(0);
    const names = archives(h);
    expect(names).toHaveLength(2);
    const history = read(path.join(h.root, "var/lib/dgx-storage/backup-status/create-daily.history.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(history.map((x) => x.archive)).toEqual(names);

    // restore the latest archive and compare
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-restore-"));
    expect(borg(h, ["extract", `${repoDir(h)}::${names[1]}`], out).code).toBe(0);
    const restored = path.join(out, h.root.slice(1), "data");
    expect(hashTree(path.join(restored, "critical"))).toEqual(hashTree(path.join(h.root, "data/critical")));
    // the live database is not archived; its consistent copy is, with all 510 rows
    expect(fs.readdirSync(path.join(restored, "chroma"))).toEqual([]);
    const copy = path.join(out, h.root.slice(1), "var/lib/dgx-storage/sqlite-snapshots/data/chroma/chroma.sqlite3");
    expect(
      spawnSync("python3", ["-c", "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute('select count(*) from t').fetchone()[0])", copy], {
        encoding: "utf8",
      }).stdout,
    ).toBe("510\n");
  });

  it("GIVEN a run that adds far more than the median THEN a warning alert", () => {
    const h = makeHost({ "etc/dgx-storage/alert-webhook": "https://hooks.invalid/x\n" });
    setup(h);
    writeData(path.join(h.root, "data/a"), 5, 1024, "small");
    const dir = path.join(h.root, "var/lib/dgx-storage/backup-status");
    fs.mkdirSync(dir, { recursive: true });
    const old = [1000, 1200, 900].map((b) => JSON.stringify({ job: "create-hourly", status: "ok", bytes_added: b })).join("\n");
    fs.writeFileSync(path.join(dir, "create-hourly.history.jsonl"), old + "\n");
    writeData(path.join(h.root, "data/a/big"), 50, 65536, "big");
    const r = run(h, ["create", "hourly", "/data/a"]);
    expect(r.code).toBe(0);
    expect(status(h, "create-hourly").growth_alert).toMatch(/more than 4 times the median 1000 of the last 3 runs/);
    expect(read(path.join(h.aux, "alerts"))).toMatch(/^\[warning\] create-hourly sark create-hourly: abnormal backup size: added \d+ bytes/m);
    expect(read(path.join(h.aux, "journal"))).toMatch(/^-t dgx-backup -p user\.warning -- sark create-hourly: abnormal backup size/m);
  });

  it("GIVEN a missing path THEN an error, recorded and alerted, exit 2", () => {
    const h = makeHost({ "etc/dgx-storage/alert-webhook": "https://hooks.invalid/x\n" });
    setup(h);
    const r = run(h, ["create", "daily", "/data/nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the path to back up /data/nope does not exist on sark");
    expect(status(h, "create-daily")).toMatchObject({ status: "error", message: "the path to back up /data/nope does not exist on sark" });
    expect(read(path.join(h.aux, "alerts"))).toContain("[err] create-daily sark create-daily FAILED; the path to back up /data/nope does not exist on sark");
  });
});

describe("borg-run.sh and the repository lock", () => {
  it("GIVEN another job holding the lock longer than --lock-wait THEN the run is skipped: a warning alert, exit 3, no archive; once free the next run archives", async () => {
    const h = makeHost({ "etc/dgx-storage/alert-webhook": "https://hooks.invalid/x\n" });
    setup(h);
    writeData(path.join(h.root, "data/a"), 3, 1024);
    // a long daily (or verify-data) run: borg's own lock, held for 8 s
    const holder = spawn("borg", ["with-lock", repoDir(h), "sleep", "8"], { env: { ...process.env, ...h.env }, stdio: "ignore" });
    const exited = new Promise((resolve) => holder.on("exit", resolve));
    try {
      const lockFile = path.join(repoDir(h), "lock.exclusive");
      for (let i = 0; i < 100 && !fs.existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(lockFile), "borg with-lock did not take the lock").toBe(true);
      const t0 = Date.now();
      const r = run(h, ["--lock-wait", "2", "create", "hourly", "/data/a"]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain("Failed to create/acquire the lock");
      expect(status(h, "create-hourly")).toMatchObject({
        status: "skipped",
        exit_code: 2,
        archive: null,
        message: expect.stringMatching(/^the repository stayed locked by another job for 2 s/),
      });
      expect(read(path.join(h.aux, "alerts"))).toMatch(
        /^\[warning\] create-hourly sark create-hourly SKIPPED; the repository stayed locked by another job for 2 s/m,
      );
    } finally {
      await exited;
    }
    expect(archives(h)).toHaveLength(0);
    const next = run(h, ["--lock-wait", "2", "create", "hourly", "/data/a"]);
    expect(next.code).toBe(0);
    expect(status(h, "create-hourly").status).toBe("ok");
    expect(archives(h)).toHaveLength(1);
  });

  it("refuses a --lock-wait that is not a whole number of seconds, before borg runs", () => {
    const h = makeHost();
    for (const bad of ["0", "10m", "-5", ""]) {
      const r = run(h, ["--lock-wait", bad, "create", "daily", "/data"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`--lock-wait must be a whole number of seconds, got '${bad}'`);
    }
    expect(fs.existsSync(path.join(h.root, "var/lib/dgx-storage/backup-status"))).toBe(false);
  });
});

describe("the webhook", () => {
  it("GIVEN a URL in /etc/dgx-storage/alert-webhook and no ALERT_CMD THEN a failure is POSTed to it (a loopback server)", async () => {
    const got: { url?: string; title?: string | string[]; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        got.push({ url: req.url, title: req.headers.title, body });
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const h = makeHost({ "etc/dgx-storage/alert-webhook": `http://127.0.0.1:${port}/hook\n` });
      // asynchronous: the server answers from this process's event loop
      const child = spawn("bash", [path.join(SCRIPTS_DIR, "borg-run.sh"), "--repo", REPO, "--host", "sark", "create", "daily", "/data/nope"], {
        env: { ...process.env, ...h.env, ALERT_CMD: "", http_proxy: "", HTTP_PROXY: "", no_proxy: "*" },
      });
      const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
      expect(code).toBe(2);
      expect(got).toEqual([
        { url: "/hook", title: "dgx-backup err", body: "sark create-daily FAILED; the path to back up /data/nope does not exist on sark\n" },
      ]);
    } finally {
      server.close();
    }
  });
});

describe("textfile metrics and the heartbeat", () => {
  it("GIVEN node_exporter's textfile dir and a heartbeat URL THEN a success writes the job's metrics (promtool-clean) and GETs the URL once; a failure writes status error and pings nothing", async () => {
    const got: { method?: string; url?: string }[] = [];
    const server = http.createServer((req, res) => {
      got.push({ method: req.method, url: req.url });
      res.end("ok");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const runAsync = (h: Host, args: string[]) => {
      const child = spawn("bash", [path.join(SCRIPTS_DIR, "borg-run.sh"), "--repo", REPO, "--host", "sark", ...args], {
        env: { ...process.env, ...h.env, http_proxy: "", HTTP_PROXY: "", no_proxy: "*" },
      });
      return new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
    };
    try {
      const h = makeHost({ "etc/dgx-storage/heartbeat-url": `http://127.0.0.1:${port}/ping/abc\n` });
      fs.mkdirSync(path.join(h.root, "var/lib/prometheus/node-exporter"), { recursive: true });
      expect(setup(h).code).toBe(0);
      writeData(path.join(h.root, "data/a"), 2, 4096);
      expect(await runAsync(h, ["create", "daily", "/data/a"])).toBe(0);
      const prom = path.join(h.root, "var/lib/prometheus/node-exporter/dgx_backup_create_daily.prom");
      const text = read(prom);
      const st = status(h, "create-daily");
      const end = Date.parse(st.start) / 1000 + st.duration_s;
      expect(text).toContain(`dgx_backup_last_success_timestamp_seconds{backup_job="create-daily"} ${end}\n`);
      expect(text).toContain(`dgx_backup_last_status{backup_job="create-daily",status="ok"} 1\n`);
      expect(text).toContain(`dgx_backup_last_bytes_added{backup_job="create-daily"} ${st.bytes_added}\n`);
      // the archive count is borg's (borg list after the job), for the job's own series
      expect(text).toContain(`dgx_backup_archives{backup_job="create-daily",archive_glob="sark-daily-*"} 1\n`);
      expect(st).toMatchObject({ archives: 1, archives_glob: "sark-daily-*" });
      expect(text).not.toMatch(/\} \d+ \d+$/m); // no sample timestamps
      expect(fs.readdirSync(path.dirname(prom)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      expect(check.status, check.stdout + check.stderr).toBe(0);
      expect(got).toEqual([{ method: "GET", url: "/ping/abc" }]);
      // a failure: status error, the last success kept, no ping
      expect(await runAsync(h, ["create", "daily", "/data/nope"])).toBe(2);
      const after = read(prom);
      expect(after).toContain(`dgx_backup_last_status{backup_job="create-daily",status="error"} 1\n`);
      expect(after).toContain(`dgx_backup_last_success_timestamp_seconds{backup_job="create-daily"} ${end}\n`);
      expect(after).not.toContain("dgx_backup_archives{"); // no list after a failed run: no count rather than a guess
      expect(got).toHaveLength(1);
      // another series beside it: each job counts its own archives, two daily now, one hourly
      expect(await runAsync(h, ["create", "daily", "/data/a"])).toBe(0);
      expect(await runAsync(h, ["create", "hourly", "/data/a"])).toBe(0);
      expect(read(prom)).toContain(`dgx_backup_archives{backup_job="create-daily",archive_glob="sark-daily-*"} 2\n`);
      expect(read(prom.replace("create_daily", "create_hourly"))).toContain(`dgx_backup_archives{backup_job="create-hourly",archive_glob="sark-hourly-*"} 1\n`);
    } finally {
      server.close();
    }
  });
});

describe("borg-run.sh prune", () => {
  // 8 days are enough, and each borg process costs about a second (more on a busy 2-core
  // machine, hence the limit): 2026-01-31 is a Saturday, so the 2 dailies are in its ISO week and
  // the weekly is the newest archive of the week before, Sunday the 25th (borg's prune_split).
  it("GIVEN 8 days of daily archives and 2 hourly THEN keeps exactly 2 daily + 1 weekly and leaves the hourly series alone; the count of daily archives borg lists after it is the metric", () => {
    const h = makeHost();
    setup(h);
    fs.mkdirSync(path.join(h.root, "var/lib/prometheus/node-exporter"), { recursive: true });
    writeData(path.join(h.root, "data"), 2, 256);
    const day0 = Date.UTC(2026, 0, 31, 12);
    for (let d = 0; d < 8; d++) {
      const ts = new Date(day0 - d * 86_400_000).toISOString().slice(0, 19);
      expect(borg(h, ["create", "--timestamp", ts, `${repoDir(h)}::sark-daily-${ts}`, path.join(h.root, "data")]).code).toBe(0);
    }
    for (const ts of ["2026-01-31T13:00:00", "2026-01-31T14:00:00"])
      expect(borg(h, ["create", "--timestamp", ts, `${repoDir(h)}::sark-hourly-${ts}`, path.join(h.root, "data")]).code).toBe(0);

    const dry = run(h, ["prune", "daily", "--keep-daily=2", "--keep-weekly=1"], { DRY_RUN: "1" });
    expect(dry.code).toBe(0);
    const kept = [...dry.stderr.matchAll(/^Keeping archive \(rule: \w+ #\d+\):\s+(\S+)/gm)].map((m) => m[1]);
    expect(kept).toEqual(["sark-daily-2026-01-31T12:00:00", "sark-daily-2026-01-30T12:00:00", "sark-daily-2026-01-25T12:00:00"]);
    expect([...dry.stderr.matchAll(/^Would prune:/gm)]).toHaveLength(5);
    expect(dry.stderr).not.toContain("hourly");
    expect(archives(h)).toHaveLength(10);

    const real = run(h, ["prune", "daily", "--keep-daily=2", "--keep-weekly=1"]);
    expect(real.code).toBe(0);
    expect(archives(h, "sark-daily-*").sort()).toEqual([...kept].sort());
    expect(archives(h, "sark-hourly-*")).toHaveLength(2);
    // borg's count after the prune (3), not a count of the job's history (one run)
    expect(status(h, "prune-daily")).toMatchObject({ status: "ok", exit_code: 0, archives: 3, archives_glob: "sark-daily-*" });
    expect(read(path.join(h.root, "var/lib/prometheus/node-exporter/dgx_backup_prune_daily.prom"))).toContain(
      `dgx_backup_archives{backup_job="prune-daily",archive_glob="sark-daily-*"} 3\n`,
    );
  }, 120_000);

  it("refuses an option that is not a retention", () => {
    const h = makeHost();
    const r = run(h, ["prune", "daily", "--glob-archives=*"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'--glob-archives=*' is not a retention option");
  });
});

describe("borg-run.sh check and drill", () => {
  function hostWithArchive(): Host {
    const h = makeHost({ "etc/dgx-storage/alert-webhook": "https://hooks.invalid/x\n" });
    setup(h);
    writeData(path.join(h.root, "data"), 30, 16384);
    expect(run(h, ["create", "daily", "/data"]).code).toBe(0);
    return h;
  }

  it("GIVEN a sound repository THEN the drill restores a sample identical to the live files", () => {
    const h = hostWithArchive();
    fs.writeFileSync(path.join(h.root, "data/f0.bin"), "changed since the archive\n");
    const r = run(h, ["drill", "daily", "--sample", "100"]);
    expect(r.code).toBe(0);
    expect(status(h, "drill-daily").message).toMatch(
      /^restore drill of sark-daily-\S+: 29 files identical by sha256, 1 skipped \(changed since the archive\)$/,
    );
    expect(run(h, ["check"]).code).toBe(0);
    expect(read(path.join(h.aux, "alerts"))).toBe("");
  });

  it("GIVEN a live file whose content changed behind an unchanged mtime THEN the drill reports the mismatch", () => {
    const h = hostWithArchive();
    const f = path.join(h.root, "data/f7.bin");
    fs.copyFileSync(f, `${f}.ref`);
    spawnSync("touch", ["-r", f, `${f}.ref`]);
    const bytes = fs.readFileSync(f);
    bytes[100] = bytes[100]! ^ 0xff;
    fs.writeFileSync(f, bytes);
    spawnSync("touch", ["-r", `${f}.ref`, f]);
    fs.rmSync(`${f}.ref`);
    const r = run(h, ["drill", "daily", "--sample", "100"]);
    expect(r.code).toBe(2);
    expect(status(h, "drill-daily").message).toContain(`1 of 30 unchanged files differ after restore: ${f}`);
    expect(read(path.join(h.aux, "alerts"))).toMatch(/^\[err\] drill-daily sark drill-daily FAILED: archive sark-daily-\S+; restore drill/m);
  });

  it("GIVEN flipped bytes in a segment file THEN check --verify-data and the drill fail and the alert fires", () => {
    const h = hostWithArchive();
    const segs = fs.readdirSync(path.join(repoDir(h), "data/0")).map((n) => path.join(repoDir(h), "data/0", n));
    const biggest = segs.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
    const buf = fs.readFileSync(biggest);
    for (let i = 0; i < 64; i++) buf[Math.floor(buf.length / 2) + i] = buf[Math.floor(buf.length / 2) + i]! ^ 0xff;
    fs.writeFileSync(biggest, buf);

    const check = run(h, ["check", "--verify-data"]);
    expect(check.code).toBe(2);
    expect(status(h, "check-verify-data")).toMatchObject({ status: "error", exit_code: expect.any(Number) });
    expect(status(h, "check-verify-data").exit_code).toBeGreaterThanOrEqual(1);
    const drill = run(h, ["drill", "daily", "--sample", "100"]);
    expect(drill.code).toBe(2);
    const alerts = read(path.join(h.aux, "alerts"));
    expect(alerts).toMatch(/^\[err\] check-verify-data sark check-verify-data FAILED/m);
    expect(alerts).toMatch(/^\[err\] drill-daily sark drill-daily FAILED.*(extracting from sark-daily-\S+ failed|differ after restore)/m);
    expect(read(path.join(h.aux, "journal"))).toMatch(/^-t dgx-backup -p user\.err -- sark check-verify-data FAILED/m);
  });
});

describe("the passphrase stays secret", () => {
  it("GIVEN a sentinel passphrase THEN it is in the pass file only: not in other files, the journal, alerts, argv or environments", async () => {
    const h = makeHost({ "etc/dgx-storage/alert-webhook": "https://hooks.invalid/x\n" });
    expect(setup(h).code).toBe(0);
    writeData(path.join(h.root, "data"), 200, 65536);
    sqliteDb(path.join(h.root, "data/db/chroma.sqlite3"), 100);

    // sample every process's argv and environment while a backup runs
    const seen: string[] = [];
    const child = spawn(
      "bash",
      [path.join(SCRIPTS_DIR, "borg-run.sh"), "--repo", REPO, "--host", "sark", "create", "daily", "--sqlite", "/data/db/chroma.sqlite3", "/data"],
      {
        env: { ...process.env, ...h.env },
      },
    );
    let done = false;
    const exited = new Promise<number>((resolve) => child.on("exit", (c) => ((done = true), resolve(c ?? -1))));
    let samples = 0;
    while (!done) {
      for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        for (const f of ["cmdline", "environ"]) {
          try {
            seen.push(fs.readFileSync(`/proc/${pid}/${f}`, "latin1"));
          } catch {
            /* gone */
          }
        }
      }
      samples++;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await exited).toBe(0);
    expect(samples).toBeGreaterThan(3);
    expect(seen.join("\n")).toContain("BORG_PASSCOMMAND=cat "); // the sampling did see the job
    expect(seen.filter((s) => s.includes(SENTINEL))).toEqual([]);

    expect(run(h, ["drill", "daily"]).code).toBe(0);
    expect(run(h, ["check"]).code).toBe(0);
    expect(run(h, ["create", "daily", "/data/none"]).code).toBe(2); // an error path too

    const leaks = Object.entries(snapshotTree(h.root)).filter(([p, f]) => !p.endsWith("sark.pass") && f.text.includes(SENTINEL));
    expect(leaks.map(([p]) => p)).toEqual([]);
    // binary files too (borg's cache and repository segments)
    const grep = spawnSync("grep", ["-rlaF", SENTINEL, h.root, h.aux], { encoding: "utf8" });
    expect(grep.stdout.trim().split("\n").filter(Boolean)).toEqual([path.join(h.root, "etc/dgx-storage/borg/sark.pass")]);
    expect(read(path.join(h.aux, "journal"))).not.toBe("");
  });
});

describe("the off-site copy through an append-only key", () => {
  it("GIVEN the forced command of offsiteAuthorizedKey THEN copy-offsite works and a borg delete through it is reverted by the receiving operator", () => {
    const h = makeHost();
    expect(setup(h).code).toBe(0);
    writeData(path.join(h.root, "data"), 10, 4096);
    const far = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-far-"));
    const farRepo = path.join(far, "repos/sark");
    fs.mkdirSync(path.dirname(farRepo));
    const line = offsiteAuthorizedKey(
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2WafrCFvAfp/FX1f23NkOXCpaEuVtFyB30ZFYKH9LA dgx-backup@sark",
      path.dirname(farRepo),
    );
    const forced = /^command="([^"]+)",restrict ssh-ed25519 /.exec(line)![1]!;
    expect(forced).toBe(`borg serve --append-only --restrict-to-path ${path.dirname(farRepo)}`);
    // stands in for ssh + sshd: whatever borg asks to run, the forced command runs (as sshd does)
    const rsh = path.join(h.aux, "rsh");
    fs.writeFileSync(rsh, `#!/usr/bin/env bash\nexec ${forced}\n`, { mode: 0o755 });
    fs.mkdirSync(path.join(h.root, "etc/dgx-storage/borg"), { recursive: true });
    fs.writeFileSync(path.join(h.root, "etc/dgx-storage/borg/offsite_ed25519"), "unused by the wrapper\n");
    fs.writeFileSync(path.join(h.root, "etc/dgx-storage/borg/offsite-known_hosts"), "[clu]:22 ssh-ed25519 AAAA\n");
    const url = `ssh://borg-sark@clu:22${farRepo}`;
    const env = { BORG_RSH: rsh };
    const copy = (): ScriptResult =>
      runScript(
        "borg-run",
        ["--repo", url, "--host", "sark", "copy-offsite", "/etc/dgx-storage/borg/offsite_ed25519", "/etc/dgx-storage/borg/offsite-known_hosts", "/data"],
        { ...h.env, ...env },
        { timeoutMs: TIMEOUT_MS },
      );

    const first = copy();
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`initialised the off-site repository ${url}`);
    expect(read(path.join(h.root, "etc/dgx-storage/borg/sark-offsite.key"))).toMatch(/^BORG_KEY /);
    fs.writeFileSync(path.join(h.root, "data/f1.bin"), "new\n");
    expect(copy().code).toBe(0);
    const remote = (args: readonly string[]) => spawnSync("borg", args, { env: { ...process.env, ...h.env, ...env }, encoding: "utf8" });
    const names = remote(["list", "--short", url]).stdout.trim().split("\n");
    expect(names).toHaveLength(2);
    expect(names.every((n) => n.startsWith("sark-offsite-"))).toBe(true);
    // the count in the status record is the far repository's, listed through the same forced command
    expect(status(h, "copy-offsite")).toMatchObject({ status: "ok", archives: 2, archives_glob: "sark-offsite-*" });

    // a path outside the restriction is refused
    expect(remote(["list", `ssh://borg-sark@clu:22${far}-elsewhere`]).stderr).toContain("Repository path not allowed");

    // the compromised host deletes its history and compacts
    const txBefore = read(path.join(farRepo, "transactions")).trim().split("\n").pop()!;
    const lastGood = Number(/^transaction (\d+),/.exec(txBefore)![1]);
    expect(remote(["delete", "--glob-archives", "sark-*", url]).status).toBe(0);
    remote(["compact", url]);
    expect(remote(["list", "--short", url]).stdout.trim()).toBe("");

    // the receiving operator rolls back to the last transaction before the deletion
    // (borg docs, "append-only mode"): drop the newer segments and the index files
    for (const seg of fs.readdirSync(path.join(farRepo, "data/0"))) if (Number(seg) > lastGood) fs.rmSync(path.join(farRepo, "data/0", seg));
    for (const f of fs.readdirSync(farRepo)) if (/^(index|hints|integrity)\.\d+$/.test(f)) fs.rmSync(path.join(farRepo, f));
    const operator = { ...process.env, BORG_BASE_DIR: path.join(far, "operator-borg"), BORG_PASSCOMMAND: h.env.BORG_PASSCOMMAND! };
    const back = spawnSync("borg", ["list", "--short", farRepo], { env: operator, encoding: "utf8" });
    expect(back.stdout.trim().split("\n")).toEqual(names);
    expect(spawnSync("borg", ["check", "--verify-data", farRepo], { env: operator, encoding: "utf8" }).status).toBe(0);
  });
});

describe("the migration's borg snapshot (migrate.sh snapshot=borg:...)", () => {
  it("GIVEN the backup repository THEN the source is archived first, its SQLite database as a consistent copy", () => {
    const h = makeHost();
    expect(setup(h).code).toBe(0);
    // the runner where the backup unit set installs it
    const runner = path.join(h.root, "usr/local/lib/dgx-storage/borg-run.sh");
    fs.mkdirSync(path.dirname(runner), { recursive: true });
    fs.writeFileSync(runner, bundledScript("borg-run"), { mode: 0o755 });
    writeData(path.join(h.root, "src"), 5, 4096);
    spawnSync("python3", [
      "-c",
      "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.execute('PRAGMA journal_mode=WAL'); db.execute('CREATE TABLE t(x)'); db.execute('INSERT INTO t VALUES (42)'); db.commit()",
      path.join(h.root, "src/chroma.sqlite3"),
    ]);
    const r = spawnSync("bash", [path.join(SCRIPTS_DIR, "migrate.sh"), "run", "chroma", "-", "/src", "/dst", "-", "10", "30", `borg:sark:sark:${REPO}`], {
      env: { ...process.env, ...h.env, BORG_PASSCOMMAND: "" },
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`borg archive of /src before migrating (repository ${REPO})`);
    const made = archives(h, "sark-migration-chroma-*");
    expect(made).toHaveLength(1);
    const listed = borg(h, ["list", "--short", `${repoDir(h)}::${made[0]}`]).stdout;
    expect(listed).toMatch(/src\/f\d/);
    expect(listed).toContain("chroma.sqlite3"); // the consistent copy, under its snapshot path
  });

  it("GIVEN a malformed snapshot argument THEN a clear error and nothing touched", () => {
    const root = makeRoot({ "src/f": "x" });
    const r = spawnSync("bash", [path.join(SCRIPTS_DIR, "migrate.sh"), "run", "chroma", "-", "/src", "/dst", "-", "10", "30", "borg"], {
      env: { ...process.env, ROOT: root },
      encoding: "utf8",
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("snapshot must be none or borg:<host>:<repository name>:<repository path>, got 'borg'");
    expect(fs.existsSync(path.join(root, "dst"))).toBe(false);
  });
});

describe("borg-run.sh watch (missed schedules)", () => {
  const record = (h: Host, job: string, secondsAgo: number) => {
    const dir = path.join(h.root, "var/lib/dgx-storage/backup-status");
    fs.mkdirSync(dir, { recursive: true });
    const start = new Date(Date.now() - secondsAgo * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    fs.writeFileSync(path.join(dir, `${job}.json`), JSON.stringify({ job, start, status: "ok" }));
  };

  it("GIVEN a job that ran within its max age THEN no alert; GIVEN one that did not THEN an err alert naming it", () => {
    const h = makeHost();
    record(h, "create-daily", 3600);
    record(h, "create-hourly", 4 * 3600);
    const r = run(h, ["watch", "create-daily=129600", "create-hourly=10800"]);
    expect(r.code).toBe(0);
    // the journal (tag dgx-backup) is where every alert goes; the webhook only when configured
    const journal = read(path.join(h.aux, "journal"));
    expect(journal).toMatch(
      /-t dgx-backup -p user\.err -- sark backup job create-hourly missed its schedule: last run .*, 4 h ago \(expected at least every 3 h\)/,
    );
    expect(journal).not.toContain("create-daily missed");
    expect(status(h, "watch")).toMatchObject({ status: "warning", message: "1 missed schedule(s)" });
  });

  it("GIVEN a job that never ran THEN it is missed only once the watch is older than its max age", () => {
    const h = makeHost();
    expect(run(h, ["watch", "copy-offsite=907200"]).code).toBe(0);
    expect(read(path.join(h.aux, "journal"))).not.toContain("missed its schedule");
    // the watch began 11 days ago
    fs.writeFileSync(path.join(h.root, "var/lib/dgx-storage/backup-status/.watch-since"), `${Math.floor(Date.now() / 1000) - 11 * 86400}\n`);
    expect(run(h, ["watch", "copy-offsite=907200"]).code).toBe(0);
    expect(read(path.join(h.aux, "journal"))).toMatch(
      /user\.err -- sark backup job copy-offsite missed its schedule: it has not run since the watch began 264 h ago/,
    );
  });
});
