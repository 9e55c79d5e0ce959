import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { describeWith } from "../tools";
import { makeRoot, runScript } from "./run";

const NAME = "fstrim-once";

/** Stub fstrim and mountpoint: mount points are the directories holding a ".mnt" marker. */
function stubs(): { bin: string; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fstrim-stubs-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  const log = path.join(dir, "fstrim.calls");
  const put = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  put("mountpoint", `[[ -e "\${!#}/.mnt" ]]`);
  put(
    "fstrim",
    `m="\${!#}"; printf '%s\\n' "$*" >>"${log}"
case "$m" in
*tmpfs*) echo "fstrim: $m: the discard operation is not supported" >&2; exit 1 ;;
*broken*) echo "fstrim: $m: FITRIM ioctl failed: Input/output error" >&2; exit 1 ;;
*) echo "$m: 1.2 GiB (1288490188 bytes) trimmed" ;;
esac`,
  );
  return { bin, log };
}

function root(...mounts: string[]): string {
  return makeRoot(Object.fromEntries(mounts.map((m) => [`${m.slice(1)}/.mnt`, ""])));
}

describe("fstrim-once.sh", () => {
  it("GIVEN two data mounts THEN trims each once with -v and prints fstrim's report without the ROOT prefix", () => {
    const { bin, log } = stubs();
    const r = runScript(NAME, ["/data/chroma", "/data/memory"], { ROOT: root("/data/chroma", "/data/memory"), PATH: `${bin}:${process.env.PATH}` });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("fstrim-once: /data/chroma: 1.2 GiB (1288490188 bytes) trimmed\nfstrim-once: /data/memory: 1.2 GiB (1288490188 bytes) trimmed\n");
    expect(
      fs
        .readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => l.replace(/ \S+\/data/, " <root>/data")),
    ).toEqual(["-v -- <root>/data/chroma", "-v -- <root>/data/memory"]);
  });

  it("GIVEN a filesystem without discard THEN a clear message and success", () => {
    const { bin } = stubs();
    const r = runScript(NAME, ["/data/tmpfs", "/data/models"], { ROOT: root("/data/tmpfs", "/data/models"), PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "fstrim-once: /data/tmpfs: not trimmed, its filesystem or device does not support discard (fstrim: the discard operation is not supported)\n",
    );
    expect(r.stdout).toContain("/data/models: 1.2 GiB");
  });

  it("GIVEN another fstrim failure THEN the others are still trimmed and the run fails naming it", () => {
    const { bin } = stubs();
    const r = runScript(NAME, ["/data/broken", "/data/models"], { ROOT: root("/data/broken", "/data/models"), PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("warning: fstrim -v /data/broken failed: fstrim:");
    expect(r.stderr).toContain("FITRIM ioctl failed: Input/output error");
    expect(r.stdout).toContain("/data/models: 1.2 GiB");
  });

  it("GIVEN a path that is not a mount point THEN an error before anything is trimmed", () => {
    const { bin, log } = stubs();
    const rt = root("/data/chroma");
    fs.mkdirSync(path.join(rt, "data/plain"));
    const r = runScript(NAME, ["/data/chroma", "/data/plain"], { ROOT: rt, PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: \/data\/plain is not a mount point on .* \(fstrim trims whole filesystems: give the mount point, see findmnt -T \/data\/plain\)/,
    );
    expect(fs.existsSync(log)).toBe(false);
    expect(runScript(NAME, ["/nope"], { ROOT: rt, PATH: `${bin}:${process.env.PATH}` }).stderr).toContain("/nope does not exist");
    expect(runScript(NAME, []).stderr).toContain("usage: fstrim-once.sh <mount>...");
    expect(runScript(NAME, ["data"]).stderr).toContain("'data' is not an absolute path");
  });

  it("DRY_RUN=1 trims nothing", () => {
    const { bin, log } = stubs();
    const r = runScript(NAME, ["/data/chroma"], { ROOT: root("/data/chroma"), PATH: `${bin}:${process.env.PATH}`, DRY_RUN: "1" });
    expect(r.stdout).toBe("fstrim-once: dry run: would run fstrim -v /data/chroma\n");
    expect(fs.existsSync(log)).toBe(false);
  });
});

describeWith({ tools: ["losetup", "mkfs.ext4", "fstrim"], root: true }, "fstrim-once.sh on real filesystems (root only)", () => {
  it("GIVEN a loop-mounted ext4 and a tmpfs THEN the ext4 is trimmed and the tmpfs reported as unsupported", () => {
    const rt = makeRoot();
    const img = path.join(rt, "fs.img");
    const sh = (cmd: string) => {
      const r = spawnSync("bash", ["-c", cmd], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };
    fs.mkdirSync(path.join(rt, "data/ext"), { recursive: true });
    fs.mkdirSync(path.join(rt, "data/tmpfs"), { recursive: true });
    sh(`truncate -s 32M ${img} && mkfs.ext4 -q -F ${img} && mount -o loop ${img} ${rt}/data/ext && mount -t tmpfs -o size=4m tmpfs ${rt}/data/tmpfs`);
    try {
      const r = runScript(NAME, ["/data/ext", "/data/tmpfs"], { ROOT: rt });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^fstrim-once: \/data\/ext: [\d.]+ MiB \(\d+ bytes\) trimmed\n/);
      expect(r.stdout).toContain("/data/tmpfs: not trimmed, its filesystem or device does not support discard");
    } finally {
      sh(`umount ${rt}/data/ext ${rt}/data/tmpfs`);
    }
  });
});
