/**
 * Backups on the test hosts, with real borg: the program's commands for both stacks (test/e2e/
 * Pulumi.test-*.yaml) applied twice, the timers, a daily archive made by starting the service,
 * a second one after a change, a restore identical by sha256, the sentinel passphrase nowhere
 * (ps during a backup, unit files, the journal, the plan's command strings), the weekly off-site
 * copy over SSH between the two hosts through the restricted key, a `borg delete` through that
 * key rolled back by the receiving side (append-only), and a corrupted segment caught by
 * `borg check --verify-data` and the restore drill, with the alert (journal tag dgx-backup and
 * the webhook).
 *
 * Like `pulumi up`, the e2e engine (engine.ts) runs each stack's program once: the ssh-key
 * command's real stdout flows into the receive command on the peer.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OFFSITE_KEY_PATH } from "../../components/plan/backup";
import type { ApplyResult, Engine } from "./engine";
import {
  addOperator,
  asRoot,
  engineFor,
  installedFiles,
  mustRoot,
  startHosts,
  startWebhookReceiver,
  stopHosts,
  type HostName,
  type TestHosts,
  testStackConfig,
  WEBHOOK_RECEIVER_URL,
  type WebhookReceiver,
} from "./hosts";

const PASSPHRASE = `e2e-borg-sentinel-${crypto.randomBytes(6).toString("hex")}`;
const WEBHOOK = `${WEBHOOK_RECEIVER_URL}/alerts/e2e-backup`;
const REPO: Record<HostName, string> = { sark: "/srv/borg/sark", clu: "/srv/borg/clu" };
const OFFSITE_URL = "ssh://borg-sark@172.31.250.11:22/srv/borg-offsite/sark/repo";
const BORG_ENV = (host: HostName) => `BORG_PASSCOMMAND='cat /etc/dgx-storage/borg/${host}.pass' BORG_BASE_DIR=/var/lib/dgx-storage/borg`;
const OFFSITE_RSH = `BORG_RSH='ssh -i ${OFFSITE_KEY_PATH} -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/dgx-storage/borg/offsite-known_hosts'`;

let hosts: TestHosts;
let key: string;
let receiver: WebhookReceiver;
let engine: Engine;
const rounds: Record<HostName, ApplyResult>[] = [];
const started = Date.now();

const peerOf = (name: HostName): HostName => (name === "sark" ? "clu" : "sark");

const apply = (name: HostName) =>
  engine.up({
    stack: `test-${name}`,
    config: testStackConfig(hosts, name),
    secrets: { sshPrivateKey: key, borgPassphrase: PASSPHRASE, ...(name === "sark" ? { alertWebhook: WEBHOOK } : {}) },
  });

async function converge(): Promise<void> {
  const sark = await apply("sark");
  const clu = await apply("clu");
  rounds.push({ sark, clu });
}

/** A command's output after an apply (from the engine's state). */
const result = (round: number, name: string) => {
  const r = rounds[round]![name.startsWith("sark-") ? "sark" : "clu"];
  return { stdout: r.stdout(name), stderr: r.stderr(name) };
};

/** Every file under the directories the backup commands install to: content, mode, owner, mtime. */
const installed = (name: HostName) =>
  installedFiles(hosts, name, ["etc/dgx-storage", "etc/systemd/system", "usr/local/lib/dgx-storage", "var/lib/dgx-storage/borg"]);

const archives = (name: HostName, glob: string): string[] =>
  mustRoot(hosts, name, `${BORG_ENV(name)} borg list --short --glob-archives '${glob}' ${REPO[name]}`)
    .trim()
    .split("\n")
    .filter(Boolean);

const since = (name: HostName) => mustRoot(hosts, name, "sleep 1; date +%s").trim();

const treeHashes = (name: HostName, dir: string) => mustRoot(hosts, name, `cd ${dir} && find . -type f -print0 | sort -z | xargs -0 sha256sum`);

