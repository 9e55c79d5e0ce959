import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseHostConfig } from "../../components/config";
import { bundledScript, CARRIED_FILES, SCRIPTS_DIR, scriptCommand, shq } from "../../components/render/command";
import { daemonJsonFragment, renderJson } from "../../components/render/daemon-json";
import { MANAGED_HEADER, parseSysctl, renderSysctl } from "../../components/render/sysctl";
import { validConfig, withValue } from "../fixtures";

const settingsOf = (c: Record<string, unknown>) => parseHostConfig(c, { source: "fixture" }).docker.daemon;

describe("daemon.json fragment", () => {
  it("round-trips: the text parses back to the typed fragment", () => {
    const fragment = daemonJsonFragment(settingsOf(validConfig()));
    expect(JSON.parse(renderJson(fragment))).toEqual(fragment);
  });

  it("sets overlay2, bounded json-file logs with string values, and live-restore off", () => {
    const parsed = JSON.parse(renderJson(daemonJsonFragment(settingsOf(validConfig()))));
    expect(parsed["storage-driver"]).toBe("overlay2");
    expect(parsed["log-driver"]).toBe("json-file");
    // dockerd rejects numbers in log-opts ("json: cannot unmarshal number into Go value of type string")
    expect(parsed["log-opts"]).toEqual({ "max-size": "100m", "max-file": "5" });
    expect(parsed["live-restore"]).toBe(false);
  });

  it("leaves log-opts out for drivers that do not take max-size/max-file", () => {
    const parsed = JSON.parse(renderJson(daemonJsonFragment(settingsOf(withValue(validConfig(), "docker.daemon.logDriver", "journald")))));
    expect(parsed).not.toHaveProperty("log-opts");
  });

  it("is stable: keys sorted at every level, trailing newline", () => {
    const text = renderJson({ b: 1, a: { d: 1, c: 2 } });
    expect(text).toBe('{\n  "a": {\n    "c": 2,\n    "d": 1\n  },\n  "b": 1\n}\n');
    expect(renderJson(daemonJsonFragment(settingsOf(validConfig())))).toMatchSnapshot();
  });
});

describe("sysctl.d file", () => {
  const settings = { "vm.vfs_cache_pressure": 50, "vm.swappiness": 10 };

  it("round-trips through the parser", () => {
    expect(parseSysctl(renderSysctl(settings))).toEqual({ "vm.swappiness": "10", "vm.vfs_cache_pressure": "50" });
  });

  it("starts with the managed-by header and sorts the keys", () => {
    const lines = renderSysctl(settings).trimEnd().split("\n");
    expect(lines).toEqual([MANAGED_HEADER, "vm.swappiness = 10", "vm.vfs_cache_pressure = 50"]);
    expect(renderSysctl(settings)).toMatchSnapshot();
  });
});

describe("command strings", () => {
  it("quotes any argument as one shell word", () => {
    for (const s of ["plain", "with space", "it's", '{"a":"b c"}', "$(reboot)", "a\nb", ""]) {
      expect(execFileSync("bash", ["-c", `printf %s ${shq(s)}`]).toString()).toBe(s);
    }
  });

  it("runs the bundled script (lib.sh included) with its arguments, exactly as a host would", () => {
    const cmd = scriptCommand("daemon-json-merge", ["bogus-mode"], { sudo: false });
    let stderr = "";
    try {
      execFileSync("bash", ["-c", cmd], { stdio: "pipe" });
    } catch (e) {
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(stderr).toContain("daemon-json-merge: error: usage: daemon-json-merge.sh apply");
  });

  it("prefixes sudo -n only when asked, and carries no shebang or source line of its own", () => {
    expect(scriptCommand("sysctl-apply", [], { sudo: true })).toMatch(/^sudo -n bash -c '/);
    expect(scriptCommand("sysctl-apply", [], { sudo: false })).toMatch(/^bash -c '/);
    const text = bundledScript("sysctl-apply");
    expect(text.match(/^#!/gm)).toHaveLength(1); // lib.sh's only
    expect(text).toContain("dgx_lib_loaded() { :; }");
  });

  it("GIVEN borg-run.sh, a file per command over borg-run-lib.sh and backup-alert.sh THEN its bundle carries each once, without their shebangs, and every command it dispatches has its file", () => {
    const files = fs
      .readdirSync(SCRIPTS_DIR)
      .filter((f) => /^borg-run-.*\.sh$/.test(f))
      .sort();
    // and the alert it shares with cloud-copy.sh
    const sourced = [...files, "backup-alert.sh"].sort();
    expect([...(CARRIED_FILES["borg-run"] ?? [])].filter((f) => f.endsWith(".sh")).sort()).toEqual(sourced);
    expect(CARRIED_FILES["cloud-copy"]).toContain("backup-alert.sh");
    const text = bundledScript("borg-run");
    expect(text.match(/^#!/gm)).toHaveLength(1);
    for (const f of sourced) expect(text.split(fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8").replace(/^#!.*\n/, ""))).toHaveLength(2);
    const commands = ["create", "prune", "check", "drill", "copy-offsite", "watch"];
    expect(fs.readFileSync(path.join(SCRIPTS_DIR, "borg-run.sh"), "utf8")).toContain(commands.join("|"));
    expect(files).toEqual(["borg-run-lib.sh", ...commands.map((c) => `borg-run-${c}.sh`)].sort());
    // the bundle, away from any checkout, defines every command's function before it dispatches
    const r = spawnSync(
      "bash",
      [
        "-c",
        `${text.replace(/\n"run_\$\{command\/\/-\/_\}" "\$@"\n$/, "\n")}\ndeclare -F ${commands.map((c) => `run_${c.replace(/-/g, "_")}`).join(" ")}`,
        "borg-run",
        "--repo",
        "/r",
        "--host",
        "sark",
        "check",
      ],
      {
        env: { ...process.env, BORG_PASSCOMMAND: "true", DRY_RUN: "1" },
        cwd: "/",
        encoding: "utf8",
      },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(commands.map((c) => `run_${c.replace(/-/g, "_")}`));
  });
});
