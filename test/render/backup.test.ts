import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { itWith } from "../tools";
import {
  backupUnitSet,
  calendarPeriodSeconds,
  execWord,
  lockWaitSeconds,
  maxAgeSeconds,
  offsiteAuthorizedKey,
  offsiteKnownHosts,
  repoSetupArgs,
  type BackupPlan,
} from "../../components/render/backup";
import { bundledScript } from "../../components/render/command";
import { parseUnit } from "../../components/render/systemd";

const PLAN: BackupPlan = {
  host: "sark",
  repoName: "sark",
  repoPath: "/mnt/borg-backup",
  dailyPaths: ["/data/chroma", "/home/maxvamp/chromadb-data", "/var/lib/docker/volumes/backup-data/_data"],
  hourlyPaths: ["/data/chroma"],
  sqliteDatabases: ["/data/chroma/chroma.sqlite3"],
  dailyRetention: { daily: 7, weekly: 4, monthly: 6 },
  hourlyRetention: { hourly: 24 },
  offsite: {
    user: "borg-sark",
    host: "192.0.2.71",
    port: 22,
    repoPath: "/srv/borg-offsite/sark",
    sshKeyPath: "/etc/dgx-storage/borg/offsite_ed25519",
    hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2WafrCFvAfp/FX1f23NkOXCpaEuVtFyB30ZFYKH9LA",
  },
};

const set = backupUnitSet(PLAN);
const file = (p: string) => set.files.find((f) => f.path === p)!;
const unit = (name: string) => file(`/etc/systemd/system/${name}`).content;
const BIN = "/bin/bash /usr/local/lib/dgx-storage/borg-run.sh";
const OPTS = "--repo /mnt/borg-backup --host sark --growth-factor 4";
/** The command line of a job whose borg commands wait up to `lockWait` s for the repository lock. */
const RUN = (lockWait: number) => `${BIN} --lock-wait ${lockWait} ${OPTS}`;
/** 90% of the period over the job's borg commands: daily and hourly run create and prune. */
const WAIT = { daily: 38_880, hourly: 1_620, weekly: 544_320, monthly: 2_410_560 };

