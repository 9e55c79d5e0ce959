/**
 * cloud-copy.sh for real: borg 1.2, rclone (Debian's 1.60) and s3rver's S3 API on loopback, in a
 * temporary ROOT. The rclone config is rendered by the program's renderer and written by
 * secret-file.sh from stdin, as on a host. A first copy, a second that uploads only what changed,
 * the drill, an archive deleted locally brought back from the cloud (restore-point), a corrupted
 * segment that stops the copy with an alert and leaves the cloud copy as it was, and the faults
 * (missing bucket, wrong credentials, unreachable endpoint) each named, the next run catching up;
 * a versioning target refused over s3rver's never-versioned bucket (and through fronts that answer
 * GetBucketVersioning Suspended or 403), copied through a front that answers it Enabled.
 * Each run writes the metrics every backup job writes to node_exporter's textfile directory.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { RCLONE_CONFIG_PATH, renderRcloneConfig, type CloudTarget } from "../../components/render/cloud-copy";
import { TEXTFILE_DIR } from "../../components/render/observability";
import { S3RVER_KEY, startS3rver, startVersioningFront, type LocalServer } from "../object-storage";
import { describeWith } from "../tools";
import { makeRoot, runScript } from "./run";

const PASS = "cloud-test-passphrase-0123";
const REPO = "/mnt/borg-backup";
const TIMEOUT = 180_000;

let s3: LocalServer;
let root: string;
let aux: string;
let env: Record<string, string>;

const target = (name: string, bucket: string, port: number): CloudTarget => ({
  name,
  prefix: "sark",
  protection: "backup-dir",
  s3: { provider: "Other", endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", bucket },
});

/** The program's rclone config for these targets, written by secret-file.sh from stdin. */
function writeConfig(targets: readonly CloudTarget[], creds: Record<string, unknown>) {
  const text = renderRcloneConfig(targets, JSON.stringify(creds));
  const r = runScript("secret-file", ["apply", RCLONE_CONFIG_PATH], { ROOT: root }, { input: text });
  expect(r.code, r.stderr).toBe(0);
}

const cloud = (args: readonly string[]) =>
  runScript("cloud-copy", ["--repo", REPO, "--host", "sark", "--config", RCLONE_CONFIG_PATH, ...args], env, { timeoutMs: TIMEOUT });
const copy = (name = "s3-main", bucket = "dgx-backups") =>
  cloud(["copy", name, `${name}:${bucket}/sark/repo`, "--backup-dir", `${name}:${bucket}/sark/replaced`]);
