import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadStackFile, parseHostConfig, parseStackConfig, UNPINNED_HOST_KEY, type RawConfigValue } from "../../components/config";
import { FIXTURE_HOST_KEY, validConfig, withValue } from "../fixtures";
import { REPO } from "../harness";

const SOURCE = "Pulumi.fixture.yaml";
const parse = (values: Record<string, unknown>, mode: "preview" | "apply" = "preview") => parseHostConfig(values, { source: SOURCE, mode });

function problemsOf(values: Record<string, unknown>, mode: "preview" | "apply" = "preview"): string {
  try {
    parse(values, mode);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message;
  }
  throw new Error("the config was accepted");
}

describe("config door: accepted", () => {
  it("GIVEN the fixture THEN it parses with defaults filled and sudo derived from the user", () => {
    const c = parse(validConfig());
    expect(c.host.sudo).toBe(true);
    expect(c.host.ssh.hostKey).toBe(FIXTURE_HOST_KEY);
    expect(c.docker.daemon).toEqual({ storageDriver: "overlay2", logDriver: "json-file", logOpts: { maxSize: "100m", maxFile: 5 }, liveRestore: false });
  });

  it("fills the documented defaults when optional sections are left out", () => {
    const c = parse({ host: { name: "clu", address: "clu.lan", ssh: { user: "root", hostKey: FIXTURE_HOST_KEY } } });
    expect(c.host.ssh.port).toBe(22);
    expect(c.host.sudo).toBe(false);
    expect(c.docker.daemon.storageDriver).toBe("overlay2");
    expect(c.docker.daemon.logOpts).toEqual({ maxSize: "100m", maxFile: 5 });
    expect(c.sysctl).toEqual({ "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 });
    expect(c.swarm).toBeUndefined();
  });

  it("drops the comment of a pasted host key line", () => {
    const c = parse(withValue(validConfig(), "host.ssh.hostKey", `${FIXTURE_HOST_KEY} root@sark`));
    expect(c.host.ssh.hostKey).toBe(FIXTURE_HOST_KEY);
  });

  it("returns a deeply frozen object", () => {
    const c = parse(validConfig());
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.host.ssh)).toBe(true);
    expect(Object.isFrozen(c.capacity!.disks[0])).toBe(true);
  });

  it.each(["Pulumi.sark.yaml", "Pulumi.clu.yaml"])("accepts the real stack file %s with the plan's values", (file) => {
    const c = loadStackFile(path.join(REPO, file));
    const isSark = file.includes("sark");
    expect(c.host.name).toBe(isSark ? "sark" : "clu");
    expect(c.host.address).toBe(isSark ? "192.168.68.69" : "192.168.68.71");
    expect(c.swarm?.role).toBe(isSark ? "manager" : "worker");
    expect(c.sysctl).toEqual({ "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 });
    const primary = c.capacity!.disks.find((d) => d.name === "primary")!;
    expect([primary.sizeTB, primary.usedTB]).toEqual(isSark ? [3.7, 1.9] : [3.7, 1.3]);
  });

  it("accepts an unpinned host key for preview but refuses it for apply, saying how to pin it", () => {
    const unpinned = withValue(validConfig(), "host.ssh.hostKey", UNPINNED_HOST_KEY);
    expect(parse(unpinned).host.ssh.hostKey).toBe(UNPINNED_HOST_KEY);
    const msg = problemsOf(unpinned, "apply");
    expect(msg).toContain("host.ssh.hostKey");
    expect(msg).toContain("ssh-keyscan -t ed25519 -p 22 192.0.2.10");
  });
});

// Each case: a change to the valid fixture, the key path the message must name, and a piece of
// the expected text.
const REJECTED: [string, (c: Record<string, unknown>) => Record<string, unknown>, string, string][] = [
  ["missing address", (c) => withValue(c, "host.address", undefined), "host.address", "(missing)"],
  ["address with a bad octet", (c) => withValue(c, "host.address", "192.168.68.300"), "host.address", "IPv4"],
  ["address with a space", (c) => withValue(c, "host.address", "sark lan"), "host.address", "DNS name"],
  ["port 0", (c) => withValue(c, "host.ssh.port", 0), "host.ssh.port", "1 to 65535"],
  ["port 70000", (c) => withValue(c, "host.ssh.port", 70000), "host.ssh.port", "1 to 65535"],
  ["port as a string", (c) => withValue(c, "host.ssh.port", "22"), "host.ssh.port", "number"],
  ["port not whole", (c) => withValue(c, "host.ssh.port", 22.5), "host.ssh.port", "whole number"],
  ["user with capitals", (c) => withValue(c, "host.ssh.user", "MaxVamp"), "host.ssh.user", "POSIX user"],
  ["missing user", (c) => withValue(c, "host.ssh.user", undefined), "host.ssh.user", "(missing)"],
  ["host name with underscore", (c) => withValue(c, "host.name", "dgx_1"), "host.name", "lower-case host name"],
  ["host key of an unknown type", (c) => withValue(c, "host.ssh.hostKey", "ssh-dss AAAAB3NzaC1kc3M="), "host.ssh.hostKey", "OpenSSH public host key"],
  ["host key truncated", (c) => withValue(c, "host.ssh.hostKey", FIXTURE_HOST_KEY.slice(0, 30)), "host.ssh.hostKey", "OpenSSH public host key"],
  [
    "host key whose blob names another type",
    (c) => withValue(c, "host.ssh.hostKey", FIXTURE_HOST_KEY.replace("ssh-ed25519", "ssh-rsa")),
    "host.ssh.hostKey",
    "OpenSSH public host key",
  ],
  ["typo in a host key name", (c) => withValue(withValue(c, "host.ssh.user", undefined), "host.ssh.usr", "maxvamp"), "host.ssh.usr", "unknown key"],
  ["typo in a top-level key", (c) => ({ ...c, sysctls: { "vm.swappiness": 10 } }), "sysctls", "unknown key"],
  ["typo in a daemon key", (c) => withValue(c, "docker.daemon.storagedriver", "overlay2"), "docker.daemon.storagedriver", "unknown key"],
  ["unknown storage driver", (c) => withValue(c, "docker.daemon.storageDriver", "overlay"), "docker.daemon.storageDriver", "expected one of"],
  ["unknown log driver", (c) => withValue(c, "docker.daemon.logDriver", "json"), "docker.daemon.logDriver", "expected one of"],
  ["log size without unit", (c) => withValue(c, "docker.daemon.logOpts.maxSize", "100"), "docker.daemon.logOpts.maxSize", "'100m'"],
  ["log max-file 0", (c) => withValue(c, "docker.daemon.logOpts.maxFile", 0), "docker.daemon.logOpts.maxFile", "at least 1"],
  ["live-restore with swarm", (c) => withValue(c, "docker.daemon.liveRestore", true), "docker.daemon.liveRestore", "swarm"],
  ["swappiness above 200", (c) => withValue(c, "sysctl", { "vm.swappiness": 250 }), "sysctl.vm.swappiness", "0 to 200"],
  ["swappiness negative", (c) => withValue(c, "sysctl", { "vm.swappiness": -1 }), "sysctl.vm.swappiness", "0 to 200"],
  ["swappiness as a word", (c) => withValue(c, "sysctl", { "vm.swappiness": "low" }), "sysctl.vm.swappiness", "0 to 200"],
  ["sysctl name without a dot", (c) => withValue(c, "sysctl", { swappiness: 10 }), "sysctl.swappiness", "kernel parameter name"],
  ["sysctl value with a shell character", (c) => withValue(c, "sysctl", { "net.core.somaxconn": "1;reboot" }), "sysctl.net.core.somaxconn", "plain value"],
  ["unknown swarm role", (c) => withValue(c, "swarm.role", "leader"), "swarm.role", "expected one of"],
  ["worker without managerStack", (c) => withValue(c, "swarm.role", "worker"), "swarm.managerStack", "manager's stack"],
  ["manager with managerStack", (c) => withValue(c, "swarm.managerStack", "organization/dgx-storage/sark"), "swarm.managerStack", "no managerStack"],
  [
    "relative disk mount",
    (c) => withValue(c, "capacity.disks", [{ name: "primary", mount: "data", sizeTB: 3.7, usedTB: 1 }]),
    "capacity.disks.0.mount",
    "absolute path",
  ],
  [
    "mount with ..",
    (c) => withValue(c, "capacity.disks", [{ name: "primary", mount: "/data/../etc", sizeTB: 3.7, usedTB: 1 }]),
    "capacity.disks.0.mount",
    "normalised path",
  ],
  [
    "used above size",
    (c) => withValue(c, "capacity.disks", [{ name: "primary", mount: "/data", sizeTB: 3.7, usedTB: 4 }]),
    "capacity.disks.0.usedTB",
    "at most sizeTB",
  ],
  ["negative growth", (c) => withValue(c, "capacity.annualGrowth", -0.1), "capacity.annualGrowth", "0 or more"],
  ["ssh key inline in plaintext", (c) => ({ ...c, sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----" }), "sshPrivateKey", "--secret"],
  ["missing host section", (c) => withValue(c, "host", undefined), "host", "(missing)"],
];

describe("config door: rejected", () => {
  it(`has at least 25 rejected cases (${REJECTED.length})`, () => {
    expect(REJECTED.length).toBeGreaterThanOrEqual(25);
  });

  it.each(REJECTED)("rejects %s, naming the file and %s", (_what, change, key, expected) => {
    const msg = problemsOf(change(validConfig()));
    expect(msg).toContain(SOURCE);
    const line = msg.split("\n").find((l) => l.includes(`- ${key}:`));
    expect(line, `no problem line for ${key} in:\n${msg}`).toBeDefined();
    expect(line).toContain(expected);
  });

  it("lists every problem at once, each with its bad value", () => {
    let bad = withValue(validConfig(), "host.ssh.port", 0);
    bad = withValue(bad, "sysctl", { "vm.swappiness": 300 });
    bad = withValue(bad, "docker.daemon.logDriver", "xml");
    bad = withValue(bad, "docker.daemon.liveRestore", true); // a cross-field rule, reported too
    const msg = problemsOf(bad);
    expect(msg).toContain("4 problems");
    expect(msg).toMatch(/docker\.daemon\.liveRestore: true is invalid; expected false on a swarm node/);
    expect(msg).toMatch(/host\.ssh\.port: 0 is invalid/);
    expect(msg).toMatch(/sysctl\.vm\.swappiness: 300 is invalid/);
    expect(msg).toMatch(/docker\.daemon\.logDriver: "xml" is invalid/);
  });

  it("requires the SSH key secret when asked to (the program does; synth does not)", () => {
    const e = (() => {
      try {
        parseHostConfig(validConfig(), { source: SOURCE, secretsPresent: [] });
      } catch (err) {
        return (err as Error).message;
      }
      return "";
    })();
    expect(e).toContain("sshPrivateKey: (missing) secret");
    expect(() => parseHostConfig(validConfig(), { source: SOURCE, secretsPresent: ["sshPrivateKey"] })).not.toThrow();
  });
});

/** The config map as Pulumi hands it over: full keys, raw strings, the secret flag. */
function pulumiConfigMap(values: Record<string, unknown>, secrets: Record<string, string> = {}): Record<string, RawConfigValue> {
  return {
    ...Object.fromEntries(Object.entries(values).map(([k, v]) => [`dgx-storage:${k}`, { value: JSON.stringify(v), secret: false }])),
    ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`dgx-storage:${k}`, { value: v, secret: true }])),
    "docker:host": { value: "ssh://elsewhere", secret: false },
  };
}

describe("parseStackConfig (pulumi up and npm run drift)", () => {
  const opts = { source: SOURCE, mode: "apply" } as const;
  const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n";

  it("decodes the project's JSON values, skips other namespaces and hands back the secrets apart", () => {
    const { config, secrets } = parseStackConfig(pulumiConfigMap(validConfig(), { sshPrivateKey: KEY, alertWebhook: "https://ntfy.sh/dgx" }), opts);
    expect(config).toEqual(parseHostConfig(validConfig(), { ...opts, secretsPresent: ["sshPrivateKey", "alertWebhook"] }));
    expect(secrets).toEqual({ sshPrivateKey: KEY, alertWebhook: "https://ntfy.sh/dgx" });
  });

  it("keeps a value that is not JSON as its raw string", () => {
    const all = { ...pulumiConfigMap(validConfig(), { sshPrivateKey: KEY }), "dgx-storage:extra": { value: "not json", secret: false } };
    expect(() => parseStackConfig(all, opts)).toThrow(/extra: unknown key \(value "not json"\)/);
  });

  it("checks a secret's form without showing it, and requires the SSH key as a secret", () => {
    const bad = (() => {
      try {
        parseStackConfig(pulumiConfigMap(validConfig(), { sshPrivateKey: KEY, alertWebhook: "ntfy.sh/no-scheme" }), opts);
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })();
    expect(bad).toContain("alertWebhook: (secret, not shown) is invalid; expected an http(s) URL");
    expect(bad).not.toContain("no-scheme");
    expect(() => parseStackConfig(pulumiConfigMap(validConfig()), opts)).toThrow(/sshPrivateKey: \(missing\) secret/);
    // set in plaintext, a secret key stays in the values and the door refuses it
    expect(() => parseStackConfig(pulumiConfigMap({ ...validConfig(), sshPrivateKey: KEY }), opts)).toThrow(/sshPrivateKey: must be set as a secret/);
  });
});