describe("backupUnitSet", () => {
  it("declares a service and a timer per job, the helper and the known_hosts file; enables the timers", () => {
    expect(set.files.map((f) => `${f.path} ${f.mode}`)).toEqual([
      "/etc/dgx-storage/borg/offsite-known_hosts 0644",
      ...["daily", "hourly", "check", "verify", "drill", "offsite", "watch"].flatMap((j) => [
        `/etc/systemd/system/dgx-backup-${j}.service 0644`,
        `/etc/systemd/system/dgx-backup-${j}.timer 0644`,
      ]),
      "/usr/local/lib/dgx-storage/borg-run.sh 0755",
    ]);
    expect(set.enable).toEqual(["daily", "hourly", "check", "verify", "drill", "offsite", "watch"].map((j) => `dgx-backup-${j}.timer`));
    // missed schedules: every job watched, allowed its period plus half of it (at least 2 h)
    expect(unit("dgx-backup-watch.service")).toContain(
      `\nExecStart=${BIN} ${OPTS} watch create-daily=129600 create-hourly=10800 check=907200 check-verify-data=4017600 drill-daily=4017600 copy-offsite=907200\n`,
    );
    expect(unit("dgx-backup-watch.timer")).toContain("\nOnCalendar=hourly\n");
    expect(file("/usr/local/lib/dgx-storage/borg-run.sh").content).toBe(bundledScript("borg-run"));
    expect(file("/etc/dgx-storage/borg/offsite-known_hosts").content).toBe(`192.0.2.71 ${PLAN.offsite!.hostKey}\n`);
  });

  it("round-trips the daily service through parseUnit", () => {
    expect(parseUnit(unit("dgx-backup-daily.service"))).toEqual([
      ["Unit", [["Description", "borg backup, daily series (sark)"]]],
      [
        "Service",
        [
          ["Type", "oneshot"],
          ["Environment", '"BORG_PASSCOMMAND=cat /etc/dgx-storage/borg/sark.pass"'],
          ["Environment", "BORG_BASE_DIR=/var/lib/dgx-storage/borg"],
          [
            "ExecStart",
            `${RUN(WAIT.daily)} create daily --sqlite /data/chroma/chroma.sqlite3 /data/chroma /home/maxvamp/chromadb-data /var/lib/docker/volumes/backup-data/_data`,
          ],
          ["ExecStart", `${RUN(WAIT.daily)} prune daily --keep-daily=7 --keep-weekly=4 --keep-monthly=6`],
          ["SyslogIdentifier", "dgx-backup"],
          ["Nice", "19"],
          ["CPUSchedulingPolicy", "batch"],
          ["IOSchedulingClass", "idle"],
          ["PrivateTmp", "yes"],
        ],
      ],
    ]);
  });

  it("targets: the hourly series keeps 24 hourly; timers are persistent with a random delay; the off-site job waits for the network", () => {
    expect(unit("dgx-backup-hourly.service")).toContain(`\nExecStart=${RUN(WAIT.hourly)} create hourly --sqlite /data/chroma/chroma.sqlite3 /data/chroma\n`);
    expect(unit("dgx-backup-hourly.service")).toContain(`\nExecStart=${RUN(WAIT.hourly)} prune hourly --keep-hourly=24\n`);
    expect(unit("dgx-backup-daily.timer")).toContain(
      "\n[Timer]\nOnCalendar=*-*-* 02:00:00\nPersistent=yes\nRandomizedDelaySec=30m\n\n[Install]\nWantedBy=timers.target\n",
    );
    expect(unit("dgx-backup-hourly.timer")).toContain("\nOnCalendar=hourly\n");
    expect(unit("dgx-backup-verify.service")).toContain(`\nExecStart=${RUN(WAIT.monthly)} check --verify-data\n`);
    expect(unit("dgx-backup-verify.timer")).toContain("\nOnCalendar=*-*-01 05:00:00\n");
    expect(unit("dgx-backup-drill.service")).toContain(`\nExecStart=${RUN(WAIT.monthly)} drill daily --sample 200\n`);
    expect(unit("dgx-backup-check.service")).toContain(`\nExecStart=${RUN(WAIT.weekly)} check\n`);
    const offsite = unit("dgx-backup-offsite.service");
    expect(offsite).toContain("\nWants=network-online.target\nAfter=network-online.target\n");
    expect(offsite).toContain(
      "\nExecStart=/bin/bash /usr/local/lib/dgx-storage/borg-run.sh --lock-wait 544320 --repo ssh://borg-sark@192.0.2.71:22/srv/borg-offsite/sark --host sark --growth-factor 4 copy-offsite /etc/dgx-storage/borg/offsite_ed25519 /etc/dgx-storage/borg/offsite-known_hosts --sqlite /data/chroma/chroma.sqlite3 /data/chroma /home/maxvamp/chromadb-data /var/lib/docker/volumes/backup-data/_data\n",
    );
    for (const f of set.files.filter((x) => x.path.endsWith(".service"))) {
      expect(f.content.split("\n")[0]).toMatch(/^# Managed by dgx-storage/);
      expect(f.content).toContain("\nNice=19\nCPUSchedulingPolicy=batch\nIOSchedulingClass=idle\n");
      // the command that reads the passphrase, never the passphrase itself
      expect(f.content, f.path).not.toContain("BORG_PASSPHRASE=");
    }
  });

  it("leaves out the hourly and off-site parts when the plan has none", () => {
    const small = backupUnitSet({ ...PLAN, hourlyPaths: [], offsite: undefined });
    expect(small.enable).toEqual([
      "dgx-backup-daily.timer",
      "dgx-backup-check.timer",
      "dgx-backup-verify.timer",
      "dgx-backup-drill.timer",
      "dgx-backup-watch.timer",
    ]);
    expect(small.files.some((f) => f.path.startsWith("/etc/dgx-storage/"))).toBe(false);
  });

  it("escapes systemd's specials in ExecStart words and refuses what cannot be a path", () => {
    expect(execWord("/data/100%/$HOME dir")).toBe('"/data/100%%/$$HOME dir"');
    expect(execWord("--keep-daily=7")).toBe("--keep-daily=7");
    expect(() => backupUnitSet({ ...PLAN, dailyPaths: ["data/relative"] })).toThrow(/absolute path/);
    expect(() => backupUnitSet({ ...PLAN, dailyRetention: {} })).toThrow(/at least one keep number/);
  });

  it("matches the snapshot (for review)", () => {
    expect(set.files.filter((f) => !f.path.endsWith(".sh"))).toMatchSnapshot();
  });

  itWith({ tools: ["systemd-analyze"] }, "passes systemd-analyze verify with no warning", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-units-"));
    const names: string[] = [];
    for (const f of set.files.filter((x) => x.path.startsWith("/etc/systemd/system/"))) {
      const name = path.basename(f.path);
      fs.writeFileSync(path.join(dir, name), f.content);
      names.push(name);
    }
    const r = spawnSync("systemd-analyze", ["verify", ...names.map((n) => `./${n}`)], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, SYSTEMD_LOG_LEVEL: "notice" },
    });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("repository set-up", () => {
  it("repoSetupArgs is apply, the repository name and its path", () => {
    expect(repoSetupArgs(PLAN)).toEqual(["apply", "sark", "/mnt/borg-backup"]);
  });
});

describe("off-site helpers", () => {
  it("offsiteAuthorizedKey forces an append-only, path-restricted borg serve", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2WafrCFvAfp/FX1f23NkOXCpaEuVtFyB30ZFYKH9LA dgx-backup@sark";
    expect(offsiteAuthorizedKey(`${key}\n`, "/srv/borg-offsite/sark")).toBe(
      `command="borg serve --append-only --restrict-to-path /srv/borg-offsite/sark",restrict ${key}`,
    );
    expect(() => offsiteAuthorizedKey("ssh-ed25519 AAAA\ncommand=x", "/srv/x")).toThrow(/public key/);
    expect(() => offsiteAuthorizedKey(key, "/srv/x y")).toThrow(/absolute and plain/);
  });

  it("offsiteKnownHosts uses the [host]:port form off port 22", () => {
    expect(offsiteKnownHosts({ ...PLAN.offsite!, port: 2222 })).toBe(`[192.0.2.71]:2222 ${PLAN.offsite!.hostKey}\n`);
  });
});

describe("missed-schedule periods", () => {
  it.each([
    ["hourly", 3600],
    ["*-*-* 02:00:00", 86400],
    ["Sun *-*-* 04:00:00", 7 * 86400],
    ["*-*-15 05:00:00", 31 * 86400],
    ["*-01-01 04:00:00", 366 * 86400],
    ["Mon..Fri *-*-* 02:00", undefined],
  ])("%s has a period of %s s", (calendar, period) => {
    expect(calendarPeriodSeconds(calendar)).toBe(period);
  });

  it("lets a job wait for the repository lock for 90% of its period over its borg commands, at least 600 s", () => {
    expect(lockWaitSeconds("hourly", 2)).toBe(1620);
    expect(lockWaitSeconds("*-*-* 02:00:00", 2)).toBe(38_880);
    expect(lockWaitSeconds("*-*-* *:30", 6)).toBe(600);
    // a schedule whose period is not known is taken as hourly
    expect(lockWaitSeconds("Mon..Fri *-*-* 02:00", 1)).toBe(3240);
  });

  it("allows a period and a half, at least two hours", () => {
    expect(maxAgeSeconds(3600)).toBe(3 * 3600);
    expect(maxAgeSeconds(86400)).toBe(36 * 3600);
  });
});