const borg = (args: readonly string[], cwd?: string, extra: Record<string, string> = {}) => {
  const r = spawnSync("borg", args, { env: { ...process.env, ...env, ...extra }, encoding: "utf8", cwd, timeout: TIMEOUT });
  if (r.status !== 0) throw new Error(`borg ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
const rclone = (args: readonly string[]) => {
  const r = spawnSync("rclone", ["--config", path.join(root, RCLONE_CONFIG_PATH), "--fast-list", ...args], {
    env: { ...process.env, AWS_CA_BUNDLE: "" },
    encoding: "utf8",
    timeout: TIMEOUT,
  });
  if (r.status !== 0) throw new Error(`rclone ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
const status = (job: string) =>
  JSON.parse(fs.readFileSync(path.join(root, "var/lib/dgx-storage/backup-status", `${job}.json`), "utf8")) as Record<string, unknown>;
/** The job's textfile metrics (node_exporter's directory under ROOT). */
const metrics = (job: string) => fs.readFileSync(path.join(root, TEXTFILE_DIR, `dgx_backup_${job.replace(/-/g, "_")}.prom`), "utf8");
/** The end of the run in a status record: what dgx_backup_last_*_timestamp_seconds say. */
const ended = (rec: Record<string, unknown>) => Date.parse(String(rec.start)) / 1000 + Number(rec.duration_s);
const alerts = () => (fs.existsSync(path.join(aux, "alerts")) ? fs.readFileSync(path.join(aux, "alerts"), "utf8") : "");
/** Every object under a prefix with its md5 (s3rver computes it), sorted. */
const objects = (remote: string) => rclone(["md5sum", remote]).split("\n").filter(Boolean).sort();
const repoDir = () => path.join(root, REPO);
const sleepSeconds = (s: number) => spawnSync("sleep", [String(s)]);
/** The borg subcommands run since the log was last removed (the bin/borg wrapper's log). */
const borgCalls = () => {
  const f = path.join(aux, "borg-calls");
  return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
};
/** The repository's files (path, size, mtime): unchanged by a run that failed before borg. */
const repoFiles = () => spawnSync("find", [repoDir(), "-type", "f", "-printf", "%P %s %T@\\n"], { encoding: "utf8" }).stdout.split("\n").sort().join("\n");

function writeData(dir: string, seed: string, count: number, size: number) {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const cipher = crypto.createCipheriv(
      "aes-256-ctr",
      crypto
        .createHash("sha256")
        .update(seed + i)
        .digest(),
      Buffer.alloc(16),
    );
    fs.writeFileSync(path.join(dir, `${seed}${i}.bin`), cipher.update(Buffer.alloc(size)));
  }
}

describeWith({ tools: ["borg", "rclone", "python3", "promtool"] }, "cloud-copy.sh against s3rver", () => {
  beforeAll(async () => {
    s3 = await startS3rver(fs.mkdtempSync(path.join(os.tmpdir(), "dgx-s3-")), ["dgx-backups"]);
    root = makeRoot({ "etc/dgx-storage/borg/sark.pass": `${PASS}\n`, "etc/dgx-storage/alert-webhook": "http://127.0.0.1:9/unused\n" });
    aux = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-aux-"));
    fs.mkdirSync(path.join(aux, "bin"));
    fs.writeFileSync(path.join(aux, "bin", "logger"), `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >>${aux}/journal\n`, { mode: 0o755 });
    // every borg command the script runs, by its subcommand, then the real borg
    const realBorg = spawnSync("bash", ["-c", "command -v borg"], { encoding: "utf8" }).stdout.trim();
    fs.writeFileSync(path.join(aux, "bin", "borg"), `#!/usr/bin/env bash\necho "$1" >>${aux}/borg-calls\nexec ${realBorg} "$@"\n`, { mode: 0o755 });
    env = {
      ROOT: root,
      PATH: `${path.join(aux, "bin")}:${process.env.PATH}`,
      BORG_BASE_DIR: path.join(root, "var/lib/dgx-storage/borg"),
      BORG_PASSCOMMAND: `cat ${root}/etc/dgx-storage/borg/sark.pass`,
      ALERT_CMD: `{ echo "[$ALERT_PRIORITY] $ALERT_JOB $(cat)"; } >>${aux}/alerts`,
      // what this machine sets, and what rclone's S3 backend would fail on: the script unsets it
      AWS_CA_BUNDLE: "/nonexistent/ca-bundle.pem",
    };
    fs.mkdirSync(path.dirname(repoDir()), { recursive: true });
    fs.mkdirSync(path.join(root, TEXTFILE_DIR), { recursive: true });
    borg(["init", "--encryption=repokey", repoDir()]);
    writeData(path.join(root, "srv/data"), "a", 8, 256 * 1024);
    borg(["create", `${repoDir()}::sark-daily-1`, path.join(root, "srv/data")]);
    writeConfig([target("s3-main", "dgx-backups", s3.port)], { "s3-main": S3RVER_KEY });
  }, TIMEOUT);
  afterAll(async () => {
    await s3?.stop();
  });

  it(
    "the rclone config is root's alone (0600) and holds the keys; the first copy uploads the repository, without its lock",
    () => {
      expect((fs.statSync(path.join(root, RCLONE_CONFIG_PATH)).mode & 0o777).toString(8)).toBe("600");
      const r = copy();
      expect(r.code, r.stderr).toBe(0);
      const rec = status("cloud-copy-s3-main");
      expect(rec).toMatchObject({ job: "cloud-copy-s3-main", host: "sark", status: "ok", exit_code: 0 });
      expect(rec.bytes_added as number).toBeGreaterThan(2 * 1024 * 1024);
      // the same files as the repository after the job (its with-lock commit adds a segment after the transfer)
      const remote = rclone(["lsf", "-R", "--files-only", "s3-main:dgx-backups/sark/repo"]).split("\n").filter(Boolean).sort();
      expect(remote).toContain("config");
      expect(remote.filter((f) => f.startsWith("lock"))).toEqual([]);
      expect(remote.filter((f) => f.startsWith("data/")).length).toBeGreaterThan(2);
      // the metrics of every backup job, under the job's name, promtool-clean, no sample timestamps
      const text = metrics("cloud-copy-s3-main");
      const lab = 'backup_job="cloud-copy-s3-main"';
      expect(text).toContain(`dgx_backup_last_success_timestamp_seconds{${lab}} ${ended(rec)}\n`);
      expect(text).toContain(`dgx_backup_last_run_timestamp_seconds{${lab}} ${ended(rec)}\n`);
      expect(text).toContain(`dgx_backup_last_status{${lab},status="ok"} 1\n`);
      expect(text).toContain(`dgx_backup_last_status{${lab},status="error"} 0\n`);
      expect(text).toContain(`dgx_backup_last_bytes_added{${lab}} ${rec.bytes_added}\n`);
      expect(text).toContain(`dgx_backup_last_duration_seconds{${lab}} ${rec.duration_s}\n`);
      expect(text).toContain(`dgx_backup_last_exit_code{${lab}} 0\n`);
      expect(text).not.toMatch(/\} \S+ \d+$/m);
      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      expect(check.status, check.stdout + check.stderr).toBe(0);
      expect(fs.readdirSync(path.join(root, TEXTFILE_DIR)).sort()).toEqual(["dgx_backup_cloud_copy_s3_main.prom"]);
    },
    TIMEOUT,
  );

  it(
    "a second copy after a small archive uploads only what changed",
    () => {
      const first = status("cloud-copy-s3-main").bytes_added as number;
      writeData(path.join(root, "srv/data"), "b", 1, 64 * 1024);
      borg(["create", `${repoDir()}::sark-daily-2`, path.join(root, "srv/data")]);
      const r = copy();
      expect(r.code, r.stderr).toBe(0);
      const second = status("cloud-copy-s3-main").bytes_added as number;
      expect(second).toBeGreaterThan(64 * 1024);
      expect(second).toBeLessThan(first / 4);
      expect(status("cloud-copy-s3-main").message).toMatch(/replaced objects kept in s3-main:dgx-backups\/sark\/replaced\/\d{4}-\d\d-\d\dT\d{6}Z/);
    },
    TIMEOUT,
  );

  it(
    "after a passing check job the copy runs no check of its own; after a commit since, or with no check on record, it checks first",
    () => {
      // the check job starts after the last copy's commit (the records count whole seconds)
      sleepSeconds(1.1);
      const checkJob = runScript("borg-run", ["--repo", REPO, "--host", "sark", "check"], env, { timeoutMs: TIMEOUT });
      expect(checkJob.code, checkJob.stderr).toBe(0);
      expect(status("check")).toMatchObject({ status: "ok" });
      fs.rmSync(path.join(aux, "borg-calls"), { force: true });
      const r = copy();
      expect(r.code, r.stderr).toBe(0);
      expect(status("cloud-copy-s3-main").message).toMatch(/^synced \/mnt\/borg-backup \(as the check job checked it\) to /);
      expect(borgCalls()).toEqual(["with-lock"]);
      // the copy's own with-lock committed: the repository is no longer what the check saw
      const again = copy();
      expect(again.code, `${again.stderr} ${String(status("cloud-copy-s3-main").message)} ${borgCalls().join(",")}`).toBe(0);
      expect(status("cloud-copy-s3-main").message).toMatch(/^synced \/mnt\/borg-backup \(checked by this job\) to /);
      expect(borgCalls()).toEqual(["with-lock", "with-lock", "check", "with-lock"]);
      // a new archive after a passing check job: checked again before the copy
      sleepSeconds(1.1);
      expect(runScript("borg-run", ["--repo", REPO, "--host", "sark", "check"], env, { timeoutMs: TIMEOUT }).code).toBe(0);
      writeData(path.join(root, "srv/data"), "c", 1, 16 * 1024);
      borg(["create", `${repoDir()}::sark-daily-3`, path.join(root, "srv/data")]);
      borg(["delete", `${repoDir()}::sark-daily-3`]);
      fs.rmSync(path.join(root, "srv/data/c0.bin"));
      fs.rmSync(path.join(aux, "borg-calls"), { force: true });
      const third = copy();
      expect(third.code, third.stderr).toBe(0);
      expect(status("cloud-copy-s3-main").message).toMatch(/\(checked by this job\)/);
      expect(borgCalls()).toEqual(["with-lock", "check", "with-lock"]);
    },
    TIMEOUT,
  );

  it(
    "the monthly drill fetches the copy, checks it and finds the sample identical to the live files",
    () => {
      const r = cloud(["drill", "s3-main", "s3-main:dgx-backups/sark/repo", "/var/tmp/cloud-drill", "--sample", "20"]);
      expect(r.code, r.stderr).toBe(0);
      const rec = status("cloud-drill-s3-main");
      expect(rec).toMatchObject({ status: "ok", archive: "sark-daily-2" });
      expect(rec.message).toMatch(/9 files identical by sha256, 0 skipped/);
      expect(rec.bytes_added as number).toBeGreaterThan(2 * 1024 * 1024);
      const text = metrics("cloud-drill-s3-main");
      expect(text).toContain(`dgx_backup_last_success_timestamp_seconds{backup_job="cloud-drill-s3-main"} ${ended(rec)}\n`);
      expect(text).toContain(`dgx_backup_last_status{backup_job="cloud-drill-s3-main",status="ok"} 1\n`);
      expect(text).toContain(`dgx_backup_last_bytes_added{backup_job="cloud-drill-s3-main"} ${rec.bytes_added}\n`);
      // the scratch copy is gone
      expect(fs.readdirSync(path.join(root, "var/tmp/cloud-drill"))).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    "an archive deleted locally is still recoverable from the cloud: restore-point of the sync that dropped it",
    () => {
      borg(["delete", `${repoDir()}::sark-daily-1`]);
      borg(["compact", repoDir()]);
      const r = copy();
      expect(r.code, r.stderr).toBe(0);
      const run = /replaced objects kept in (\S+)/.exec(String(status("cloud-copy-s3-main").message))![1]!;
      const dest = "/var/tmp/restored";
      const back = cloud(["restore-point", "s3-main", "s3-main:dgx-backups/sark/repo", run, dest]);
      expect(back.code, back.stderr).toBe(0);
      // the restored repository opens under its own security dir (it is a copy at another path)
      const own = { BORG_BASE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "dgx-borg-base-")) };
      expect(
        borg(["list", "--short", path.join(root, dest)], undefined, own)
          .split("\n")
          .filter(Boolean),
      ).toEqual(["sark-daily-1", "sark-daily-2"]);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-extract-"));
      borg(["extract", `${path.join(root, dest)}::sark-daily-1`], out, own);
      const rel = path.relative("/", path.join(root, "srv/data/a3.bin"));
      expect(
        crypto
          .createHash("sha256")
          .update(fs.readFileSync(path.join(out, rel)))
          .digest("hex"),
      ).toBe(
        crypto
          .createHash("sha256")
          .update(fs.readFileSync(path.join(root, "srv/data/a3.bin")))
          .digest("hex"),
      );
    },
    TIMEOUT,
  );

  it(
    "a corrupted segment: borg check fails, nothing is copied, the cloud copy is left as it was, the alert fires",
    () => {
      // a passing check job first: the damage comes after it, in place, with no commit
      sleepSeconds(1.1);
      expect(runScript("borg-run", ["--repo", REPO, "--host", "sark", "check"], env, { timeoutMs: TIMEOUT }).code).toBe(0);
      const before = objects("s3-main:dgx-backups/sark/repo");
      const lastOk = ended(status("cloud-copy-s3-main"));
      const segs = fs
        .readdirSync(path.join(repoDir(), "data", "0"))
        .map((f) => path.join(repoDir(), "data", "0", f))
        .sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
      const fd = fs.openSync(segs[0]!, "r+");
      const at = Math.floor(fs.statSync(segs[0]!).size / 2);
      const buf = Buffer.alloc(64);
      fs.readSync(fd, buf, 0, 64, at);
      fs.writeSync(fd, Buffer.from(buf.map((b) => b ^ 0xff)), 0, 64, at);
      fs.closeSync(fd);
      const r = copy();
      expect(r.code).toBe(2);
      expect(status("cloud-copy-s3-main")).toMatchObject({ status: "error" });
      expect(status("cloud-copy-s3-main").message).toMatch(
        /borg check of \/mnt\/borg-backup found errors .*not copied to cloud target s3-main; its last copy is left as it was/,
      );
      expect(objects("s3-main:dgx-backups/sark/repo")).toEqual(before);
      expect(alerts()).toMatch(/\[err\] cloud-copy-s3-main sark cloud-copy-s3-main FAILED; borg check/);
      // what BackupFailed fires on; the last success stays what it was (BackupMissed's clock)
      const text = metrics("cloud-copy-s3-main");
      expect(text).toContain(`dgx_backup_last_status{backup_job="cloud-copy-s3-main",status="error"} 1\n`);
      expect(text).toContain(`dgx_backup_last_exit_code{backup_job="cloud-copy-s3-main"} ${status("cloud-copy-s3-main").exit_code}\n`);
      expect(text).toContain(`dgx_backup_last_success_timestamp_seconds{backup_job="cloud-copy-s3-main"} ${lastOk}\n`);
      // repair the fixture for what follows: flip the bytes back
      const fd2 = fs.openSync(segs[0]!, "r+");
      fs.writeSync(fd2, buf, 0, 64, at);
      fs.closeSync(fd2);
    },
    TIMEOUT,
  );

  it(
    "faults name the target and leave the local repository alone: missing bucket, wrong credentials, unreachable endpoint; the next run catches up",
    async () => {
      const closed = await startS3rver(fs.mkdtempSync(path.join(os.tmpdir(), "dgx-s3-")), []);
      const closedPort = closed.port;
      await closed.stop(); // nothing listens there any more
      writeConfig(
        [
          target("s3-main", "dgx-backups", s3.port),
          target("s3-nobucket", "no-such-bucket", s3.port),
          target("s3-badkey", "dgx-backups", s3.port),
          target("s3-down", "dgx-backups", closedPort),
        ],
        {
          "s3-main": S3RVER_KEY,
          "s3-nobucket": S3RVER_KEY,
          // s3rver knows one access key and does not judge the secret's signature on every call:
          // an unknown key id is what it refuses (InvalidAccessKeyId, as S3 does)
          "s3-badkey": { accessKeyId: "NOT-A-KEY", secretAccessKey: "not-the-secret" },
          "s3-down": S3RVER_KEY,
        },
      );
      const files = repoFiles();
      const cases: [string, string, RegExp][] = [
        ["s3-nobucket", "no-such-bucket", /cloud target s3-nobucket \(s3-nobucket:no-such-bucket\/sark\/repo\): the bucket or container does not exist/],
        ["s3-badkey", "dgx-backups", /cloud target s3-badkey \(s3-badkey:dgx-backups\/sark\/repo\): the credentials are wrong or lack permission/],
        ["s3-down", "dgx-backups", /cloud target s3-down \(s3-down:dgx-backups\/sark\/repo\): the endpoint is unreachable/],
      ];
      for (const [name, bucket, want] of cases) {
        const t0 = Date.now();
        const r = copy(name, bucket);
        expect(r.code, name).toBe(2);
        expect(Date.now() - t0, `${name} fails within a minute`).toBeLessThan(60_000);
        expect(status(`cloud-copy-${name}`)).toMatchObject({ status: "error" });
        expect(status(`cloud-copy-${name}`).message, name).toMatch(want);
        expect(alerts()).toContain(`[err] cloud-copy-${name} sark cloud-copy-${name} FAILED`);
      }
      expect(repoFiles()).toBe(files);
      expect(alerts()).not.toContain("not-the-secret");
      expect(fs.readFileSync(path.join(root, "var/lib/dgx-storage/backup-status/cloud-copy-s3-badkey.history.jsonl"), "utf8")).not.toContain("not-the-secret");
      // the good target goes on: its next run uploads what changed since its last success
      writeData(path.join(root, "srv/data"), "c", 1, 32 * 1024);
      borg(["create", `${repoDir()}::sark-daily-3`, path.join(root, "srv/data")]);
      const r = copy();
      expect(r.code, r.stderr).toBe(0);
      expect(rclone(["lsf", "-R", "--files-only", "s3-main:dgx-backups/sark/repo"])).toContain("config");
    },
    TIMEOUT,
  );

  it(
    "a versioning target copies only into a bucket that says its versioning is Enabled: s3rver's never-versioned bucket is refused before anything is read",
    async () => {
      const front = await startVersioningFront(s3.port);
      const suspended = await startVersioningFront(s3.port, "Suspended");
      const denied = await startVersioningFront(s3.port, "AccessDenied");
      try {
        const versioned = (name: string, port: number): CloudTarget => ({ ...target(name, "dgx-backups", port), prefix: "ver", protection: "versioning" });
        writeConfig(
          [
            target("s3-main", "dgx-backups", s3.port),
            versioned("s3-ver", s3.port),
            versioned("s3-front", front.port),
            versioned("s3-susp", suspended.port),
            versioned("s3-denied", denied.port),
          ],
          {
            "s3-main": S3RVER_KEY,
            "s3-ver": S3RVER_KEY,
            "s3-front": S3RVER_KEY,
            "s3-susp": S3RVER_KEY,
            "s3-denied": S3RVER_KEY,
          },
        );
        const files = repoFiles();
        fs.rmSync(path.join(aux, "borg-calls"), { force: true });
        const refused = cloud(["copy", "s3-ver", "s3-ver:dgx-backups/ver/repo", "--versioned"]);
        expect(refused.code, refused.stderr).toBe(2);
        expect(status("cloud-copy-s3-ver")).toMatchObject({ status: "error" });
        expect(status("cloud-copy-s3-ver").message).toMatch(
          /^cloud target s3-ver \(s3-ver:dgx-backups\/ver\/repo\): its protection is versioning, but the bucket's versioning is Unversioned: a sync would delete or overwrite the objects of the last copy for good, so nothing was copied/,
        );
        expect(alerts()).toContain("[err] cloud-copy-s3-ver sark cloud-copy-s3-ver FAILED");
        // neither borg nor the repository was touched, and nothing reached the bucket
        expect(borgCalls()).toEqual([]);
        expect(repoFiles()).toBe(files);
        // versioning turned off since (Suspended): refused the same way
        const off = cloud(["copy", "s3-susp", "s3-susp:dgx-backups/ver/repo", "--versioned"]);
        expect(off.code, off.stderr).toBe(2);
        expect(status("cloud-copy-s3-susp").message).toMatch(/its protection is versioning, but the bucket's versioning is Suspended: .*so nothing was copied/);
        expect(borgCalls()).toEqual([]);
        expect(repoFiles()).toBe(files);
        // a key that may list the bucket but not read its versioning (S3 answers 403): refused,
        // naming the permission it lacks
        const blind = cloud(["copy", "s3-denied", "s3-denied:dgx-backups/ver/repo", "--versioned"]);
        expect(blind.code, blind.stderr).toBe(2);
        expect(status("cloud-copy-s3-denied").message).toMatch(
          /^cloud target s3-denied \(s3-denied:dgx-backups\/ver\/repo\): its protection is versioning, but the bucket's versioning could not be read: the credentials are wrong or lack permission: .*AccessDenied.*; nothing was copied \(the key needs s3:GetBucketVersioning\)$/,
        );
        expect(alerts()).toContain("[err] cloud-copy-s3-denied sark cloud-copy-s3-denied FAILED");
        expect(borgCalls()).toEqual([]);
        expect(repoFiles()).toBe(files);
        expect(rclone(["lsf", "s3-main:dgx-backups/"]).split("\n")).not.toContain("ver/");
        // the same bucket, answered Enabled: the sync runs, with no backup prefix of its own
        const r = cloud(["copy", "s3-front", "s3-front:dgx-backups/ver/repo", "--versioned"]);
        expect(r.code, r.stderr).toBe(0);
        expect(status("cloud-copy-s3-front").message).toMatch(
          /to s3-front:dgx-backups\/ver\/repo, replaced objects kept as noncurrent versions by the bucket$/,
        );
        expect(rclone(["lsf", "s3-main:dgx-backups/ver/"]).split("\n").filter(Boolean)).toEqual(["repo/"]);
        expect(rclone(["lsf", "s3-main:dgx-backups/ver/repo/"])).toContain("config");
        // a protection option with anything after it is refused, naming the usage
        const bad = cloud(["copy", "s3-front", "s3-front:dgx-backups/ver/repo", "--versioned", "extra"]);
        expect(bad.code).toBe(2);
        expect(status("cloud-copy-s3-front").message).toMatch(/usage: cloud-copy.sh \.\.\. copy <target> <remote> \[--backup-dir <remote> \| --versioned\]/);
      } finally {
        await front.stop();
        await suspended.stop();
        await denied.stop();
      }
    },
    TIMEOUT,
  );
});
