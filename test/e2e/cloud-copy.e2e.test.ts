/**
 * The cloud copy on a test host, against real object-storage APIs run on this machine: s3rver
 * (S3, path-style) and Azurite (Azure Blob, over HTTPS with a certificate the host trusts, since
 * rclone 1.60 reaches an account-key target at https://<account>.<endpoint>). Both listen on
 * loopback here; an `ssh -R` forward makes them the host's own 127.0.0.1 ports, and the host's
 * /etc/hosts names Azurite's production-style host. The sark stack (its backup section with
 * `backup.cloud`; services, swarm and monitoring left out to keep the suite short) is applied
 * twice through the e2e engine; the credentials reach the host only on stdin.
 *
 * Then, with the units the stack installed: a first copy to each target, a second that uploads
 * only what changed, the drill from each, a corrupted segment that stops the copy with an alert
 * (journal tag dgx-backup, webhook) and leaves the cloud copy as it was, and the secrets nowhere
 * outside the root-only rclone config (files, the journal, argv during a copy, command strings).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RCLONE_CONFIG_PATH } from "../../components/render/cloud-copy";
import { TEXTFILE_DIR } from "../../components/render/observability";
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, startS3rver, type LocalServer } from "../object-storage";
import type { ApplyResult } from "./engine";
import {
  addOperator,
  installedFiles,
  mustRoot,
  asRoot,
  startSuite,
  startWebhookReceiver,
  stopHosts,
  type Suite,
  testStackConfig,
  WEBHOOK_RECEIVER_URL,
  type WebhookReceiver,
} from "./hosts";

const PASSPHRASE = `e2e-cloud-borg-${crypto.randomBytes(6).toString("hex")}`;
/** s3rver checks the access key id, not the secret's signature: a sentinel secret shows where it travels. */
const S3_SECRET = `e2e-s3-secret-${crypto.randomBytes(8).toString("hex")}`;
const WEBHOOK = `${WEBHOOK_RECEIVER_URL}/alerts/e2e-cloud`;
/** The host's side of the forwards. */
const S3_PORT = 14568;
const AZ_PORT = 14443;
const AZ_SUFFIX = `blob.e2e.test:${AZ_PORT}`;
const AZ_HOST = `${AZURITE_ACCOUNT}.blob.e2e.test`;
const CREDENTIALS = JSON.stringify({ "s3-e2e": { accessKeyId: "S3RVER", secretAccessKey: S3_SECRET }, "az-e2e": { accountKey: AZURITE_KEY } });
const REPO = "/srv/borg/sark";
const STATUS = "/var/lib/dgx-storage/backup-status";
/** node_exporter's textfile directory (the test hosts have the package): the jobs' metrics. */
const metrics = (job: string) => mustRoot(suite.hosts, "sark", `cat ${TEXTFILE_DIR}/dgx_backup_${job.replace(/-/g, "_")}.prom`);
const rclone = `env -u AWS_CA_BUNDLE rclone --config ${RCLONE_CONFIG_PATH} --fast-list`;

let suite: Suite;
let s3: LocalServer;
let az: LocalServer;
let tunnel: ChildProcess;
let receiver: WebhookReceiver;
const rounds: ApplyResult[] = [];
const started = Date.now();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-cloud-e2e-"));

/** The sark stack for this suite: its backup section with two cloud targets, nothing else that takes time. */
function stackConfig(): Record<string, unknown> {
  const base = testStackConfig(suite.hosts, "sark");
  const backup = base.backup as Record<string, unknown>;
  const { offsite: _offsite, ...local } = backup;
  void _offsite;
  return {
    host: base.host,
    docker: base.docker,
    sysctl: base.sysctl,
    volumes: [],
    services: {},
    backup: {
      ...local,
      cloud: {
        targets: [
          {
            name: "s3-e2e",
            s3: { provider: "Other", endpoint: `http://127.0.0.1:${S3_PORT}`, region: "us-east-1", bucket: "dgx-e2e" },
            protection: "backup-dir",
          },
          { name: "az-e2e", azure: { account: AZURITE_ACCOUNT, container: "dgx-e2e", endpoint: AZ_SUFFIX }, protection: "backup-dir" },
        ],
        // never fires during the suite: the tests start the services
        schedules: { drill: "*-01-01 04:00:00" },
      },
    },
  };
}

const apply = () =>
  suite.engine.up({
    stack: "test-sark",
    config: stackConfig(),
    secrets: { sshPrivateKey: suite.key, borgPassphrase: PASSPHRASE, alertWebhook: WEBHOOK, cloudCredentials: CREDENTIALS },
  });