beforeAll(() => {
  hosts = startHosts();
  key = fs.readFileSync(hosts.privateKeyPath, "utf8");
  engine = engineFor(hosts);
  for (const name of ["sark", "clu"] as const) {
    addOperator(hosts, name);
    // the data: a few files, one big enough that a backup runs for a moment (ps is sampled then)
    mustRoot(
      hosts,
      name,
      `set -e; mkdir -p /srv/data/sub /home/maxvamp/chromadb-data /home/maxvamp/memory-data
for i in 1 2 3 4 5; do head -c $((i * 4096)) /dev/urandom > /srv/data/sub/f$i.bin; done
echo hello > /srv/data/hello.txt; head -c 48M /dev/urandom > /srv/data/big.bin`,
    );
  }
  // ChromaDB's SQLite file in WAL mode, what the hourly and daily series snapshot: 1000 fixture
  // rows; the chromadb stand-in the stack starts then keeps committing rows of its own to it
  mustRoot(
    hosts,
    "sark",
    `python3 -c "
import sqlite3; c = sqlite3.connect('/home/maxvamp/chromadb-data/chroma.sqlite3'); c.execute('PRAGMA journal_mode=WAL')
c.execute('create table fixture (x)'); c.executemany('insert into fixture values (?)', [(i,) for i in range(1000)]); c.commit()"`,
  );
  // the webhook receiver on sark (what ntfy or healthchecks would get)
  receiver = startWebhookReceiver(hosts, "sark");
});

