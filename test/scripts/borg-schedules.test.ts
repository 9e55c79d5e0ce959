import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { makeRoot, runScript, snapshotTree } from "./run";

const NAME = "borg-schedules";
const REPO = "/mnt/borg-backup";

/** A host as the plan leaves it: a root crontab calling a script with the passphrase in it, and other jobs. */
function handMadeHost(): string {
  return makeRoot({
    "home/maxvamp/borg-daily.sh": `#!/bin/bash\nexport BORG_PASSPHRASE='secure-backup-password'\nborg create --compression lz4 ${REPO}::daily-{now} /data/enhanced\n`,
    "var/spool/cron/crontabs/root": [
      "# m h dom mon dow command",
      "MAILTO=root",
      "0 2 * * * /home/maxvamp/borg-daily.sh",
      "30 3 * * 0 borg prune --keep-daily=7 --keep-weekly=4 --keep-monthly=6 /mnt/borg-backup",
      "*/5 * * * * /usr/local/bin/unrelated.sh",
      "",
    ].join("\n"),
    "etc/crontab": "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    "etc/cron.d/borg-check": `0 5 * * 3 root borg check ${REPO}\n`,
    "etc/cron.d/other-repo": "0 5 * * 3 root borg check /srv/another-repo\n",
    "etc/systemd/system/borg-weekly.timer": "[Timer]\nOnCalendar=weekly\n",
    "etc/systemd/system/borg-weekly.service": `[Service]\nExecStart=/usr/bin/borg create ${REPO}::weekly-{now} /data\n`,
    // this project's own units never count
    "etc/systemd/system/dgx-backup-daily.timer": "[Timer]\nOnCalendar=daily\n",
    "etc/systemd/system/dgx-backup-daily.service": `[Service]\nExecStart=/bin/bash /usr/local/lib/dgx-storage/borg-run.sh --repo ${REPO} create daily /data\n`,
  });
}

function cronDailyScript(root: string): string {
  const p = path.join(root, "etc/cron.daily/borg");
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, `#!/bin/sh\nborg create ${REPO}::cron-{now} /data\n`, { mode: 0o755 });
  return p;
}

describe("borg-schedules.sh", () => {
  it("GIVEN the jobs made by hand THEN report lists each one that runs borg on the repository, names the clear passphrase, and changes nothing", () => {
    const root = handMadeHost();
    cronDailyScript(root);
    const before = snapshotTree(root);
    const r = runScript(NAME, ["report", REPO], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter(Boolean)).toEqual(
      [
        "/var/spool/cron/crontabs/root line 3: 0 2 * * * /home/maxvamp/borg-daily.sh (the borg passphrase is in clear in /home/maxvamp/borg-daily.sh)",
        "/var/spool/cron/crontabs/root line 4: 30 3 * * 0 borg prune --keep-daily=7 --keep-weekly=4 --keep-monthly=6 /mnt/borg-backup",
        "/etc/cron.d/borg-check line 1: 0 5 * * 3 root borg check /mnt/borg-backup",
        "/etc/cron.daily/borg: run by run-parts (cron.daily)",
        "/etc/systemd/system/borg-weekly.timer: ExecStart=/usr/bin/borg create /mnt/borg-backup::weekly-{now} /data",
      ].sort((a, b) => order(a) - order(b)),
    );
    expect(r.stderr).toContain("warning: 5 backup job(s) made by hand run borg on /mnt/borg-backup beside this stack's units");
    expect(r.stderr).toContain("backup.existingJobs: disable");
    expect(snapshotTree(root)).toEqual(before);
  });

  it("GIVEN disable THEN each job is switched off, a copy of each file is kept, the others stay; a second run finds nothing and changes nothing", () => {
    const root = handMadeHost();
    const script = cronDailyScript(root);
    const r = runScript(NAME, ["disable", REPO], { ROOT: root });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter(Boolean)).toHaveLength(5);
    const crontab = fs.readFileSync(path.join(root, "var/spool/cron/crontabs/root"), "utf8").split("\n");
    expect(crontab[2]).toMatch(
      /^# disabled by dgx-storage \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(it ran borg on \/mnt\/borg-backup beside the stack's units\): 0 2 \* \* \* \/home\/maxvamp\/borg-daily\.sh$/,
    );
    expect(crontab[3]).toMatch(/^# disabled by dgx-storage .*: 30 3 \* \* 0 borg prune/);
    expect(crontab[4]).toBe("*/5 * * * * /usr/local/bin/unrelated.sh");
    expect(crontab[1]).toBe("MAILTO=root");
    expect(fs.readFileSync(path.join(root, "etc/cron.d/borg-check"), "utf8")).toMatch(
      /^# disabled by dgx-storage .*: 0 5 \* \* 3 root borg check \/mnt\/borg-backup\n$/,
    );
    expect(fs.readFileSync(path.join(root, "etc/cron.d/other-repo"), "utf8")).toBe("0 5 * * 3 root borg check /srv/another-repo\n");
    expect(fs.statSync(script).mode & 0o111).toBe(0);
    expect(fs.existsSync(script)).toBe(true);
    const copies = fs.readdirSync(path.join(root, "var/lib/dgx-storage/backups"));
    expect(copies.filter((c) => c.startsWith("root."))).toHaveLength(1);
    expect(copies.filter((c) => c.startsWith("borg-check."))).toHaveLength(1);
    expect(
      fs.readFileSync(
        path.join(
          root,
          "var/lib/dgx-storage/backups",
          copies.find((c) => c.startsWith("root."))!,
        ),
        "utf8",
      ),
    ).toContain("\n0 2 * * * /home/maxvamp/borg-daily.sh\n");
    // the timer: ROOT is set, so systemctl is not called here (the rehearsal on a test host does it)
    const before = snapshotTree(root);
    const again = runScript(NAME, ["disable", REPO], { ROOT: root });
    expect(again.code).toBe(0);
    expect(again.stdout.split("\n").filter((l) => l !== "" && !l.includes("borg-weekly"))).toEqual([]);
    expect(snapshotTree(root)).toEqual(before);
  });

  it("GIVEN no job made by hand THEN nothing is printed", () => {
    const root = makeRoot({ "etc/crontab": "17 * * * * root run-parts /etc/cron.hourly\n" });
    const r = runScript(NAME, ["report", REPO], { ROOT: root });
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it.each([
    [["report"], "usage: borg-schedules.sh report|disable <repository path>"],
    [["remove", REPO], "usage: borg-schedules.sh report|disable <repository path>"],
    [["report", "relative/repo"], "the repository must be an absolute path"],
  ])("%j -> %s", (args, message) => {
    const r = runScript(NAME, args, { ROOT: makeRoot() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
  });
});

/** The script's order: crontabs (/etc/crontab, cron.d, then user crontabs), cron.<period> scripts, timers. */
function order(line: string): number {
  if (line.startsWith("/etc/crontab")) return 0;
  if (line.startsWith("/etc/cron.d/")) return 1;
  if (line.startsWith("/var/spool/cron/")) return 2;
  if (line.startsWith("/etc/cron.")) return 3;
  return 4;
}