const sark = (cmd: string, stdin?: string) => mustRoot(suite.hosts, "sark", cmd, stdin);
const status = (job: string) => JSON.parse(sark(`cat ${STATUS}/${job}.json`)) as Record<string, unknown>;
const since = () => sark("sleep 1; date +%s").trim();
/** Start a unit and wait; its result and the dgx-backup journal lines since. */
function runUnit(unit: string): { code: number; journal: string } {
  const t = since();
  const r = asRoot(suite.hosts, "sark", `systemctl start ${unit}`);
  return { code: r.code, journal: sark(`journalctl -t dgx-backup -o cat --no-pager --since @${t}`) };
}
/** The objects of a target's copy with their md5, from the host's own rclone config. */
const objects = (remote: string) => sark(`${rclone} md5sum ${remote}`).split("\n").filter(Boolean).sort();

beforeAll(async () => {
  suite = startSuite();
  addOperator(suite.hosts, "sark");
  addOperator(suite.hosts, "clu");
  // the certificate of Azurite's production-style host name; the host trusts it as it would a public CA
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${AZ_HOST}`,
      "-addext",
      `subjectAltName=DNS:${AZ_HOST}`,
      "-keyout",
      path.join(tmp, "key.pem"),
      "-out",
      path.join(tmp, "cert.pem"),
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  s3 = await startS3rver(path.join(tmp, "s3"), ["dgx-e2e"]);
  az = await startAzurite(path.join(tmp, "azurite"), {
    port: 20000 + crypto.randomInt(20000),
    cert: path.join(tmp, "cert.pem"),
    key: path.join(tmp, "key.pem"),
  });
  // both servers become ports of the host's loopback (the suite reaches hosts on loopback only)
  const h = suite.hosts.hosts.sark;
  const known = path.join(tmp, "known_hosts");
  fs.writeFileSync(known, `[${h.address}]:${h.port} ${h.hostKey}\n`);
  tunnel = spawn(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-N",
      "-i",
      suite.hosts.privateKeyPath,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-R",
      `127.0.0.1:${S3_PORT}:127.0.0.1:${s3.port}`,
      "-R",
      `127.0.0.1:${AZ_PORT}:127.0.0.1:${az.port}`,
      "-p",
      String(h.port),
      `root@${h.address}`,
    ],
    { stdio: "ignore" },
  );
  sark(`for i in $(seq 1 50); do ss -ltn | grep -q ':${AZ_PORT} ' && ss -ltn | grep -q ':${S3_PORT} ' && exit 0; sleep 0.2; done; exit 1`);
  sark(
    `cat > /usr/local/share/ca-certificates/e2e-azurite.crt && update-ca-certificates >/dev/null && echo '127.0.0.1 ${AZ_HOST}' >> /etc/hosts`,
    fs.readFileSync(path.join(tmp, "cert.pem"), "utf8"),
  );
  sark(`set -e; mkdir -p /srv/data/sub; for i in 1 2 3 4 5 6; do head -c $((i * 65536)) /dev/urandom > /srv/data/sub/f$i.bin; done; echo hello > /srv/data/hello.txt
python3 -c "import sqlite3; c = sqlite3.connect('/home/maxvamp/chromadb-data/chroma.sqlite3'); c.execute('create table if not exists t (x)'); c.commit()"`);
  receiver = startWebhookReceiver(suite.hosts, "sark");
}, 25 * 60_000);

afterAll(async () => {
  tunnel?.kill();
  await s3?.stop();
  await az?.stop();
  stopHosts();
  console.log(`cloud-copy e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("the cloud copy on a test host (s3rver and Azurite)", () => {
  it("round 1 applies: the rclone config from stdin (root's, 0600) before the units; the cloud units pass systemd-analyze verify", async () => {
    rounds.push(await apply());
    const r = rounds[0]!;
    expect(r.step("sark-backup-cloud-config").end).toBeLessThanOrEqual(r.step("sark-backup-units").start);
    expect(sark(`stat -c '%a %U' ${RCLONE_CONFIG_PATH}`)).toBe("600 root\n");
    expect(sark(`grep -c '^\\[' ${RCLONE_CONFIG_PATH}`)).toBe("2\n");
    const units = sark("ls /etc/systemd/system/ | grep -E '^dgx-backup-cloud' | sort").trim().split("\n");
    expect(units).toEqual(
      [
        // the copies have no timer: the weekly check's success starts them (OnSuccess=, below)
        "dgx-backup-cloud-az-e2e.service",
        "dgx-backup-cloud-s3-e2e.service",
        "dgx-backup-clouddrill-az-e2e.service",
        "dgx-backup-clouddrill-az-e2e.timer",
        "dgx-backup-clouddrill-s3-e2e.service",
        "dgx-backup-clouddrill-s3-e2e.timer",
      ].sort(),
    );
    expect(sark("cd /etc/systemd/system && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify dgx-backup-cloud*.service dgx-backup-cloud*.timer 2>&1")).toBe("");
    expect(sark("systemctl show -p UnsetEnvironment --value dgx-backup-cloud-s3-e2e.service")).toBe("AWS_CA_BUNDLE\n");
    // the watch knows the cloud jobs
    expect(sark("grep ^ExecStart /etc/systemd/system/dgx-backup-watch.service")).toMatch(
      /cloud-copy-s3-e2e=\d+ cloud-drill-s3-e2e=\d+ cloud-copy-az-e2e=\d+ cloud-drill-az-e2e=\d+/,
    );
    // the Azure container exists before a copy (the copy never creates buckets)
    sark(`${rclone} mkdir az-e2e:dgx-e2e`);
  });

  it("round 2 runs nothing and changes nothing under /etc/dgx-storage, /etc/systemd/system, /usr/local/lib/dgx-storage", async () => {
    const before = installedFiles(suite.hosts, "sark", ["etc/dgx-storage", "etc/systemd/system", "usr/local/lib/dgx-storage"]);
    rounds.push(await apply());
    expect(installedFiles(suite.hosts, "sark", ["etc/dgx-storage", "etc/systemd/system", "usr/local/lib/dgx-storage"])).toBe(before);
    expect(rounds[1]!.steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`)).toEqual([]);
  });

  it("a first copy to each target after a daily archive; the secrets are not in any argv during the copy", () => {
    expect(runUnit("dgx-backup-daily.service").code).toBe(0);
    const sampled = sark(`systemctl start --no-block dgx-backup-cloud-s3-e2e.service
for i in $(seq 1 100); do [ "$(systemctl is-active dgx-backup-cloud-s3-e2e.service)" = activating ] && break; sleep 0.02; done
while [ "$(systemctl is-active dgx-backup-cloud-s3-e2e.service)" = activating ]; do ps -eo args; sleep 0.05; done
systemctl show -p Result --value dgx-backup-cloud-s3-e2e.service`);
    expect(sampled.trim().split("\n").pop()).toBe("success");
    expect(sampled).toMatch(/rclone --config \/etc\/dgx-storage\/cloud\/rclone.conf .* sync \/srv\/borg\/sark s3-e2e:dgx-e2e\/sark\/repo/);
    expect(sampled).not.toContain(S3_SECRET);
    expect(sampled).not.toContain(AZURITE_KEY);
    expect(sampled).not.toContain(PASSPHRASE);
    const az1 = runUnit("dgx-backup-cloud-az-e2e.service");
    expect(az1.code, az1.journal).toBe(0);
    for (const t of ["s3-e2e", "az-e2e"]) {
      const rec = status(`cloud-copy-${t}`);
      expect(rec).toMatchObject({ job: `cloud-copy-${t}`, host: "sark", status: "ok", exit_code: 0 });
      expect(rec.bytes_added as number).toBeGreaterThan(1_000_000);
      expect(objects(`${t}:dgx-e2e/sark/repo`).some((l) => l.endsWith(" config"))).toBe(true);
      // the installed unit's script writes the backup jobs' metrics too
      expect(metrics(`cloud-copy-${t}`)).toContain(`dgx_backup_last_status{backup_job="cloud-copy-${t}",status="ok"} 1\n`);
      expect(metrics(`cloud-copy-${t}`)).toContain(`dgx_backup_last_bytes_added{backup_job="cloud-copy-${t}"} ${rec.bytes_added}\n`);
    }
    // s3rver's own files: the objects are on the server, not only in rclone's view of it
    expect(fs.readdirSync(path.join(tmp, "s3", "dgx-e2e"))).toContain("sark");
  });

  it("the weekly check's success starts both copies (OnSuccess=); they copy what it checked, without a check of their own, and upload only what changed", () => {
    sark("sleep 1; echo changed >> /srv/data/hello.txt; head -c 8192 /dev/urandom > /srv/data/sub/new.bin");
    expect(runUnit("dgx-backup-daily.service").code).toBe(0);
    const first = Object.fromEntries(["s3-e2e", "az-e2e"].map((t) => [t, status(`cloud-copy-${t}`)]));
    const t0 = since();
    const check = runUnit("dgx-backup-check.service");
    expect(check.code, check.journal).toBe(0);
    // systemd started the copies when the check ended: wait until both have written a new record
    sark(`for i in $(seq 1 600); do
  n=0; for t in s3-e2e az-e2e; do [ "$(systemctl show -p ActiveState --value dgx-backup-cloud-$t.service)" = inactive ] && [ ${STATUS}/cloud-copy-$t.json -nt ${STATUS}/check.json ] && n=$((n+1)); done
  [ $n = 2 ] && exit 0; sleep 0.5
done; exit 1`);
    const journal = sark(`journalctl -t dgx-backup -o cat --no-pager --since @${t0}`);
    const how: string[] = [];
    for (const t of ["s3-e2e", "az-e2e"]) {
      expect(sark(`systemctl show -p Result --value dgx-backup-cloud-${t}.service`)).toBe("success\n");
      expect(status(`cloud-copy-${t}`).start).not.toBe(first[t]!.start);
      const m = new RegExp(
        `sark cloud-copy-${t} ok, transferred \\d+ bytes; synced /srv/borg/sark \\((as the check job checked it|checked by this job)\\) to ${t}:dgx-e2e/sark/repo, replaced objects kept in ${t}:dgx-e2e/sark/replaced/`,
      ).exec(journal);
      expect(m, journal).not.toBeNull();
      how.push(m![1]!);
      expect(status(`cloud-copy-${t}`).bytes_added as number).toBeLessThan((first[t]!.bytes_added as number) / 4);
    }
    // the first copy to take the lock copies what the check saw; the other finds the first one's
    // borg with-lock commit (borg 1.2 do_with_lock commits) and checks the repository itself
    expect(how.sort()).toEqual(["as the check job checked it", "checked by this job"]);
  });

  it("the monthly drill from each target: fetched, borg check, the sample identical by sha256", () => {
    for (const t of ["s3-e2e", "az-e2e"]) {
      const run = runUnit(`dgx-backup-clouddrill-${t}.service`);
      expect(run.code, run.journal).toBe(0);
      const rec = status(`cloud-drill-${t}`);
      expect(rec).toMatchObject({ status: "ok" });
      expect(rec.archive).toMatch(/^sark-daily-/);
      expect(rec.message).toMatch(/\d+ files identical by sha256/);
      expect(metrics(`cloud-drill-${t}`)).toContain(`dgx_backup_last_status{backup_job="cloud-drill-${t}",status="ok"} 1\n`);
    }
    expect(sark("ls -A /var/lib/dgx-storage/cloud-drill")).toBe("");
  });

  it("a corrupted segment stops the copy with an alert (journal, webhook); the cloud copy is left as it was", () => {
    const before = objects("s3-e2e:dgx-e2e/sark/repo");
    sark(`python3 - <<'EOF'
import glob, os
seg = max(glob.glob("${REPO}/data/*/*"), key=os.path.getsize)
with open(seg, "r+b") as f:
    f.seek(os.path.getsize(seg) // 2); b = f.read(64); f.seek(-64, 1); f.write(bytes(x ^ 0xFF for x in b))
EOF`);
    const run = runUnit("dgx-backup-cloud-s3-e2e.service");
    expect(run.code).not.toBe(0);
    expect(run.journal).toMatch(/sark cloud-copy-s3-e2e FAILED; borg check of \/srv\/borg\/sark found errors .*not copied to cloud target s3-e2e/);
    expect(status("cloud-copy-s3-e2e")).toMatchObject({ status: "error" });
    expect(metrics("cloud-copy-s3-e2e")).toContain('dgx_backup_last_status{backup_job="cloud-copy-s3-e2e",status="error"} 1\n');
    expect(objects("s3-e2e:dgx-e2e/sark/repo")).toEqual(before);
    expect(receiver.received()).toMatch(/^\/alerts\/e2e-cloud sark cloud-copy-s3-e2e FAILED/m);
  });

  it("the credentials are nowhere but the root-only rclone config: no other file, no journal field, no command string", () => {
    for (const secret of [S3_SECRET, AZURITE_KEY]) {
      expect(sark(`grep -rlsF -- '${secret}' /etc /usr/local /var/lib/dgx-storage /var/log /root /home /tmp /var/tmp || true`)).toBe(`${RCLONE_CONFIG_PATH}\n`);
      expect(sark(`journalctl --no-pager -o export | grep -acF -- '${secret}' || true`).trim()).toBe("0");
      for (const round of rounds) {
        for (const c of round.run.ofType("command:remote:Command")) {
          expect(String(c.inputs.create), c.name).not.toContain(secret);
          expect(String(c.inputs.delete ?? ""), c.name).not.toContain(secret);
          if (c.name !== "sark-backup-cloud-config") expect(String(c.inputs.stdin ?? ""), c.name).not.toContain(secret);
        }
      }
    }
    expect(receiver.received()).not.toContain(S3_SECRET);
  });
});