afterAll(() => {
  stopHosts();
  console.log(`backup e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("backups with borg on the test hosts", () => {
  it("round 1: both stacks apply; repository, key, the receiving side on the peer, then the units", async () => {
    const t0 = Date.now();
    await converge();
    console.log(`round 1: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const name of ["sark", "clu"] as const) {
      const r = rounds[0]![name];
      const before = (a: string, b: string) => expect(r.step(`${name}-${a}`).end, `${a} before ${b}`).toBeLessThanOrEqual(r.step(`${name}-${b}`).start);
      before("backup-ssh-key", "backup-offsite-receive");
      before("backup-repo", "backup-units");
      before("backup-offsite-receive", "backup-units");
      // the receive command went to the PEER's management SSH, pinned with the peer's key, and
      // carries the public key the ssh-key command printed in this apply
      const receive = r.run.byName(`${name}-backup-offsite-receive`).inputs;
      const peer = hosts.hosts[peerOf(name)];
      const c = receive.connection as Record<string, unknown>;
      expect({ address: c.host, port: c.port, user: c.user, hostKey: c.hostKey }).toEqual({
        address: "127.0.0.1",
        port: peer.port,
        user: "maxvamp",
        hostKey: peer.hostKey,
      });
      expect(String(receive.create)).toContain(r.stdout(`${name}-backup-ssh-key`).trim().split("\n").pop()!);
      expect(result(0, `${name}-backup-repo`).stdout).toContain(`initialised the repokey repository at ${REPO[name]}`);
      expect(result(0, `${name}-backup-offsite-receive`).stdout).toContain(`borg-${name} receives off-site copies in /srv/borg-offsite/${name}`);
    }
    expect(rounds[0]!.sark.step("sark-alert-webhook").end).toBeLessThanOrEqual(rounds[0]!.sark.step("sark-backup-units").start);
  });

  it("the pass file and the exported key are root-only; the receiving user's key is confined to an append-only borg serve", () => {
    expect(mustRoot(hosts, "sark", "stat -c '%a %U %n' /etc/dgx-storage/borg /etc/dgx-storage/borg/sark.pass /etc/dgx-storage/borg/sark.key")).toBe(
      "700 root /etc/dgx-storage/borg\n600 root /etc/dgx-storage/borg/sark.pass\n600 root /etc/dgx-storage/borg/sark.key\n",
    );
    expect(mustRoot(hosts, "sark", "cat /etc/dgx-storage/borg/sark.pass")).toBe(`${PASSPHRASE}\n`);
    const pub = mustRoot(hosts, "sark", `cat ${OFFSITE_KEY_PATH}.pub`).trim();
    expect(mustRoot(hosts, "clu", "cat /var/lib/borg-sark/.ssh/authorized_keys")).toBe(
      `command="borg serve --append-only --restrict-to-path /srv/borg-offsite/sark",restrict ${pub}\n`,
    );
    expect(mustRoot(hosts, "clu", "stat -c '%a %U' /srv/borg-offsite/sark")).toBe("700 borg-sark\n");
  });

  it("the units passed systemd-analyze verify, and list-timers shows every backup timer with a next run", () => {
    for (const name of ["sark", "clu"] as const) {
      const units = mustRoot(hosts, name, "ls /etc/systemd/system/dgx-backup-*")
        .trim()
        .split("\n")
        .map((p) => path.basename(p));
      expect(units.sort()).toEqual(
        ["daily", ...(name === "sark" ? ["hourly"] : []), "check", "verify", "drill", "offsite", "watch"]
          .flatMap((j) => [`dgx-backup-${j}.service`, `dgx-backup-${j}.timer`])
          .sort(),
      );
      // what install-units.sh ran before installing them, again on the installed files: silent
      expect(
        mustRoot(hosts, name, "cd /etc/systemd/system && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify dgx-backup-*.service dgx-backup-*.timer 2>&1"),
      ).toBe("");
      const timers = mustRoot(hosts, name, "systemctl list-timers --all --no-pager 'dgx-backup-*'");
      for (const u of units.filter((u) => u.endsWith(".timer"))) {
        const line = timers.split("\n").find((l) => l.includes(u));
        expect(line, `${name} ${u}`).toMatch(/^\w{3} \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \w+ /);
      }
    }
  });

  it("round 2 runs nothing and changes nothing under /etc/dgx-storage, /etc/systemd/system, /usr/local/lib/dgx-storage, /var/lib/dgx-storage/borg", async () => {
    const before = { sark: installed("sark"), clu: installed("clu") };
    const t0 = Date.now();
    await converge();
    console.log(`round 2: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(installed("sark")).toBe(before.sark);
    expect(installed("clu")).toBe(before.clu);
    for (const name of ["sark", "clu"] as const) {
      // the same create strings, stdin and triggers in both program runs: every step "same"
      expect(rounds[1]![name].steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    }
  });

  it("the daily service makes an archive; after a change a second; a restore is identical by sha256; the passphrase is not in ps meanwhile", () => {
    // start without waiting, sample every process's argv until the job is over
    const sampled = mustRoot(
      hosts,
      "sark",
      `systemctl start --no-block dgx-backup-daily.service
for i in $(seq 1 100); do [ "$(systemctl is-active dgx-backup-daily.service)" = activating ] && break; sleep 0.02; done
while [ "$(systemctl is-active dgx-backup-daily.service)" = activating ]; do ps -eo args; sleep 0.05; done
systemctl show -p Result --value dgx-backup-daily.service`,
    );
    expect(sampled.trim().split("\n").pop()).toBe("success");
    // the test stack schedules every job yearly: 90% of 366 days over create and prune
    expect(sampled).toMatch(/borg create --json --compression lz4 --lock-wait 14230080 /);
    expect(sampled).not.toContain(PASSPHRASE);
    expect(archives("sark", "sark-daily-*")).toHaveLength(1);
    // the live SQLite file is not archived; its online-backup copy is
    const first = archives("sark", "sark-daily-*")[0]!;
    const listing = mustRoot(hosts, "sark", `${BORG_ENV("sark")} borg list --short ${REPO.sark}::${first}`);
    expect(listing).toContain("var/lib/dgx-storage/sqlite-snapshots/home/maxvamp/chromadb-data/chroma.sqlite3\n");
    expect(listing.split("\n")).not.toContain("home/maxvamp/chromadb-data/chroma.sqlite3");
    expect(listing.split("\n")).toContain("home/maxvamp/chromadb-data");

    mustRoot(hosts, "sark", "sleep 1; echo changed >> /srv/data/hello.txt; head -c 8192 /dev/urandom > /srv/data/sub/new.bin");
    mustRoot(hosts, "sark", "systemctl start dgx-backup-daily.service");
    const names = archives("sark", "sark-daily-*");
    expect(names).toHaveLength(2);
    const status = JSON.parse(mustRoot(hosts, "sark", "cat /var/lib/dgx-storage/backup-status/create-daily.json")) as Record<string, unknown>;
    expect(status).toMatchObject({ job: "create-daily", host: "sark", status: "ok", exit_code: 0, archive: names[1] });
    mustRoot(
      hosts,
      "sark",
      `rm -rf /var/tmp/restore && mkdir /var/tmp/restore && cd /var/tmp/restore && ${BORG_ENV("sark")} borg extract ${REPO.sark}::${names[1]} srv/data`,
    );
    expect(treeHashes("sark", "/var/tmp/restore/srv/data")).toBe(treeHashes("sark", "/srv/data"));
    // the restored SQLite copy opens with every row
    mustRoot(hosts, "sark", `cd /var/tmp/restore && ${BORG_ENV("sark")} borg extract ${REPO.sark}::${names[1]} var/lib/dgx-storage/sqlite-snapshots`);
    expect(
      mustRoot(
        hosts,
        "sark",
        `python3 -c "import sqlite3; print(sqlite3.connect('/var/tmp/restore/var/lib/dgx-storage/sqlite-snapshots/home/maxvamp/chromadb-data/chroma.sqlite3').execute('select count(*) from fixture').fetchone()[0])"`,
      ),
    ).toBe("1000\n");
  });

  it("the monthly restore drill passes on the intact repository", () => {
    mustRoot(hosts, "sark", "systemctl start dgx-backup-drill.service");
    expect(JSON.parse(mustRoot(hosts, "sark", "cat /var/lib/dgx-storage/backup-status/drill-daily.json"))).toMatchObject({ status: "ok" });
    expect(mustRoot(hosts, "sark", "cat /var/lib/dgx-storage/backup-status/drill-daily.json")).toMatch(/\d+ files identical by sha256/);
  });

  it("the weekly off-site copy runs over SSH to clu with the restricted key; a borg delete through it is reverted on the receiving side", () => {
    const t = since("sark");
    const started = asRoot(hosts, "sark", "systemctl start dgx-backup-offsite.service");
    const log = mustRoot(hosts, "sark", `journalctl -t dgx-backup -o cat --no-pager --since @${t}`);
    expect(started.code, log).toBe(0);
    expect(log).toMatch(/sark copy-offsite ok: archive sark-offsite-/);
    expect(mustRoot(hosts, "clu", "stat -c '%U' /srv/borg-offsite/sark/repo/config")).toBe("borg-sark\n");
    const remote = (args: string) => asRoot(hosts, "sark", `${BORG_ENV("sark")} ${OFFSITE_RSH} borg ${args}`);
    const listed = remote(`list --short ${OFFSITE_URL}`);
    expect(listed.code).toBe(0);
    const names = listed.stdout.trim().split("\n");
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^sark-offsite-/);
    // the key reaches nothing else: another path is refused, a shell command runs borg serve instead
    expect(remote("list ssh://borg-sark@172.31.250.11:22/srv/borg/clu").stderr).toContain("not allowed");
    const shell = asRoot(
      hosts,
      "sark",
      `ssh -i ${OFFSITE_KEY_PATH} -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile=/etc/dgx-storage/borg/offsite-known_hosts borg-sark@172.31.250.11 id </dev/null`,
    );
    expect(shell.stdout).not.toMatch(/uid=/);

    // a compromised sark deletes its off-site history and compacts: the client sees it gone...
    const lastGood = Number(/^transaction (\d+),/.exec(mustRoot(hosts, "clu", "tail -n 1 /srv/borg-offsite/sark/repo/transactions"))![1]);
    expect(remote(`delete --glob-archives 'sark-*' ${OFFSITE_URL}`).code).toBe(0);
    remote(`compact ${OFFSITE_URL}`);
    expect(remote(`list --short ${OFFSITE_URL}`).stdout.trim()).toBe("");
    // ...but append-only kept every segment: the receiving operator rolls back to the last
    // transaction before the deletion (borg docs, "append-only mode"; README "Backups with borg")
    mustRoot(
      hosts,
      "clu",
      `set -e; cd /srv/borg-offsite/sark/repo
for seg in data/*/*; do n=$(basename "$seg"); if [ "$n" -gt ${lastGood} ]; then rm -f "$seg"; fi; done
rm -f index.* hints.* integrity.*`,
    );
    const back = mustRoot(
      hosts,
      "clu",
      `set -e; d=$(mktemp -d); umask 077; cat > $d/pass; BORG_BASE_DIR=$d/borg BORG_PASSCOMMAND="cat $d/pass" borg list --short /srv/borg-offsite/sark/repo; rm -rf $d`,
      `${PASSPHRASE}\n`,
    );
    expect(back.trim().split("\n")).toEqual(names);
  });

  it("the sentinel passphrase is nowhere but the pass file: no unit file, no journal field, no command string", () => {
    for (const name of ["sark", "clu"] as const) {
      expect(mustRoot(hosts, name, `grep -rlsF -- '${PASSPHRASE}' /etc /usr/local /var/lib/dgx-storage || true`)).toBe(`/etc/dgx-storage/borg/${name}.pass\n`);
      // every field of every journal entry (messages, _CMDLINE of each logger, unit names)
      expect(mustRoot(hosts, name, `journalctl --no-pager -o export | grep -acF -- '${PASSPHRASE}' || true`).trim()).toBe("0");
      for (const round of rounds) {
        for (const c of round[name].run.ofType("command:remote:Command")) {
          expect(String(c.inputs.create), c.name).not.toContain(PASSPHRASE);
          expect(String(c.inputs.delete ?? ""), c.name).not.toContain(PASSPHRASE);
          if (c.name === `${name}-backup-repo`) expect(c.inputs.stdin).toBe(`${PASSPHRASE}\n`);
          else expect(String(c.inputs.stdin ?? ""), c.name).not.toContain(PASSPHRASE);
        }
      }
    }
  });

  it("a corrupted segment: borg check --verify-data and the restore drill fail, the alert fires (journal tag dgx-backup, webhook)", () => {
    // flip bytes in the middle of the largest segment (file data: big.bin dominates it)
    mustRoot(
      hosts,
      "sark",
      `python3 - <<'EOF'
import glob, os
seg = max(glob.glob("${REPO.sark}/data/*/*"), key=os.path.getsize)
with open(seg, "r+b") as f:
    f.seek(os.path.getsize(seg) // 2); b = f.read(64); f.seek(-64, 1); f.write(bytes(x ^ 0xFF for x in b))
EOF`,
    );
    const t = since("sark");
    expect(asRoot(hosts, "sark", "systemctl start dgx-backup-verify.service").code).not.toBe(0);
    expect(JSON.parse(mustRoot(hosts, "sark", "cat /var/lib/dgx-storage/backup-status/check-verify-data.json"))).toMatchObject({ status: "error" });
    expect(asRoot(hosts, "sark", "systemctl start dgx-backup-drill.service").code).not.toBe(0);
    const journal = mustRoot(hosts, "sark", `journalctl -t dgx-backup -p err -o cat --no-pager --since @${t}`);
    expect(journal).toMatch(/sark check-verify-data FAILED; borg check --verify-data found errors/);
    expect(journal).toMatch(/sark drill-daily FAILED/);
    const received = receiver.received();
    expect(received).toMatch(/^\/alerts\/e2e-backup sark check-verify-data FAILED/m);
    expect(received).not.toContain(PASSPHRASE);
  });
});
