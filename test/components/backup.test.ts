/**
 * The Backup component of both stacks under mocks: exact names, command strings,
 * triggers, dependencies, the passphrase only on stdin (secret, logging none), the receiving side
 * installed over the PEER's connection with the peer's pinned key, and the outputs. Plus the config
 * door's rules for the backup section.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BACKUP_SET } from "../../components/backup";
import { backupPlan, OFFSITE_KEY_PATH } from "../../components/plan/backup";
import {
  automaticBackupPaths,
  ConfigError,
  loadStackFile,
  parseHostConfig,
  UNPINNED_HOST_KEY,
  type HostConfig,
  type ParseOptions,
} from "../../components/config";
import { backupUnitSet, offsiteAuthorizedKey } from "../../components/render/backup";
import { bundledScript, scriptCommand, sha256 } from "../../components/render/command";
import { renderUnitSet } from "../../components/render/systemd";
import { FIXTURE_HOST_KEY, FIXTURE_PEER_HOST_KEY, validConfig, withPeerKey, withValue } from "../fixtures";
import {
  expectConfigProblem,
  OFFSITE_PUBLIC_KEY,
  pinnedStackConfig,
  REPO,
  runStack,
  SENTINEL_BORG_PASSPHRASE,
  SENTINEL_SSH_KEY,
  waitsFor,
  type StackRun,
} from "../harness";

const COMMAND = "command:remote:Command";
const SENTINEL_WEBHOOK = "https://ntfy.example/dgx-sentinel-webhook-7c2e";
const REPO_SCRIPT = sha256(bundledScript("borg-repo"));
const tail = (script: Parameters<typeof scriptCommand>[0], args: string[]) => scriptCommand(script, args, { sudo: true });

const PLAN = {
  sark: { repo: "/mnt/borg-backup", peer: "192.168.68.71", user: "borg-sark", dir: "/data/borg-offsite/sark" },
  clu: { repo: "/data/borg", peer: "192.168.68.69", user: "borg-clu", dir: "/data/borg-offsite/clu" },
} as const;

/** A real stack file's config with this host's key pinned and the other host's still unpinned. */
function peerUnpinned(stack: "sark" | "clu"): Record<string, unknown> {
  return withPeerKey(pinnedStackConfig(stack), UNPINNED_HOST_KEY);
}

function parsed(stack: "sark" | "clu"): HostConfig {
  return parseHostConfig(pinnedStackConfig(stack), { source: `Pulumi.${stack}.yaml` });
}

function run(stack: "sark" | "clu", opts: { preview?: boolean; webhook?: string } = {}): Promise<StackRun> {
  return runStack({
    stack,
    config: pinnedStackConfig(stack),
    secrets: { sshPrivateKey: SENTINEL_SSH_KEY, ...(opts.webhook ? { alertWebhook: opts.webhook } : {}) },
    preview: opts.preview ?? false,
  });
}

describe.each(["sark", "clu"] as const)("%s: the Backup component", (stack) => {
  const p = PLAN[stack];

  it("declares exactly its children, named after it, under the host", async () => {
    const r = await run(stack);
    const comp = r.byName(`${stack}-backup`);
    expect(comp.type).toBe("dgx-storage:index:Backup");
    expect(r.registrations.find((x) => x.urn === comp.parent)?.name).toBe(stack);
    const children = r.registrations.filter((x) => x.parent === comp.urn).map((x) => `${x.type} ${x.name}`);
    expect(children.sort()).toEqual(
      ["repo", "ssh-key", "offsite-receive", "units", "existing-jobs"].map((role) => `${COMMAND} ${stack}-backup-${role}`).sort(),
    );
  });

  it("sets up the repository with the passphrase on stdin only: secret, logging none, outputs secret, no delete", async () => {
    const r = await run(stack);
    const c = r.byName(`${stack}-backup-repo`);
    expect(c.inputs.create).toBe(tail("borg-repo", ["apply", stack, p.repo]));
    expect(c.inputs).not.toHaveProperty("delete");
    expect(c.inputs.stdin).toBe(`${SENTINEL_BORG_PASSPHRASE}\n`);
    expect(c.secretPaths).toContain("stdin");
    expect(c.inputs.logging).toBe("none");
    expect(c.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(c.inputs.triggers).toEqual([REPO_SCRIPT, stack, p.repo]);
    // after the host's packages (borgbackup)
    expect(c.dependsOn).toEqual([r.byName(`${stack}-packages`).urn]);
    // the passphrase is in no plaintext input of any resource, and in no command string
    for (const x of r.registrations) expect(JSON.stringify(x.plainInputs), x.name).not.toContain(SENTINEL_BORG_PASSPHRASE);
    for (const x of r.ofType(COMMAND)) {
      expect(String(x.inputs.create), x.name).not.toContain(SENTINEL_BORG_PASSPHRASE);
      expect(String(x.inputs.delete ?? ""), x.name).not.toContain(SENTINEL_BORG_PASSPHRASE);
      if (x.name !== `${stack}-backup-repo`) expect(JSON.stringify(x.inputs.stdin ?? ""), x.name).not.toContain(SENTINEL_BORG_PASSPHRASE);
    }
  });

  it("makes the off-site key pair on this host; its stdout is the public key output", async () => {
    const r = await run(stack);
    const c = r.byName(`${stack}-backup-ssh-key`);
    expect(c.inputs.create).toBe(tail("borg-repo", ["ssh-key", OFFSITE_KEY_PATH]));
    expect(c.inputs.triggers).toEqual([REPO_SCRIPT, OFFSITE_KEY_PATH]);
    expect(c.inputs).not.toHaveProperty("delete");
    expect(c.inputs).not.toHaveProperty("stdin");
    expect((c.inputs.connection as Record<string, unknown>).hostKey).toBe(FIXTURE_HOST_KEY);
    expect(r.exports.backupOffsitePublicKey).toBe(OFFSITE_PUBLIC_KEY);
  });

  it("installs the receiving side on the PEER, over the peer's connection with its pinned key, after the key exists", async () => {
    const r = await run(stack);
    const c = r.byName(`${stack}-backup-offsite-receive`);
    const line = offsiteAuthorizedKey(OFFSITE_PUBLIC_KEY, p.dir);
    expect(line).toBe(`command="borg serve --append-only --restrict-to-path ${p.dir}",restrict ${OFFSITE_PUBLIC_KEY}`);
    expect(c.inputs.create).toBe(tail("borg-repo", ["receive", p.user, p.dir, line]));
    expect(c.inputs.connection).toMatchObject({ host: p.peer, port: 22, user: "maxvamp", privateKey: SENTINEL_SSH_KEY, hostKey: FIXTURE_PEER_HOST_KEY });
    expect(c.secretPaths.some((s) => "connection.privateKey".startsWith(s))).toBe(true);
    expect(c.inputs.triggers).toEqual([REPO_SCRIPT, line]);
    expect(c.inputs).not.toHaveProperty("delete");
    expect(c.dependsOn).toEqual([r.byName(`${stack}-packages`).urn, r.byName(`${stack}-backup-ssh-key`).urn]);
  });

  it("installs the unit set after the repository, the key and the receiving side; delete removes it", async () => {
    const r = await run(stack);
    const manifest = renderUnitSet(backupUnitSet(backupPlan(stack, parsed(stack).backup!)));
    const c = r.byName(`${stack}-backup-units`);
    expect(c.inputs.create).toBe(tail("install-units", ["apply", BACKUP_SET, manifest]));
    expect(c.inputs.delete).toBe(tail("install-units", ["remove", BACKUP_SET]));
    expect(c.inputs.triggers).toEqual([sha256(manifest)]);
    expect(c.dependsOn).toEqual([
      r.byName(`${stack}-packages`).urn,
      r.byName(`${stack}-backup-repo`).urn,
      r.byName(`${stack}-backup-ssh-key`).urn,
      r.byName(`${stack}-backup-offsite-receive`).urn,
    ]);
    const set = JSON.parse(manifest) as { files: { path: string; mode: string; content: string }[]; enable: string[] };
    expect(set.enable).toEqual([
      "dgx-backup-daily.timer",
      "dgx-backup-hourly.timer",
      "dgx-backup-check.timer",
      "dgx-backup-verify.timer",
      "dgx-backup-drill.timer",
      "dgx-backup-offsite.timer",
      "dgx-backup-watch.timer",
    ]);
    // the alert file is the host's: this set never writes it
    expect(set.files.map((f) => f.path)).not.toContain("/etc/dgx-storage/alert-webhook");
    expect(set.files.find((f) => f.path === "/etc/dgx-storage/borg/offsite-known_hosts")).toEqual({
      path: "/etc/dgx-storage/borg/offsite-known_hosts",
      mode: "0644",
      content: `${p.peer} ${FIXTURE_PEER_HOST_KEY}\n`,
    });
    const offsite = set.files.find((f) => f.path === "/etc/systemd/system/dgx-backup-offsite.service")!.content;
    expect(offsite).toContain(`--repo ssh://${p.user}@${p.peer}:22${p.dir}/repo --host ${stack} `);
    expect(offsite).toContain(` copy-offsite ${OFFSITE_KEY_PATH} /etc/dgx-storage/borg/offsite-known_hosts `);
    for (const f of set.files) expect(f.content, f.path).not.toContain(SENTINEL_BORG_PASSPHRASE);
  });

  it("triggers are identical on a second program run (a re-apply changes nothing)", async () => {
    const a = await run(stack);
    const b = await run(stack);
    for (const c of b.ofType(COMMAND).filter((x) => x.name.startsWith(`${stack}-backup-`))) {
      expect(c.inputs.triggers, c.name).toEqual(a.byName(c.name).inputs.triggers);
      expect(c.inputs.create, c.name).toBe(a.byName(c.name).inputs.create);
    }
  });

  it("exports the repository and the key export path", async () => {
    const r = await run(stack);
    expect(r.exports.backupRepository).toBe(p.repo);
    expect(r.exports.backupKeyExport).toBe(`/etc/dgx-storage/borg/${stack}.key`);
    expect(r.exports.backupStatus).toMatchObject({
      repository: p.repo,
      passFile: `/etc/dgx-storage/borg/${stack}.pass`,
      offsite: `ssh://${p.user}@${p.peer}:22${p.dir}/repo`,
    });
  });

  it("GIVEN the other host's key still unpinned THEN preview declares the repository and units without the off-site parts", async () => {
    const r = await runStack({ stack, config: peerUnpinned(stack) });
    const comp = r.byName(`${stack}-backup`);
    expect(
      r.registrations
        .filter((x) => x.parent === comp.urn)
        .map((x) => x.name)
        .sort(),
    ).toEqual([`${stack}-backup-existing-jobs`, `${stack}-backup-repo`, `${stack}-backup-units`]);
    expect(r.byName(`${stack}-backup-units`).dependsOn).toEqual([r.byName(`${stack}-packages`).urn, r.byName(`${stack}-backup-repo`).urn]);
    expect(String(r.byName(`${stack}-backup-units`).inputs.create)).not.toContain("dgx-backup-offsite");
  });
});

describe("backup plans of the real stack files", () => {
  it("sark: the plan's daily paths plus the bind volume, the ChromaDB data hourly with its SQLite copy, the plan's retention", () => {
    const b = parsed("sark").backup!;
    expect(b.paths.daily).toEqual(["/data/chroma", "/data/enhanced", "/home/maxvamp/chromadb-data"]);
    expect(b.paths.hourly).toEqual(["/data/enhanced/chromadb"]);
    expect(b.sqlite).toEqual(["/data/enhanced/chromadb/chroma.sqlite3"]);
    expect(b.retention).toEqual({ daily: { daily: 7, weekly: 4, monthly: 6 }, hourly: { hourly: 24 } });
    const set = backupUnitSet(backupPlan("sark", b));
    const daily = set.files.find((f) => f.path === "/etc/systemd/system/dgx-backup-daily.service")!.content;
    expect(daily).toContain(
      "ExecStart=/bin/bash /usr/local/lib/dgx-storage/borg-run.sh --lock-wait 38880 --repo /mnt/borg-backup --host sark --growth-factor 4 create daily --sqlite /data/enhanced/chromadb/chroma.sqlite3 /data/chroma /data/enhanced /home/maxvamp/chromadb-data\n",
    );
    expect(daily).toContain(
      "ExecStart=/bin/bash /usr/local/lib/dgx-storage/borg-run.sh --lock-wait 38880 --repo /mnt/borg-backup --host sark --growth-factor 4 prune daily --keep-daily=7 --keep-weekly=4 --keep-monthly=6\n",
    );
    const hourly = set.files.find((f) => f.path === "/etc/systemd/system/dgx-backup-hourly.service")!.content;
    expect(hourly).toContain("prune hourly --keep-hourly=24\n");
  });

  it("clu: its own repository, the memory data and bind volume, not vLLM's read-only model", () => {
    const c = parsed("clu");
    expect(c.backup!.repository).toEqual({ path: "/data/borg", name: "clu" });
    expect(c.backup!.paths.daily).toEqual(["/data/enhanced", "/data/memory", "/home/maxvamp/memory-data"]);
    expect(automaticBackupPaths(c)).toEqual(["/data/memory", "/data/enhanced/memory-service"]);
    expect(c.backup!.paths.daily).not.toContain("/home/maxvamp/GLM-4.5-Air-AWQ");
  });

  it("both committed stack files parse", () => {
    for (const stack of ["sark", "clu"]) expect(loadStackFile(path.join(REPO, `Pulumi.${stack}.yaml`)).backup).toBeDefined();
  });
});

describe("wiring", () => {
  it("GIVEN the alert webhook THEN the backup units run after the host's webhook command (the file exists first)", async () => {
    const r = await run("sark", { webhook: SENTINEL_WEBHOOK });
    const units = r.byName("sark-backup-units");
    expect(units.dependsOn).toEqual([
      r.byName("sark-packages").urn,
      r.byName("sark-backup-repo").urn,
      r.byName("sark-backup-ssh-key").urn,
      r.byName("sark-backup-offsite-receive").urn,
      r.byName("sark-alert-webhook").urn,
    ]);
    expect(String(units.inputs.create)).not.toContain("sentinel-webhook");
  });

  it("GIVEN the alert webhook and a backup section but no monitoring section THEN the webhook file is still written before the backup units", async () => {
    const config = { ...pinnedStackConfig("sark") };
    delete config.monitoring;
    delete config.maintenance;
    delete config.capacity;
    const r = await runStack({ stack: "sark", config, secrets: { sshPrivateKey: SENTINEL_SSH_KEY, alertWebhook: SENTINEL_WEBHOOK } });
    expect(r.registrations.some((x) => x.type === "dgx-storage:index:Monitoring")).toBe(false);
    expect(r.byName("sark-alert-webhook").inputs.stdin).toBe(`${SENTINEL_WEBHOOK}\n`);
    expect(r.byName("sark-backup-units").dependsOn).toContain(r.byName("sark-alert-webhook").urn);
  });

  it("GIVEN a migration with snapshot: borg (the stack files' setting) THEN it copies after the backup units (the helper it calls)", async () => {
    const r = await runStack({ stack: "sark", config: pinnedStackConfig("sark") });
    expect(String(r.byName("sark-chromadb-migrate-chromadb-run").inputs.create)).toMatch(/ borg:sark:sark:\/mnt\/borg-backup($|\s)/);
    expect(waitsFor(r, "sark-chromadb-migrate-chromadb-run", "sark-backup-units")).toBe(true);
  });

  it("GIVEN no backup section THEN there is no Backup component and no backup outputs", async () => {
    const config = { ...pinnedStackConfig("sark") };
    delete config.backup;
    config.migrations = (config.migrations as Record<string, unknown>[]).map((m) => ({ ...m, snapshot: "none" }));
    const r = await runStack({ stack: "sark", config, withoutBorgPassphrase: true });
    expect(r.registrations.some((x) => x.type === "dgx-storage:index:Backup")).toBe(false);
    expect(r.exports.backupRepository).toBeUndefined();
  });
});

describe("config door: backup", () => {
  const base = () => ({
    ...validConfig(),
    volumes: [{ name: "chroma", host: "sark", bind: { device: "/data/chroma" } }],
    backup: {
      repository: { path: "/mnt/borg-backup", name: "sark" },
      paths: { daily: ["/data/enhanced"], hourly: ["/data/enhanced/chromadb"] },
      sqlite: ["/data/enhanced/chromadb/chroma.sqlite3"],
      offsite: { ssh: { address: "192.0.2.11", user: "maxvamp", hostKey: FIXTURE_PEER_HOST_KEY }, user: "borg-sark", repoDir: "/data/borg-offsite/sark" },
    },
  });
  /** The door's message for values it must reject, with the secrets it is told about (expectConfigProblem cannot pass them). */
  const problems = (values: Record<string, unknown>, opts: Pick<ParseOptions, "secretsPresent" | "invalidSecrets">): string => {
    try {
      parseHostConfig(values, { source: "Pulumi.fixture.yaml", ...opts });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).message;
    }
    throw new Error("accepted");
  };

  it("fills the documented defaults and adds the bind volume to the daily paths", () => {
    const b = parseHostConfig(base(), { source: "f" }).backup!;
    expect(b).toEqual({
      repository: { path: "/mnt/borg-backup", name: "sark" },
      paths: { daily: ["/data/chroma", "/data/enhanced"], hourly: ["/data/enhanced/chromadb"] },
      sqlite: ["/data/enhanced/chromadb/chroma.sqlite3"],
      retention: { daily: { daily: 7, weekly: 4, monthly: 6 }, hourly: { hourly: 24 } },
      schedules: {},
      growthFactor: 4,
      drillSample: 200,
      existingJobs: "report",
      offsite: {
        ssh: { address: "192.0.2.11", port: 22, user: "maxvamp", hostKey: FIXTURE_PEER_HOST_KEY },
        user: "borg-sark",
        repoDir: "/data/borg-offsite/sark",
      },
    });
  });

  it("requires borgPassphrase with a backup section, only then, and checks its form without showing it", () => {
    expect(problems(base(), { secretsPresent: ["sshPrivateKey"] })).toMatch(/borgPassphrase: \(missing\) secret, required with a backup section/);
    expect(() => parseHostConfig(validConfig(), { source: "f", secretsPresent: ["sshPrivateKey"] })).not.toThrow();
    expect(() => parseHostConfig(base(), { source: "f", secretsPresent: ["sshPrivateKey", "borgPassphrase"] })).not.toThrow();
    expectConfigProblem({ ...base(), borgPassphrase: "x" }, "borgPassphrase", "must be set as a secret");
    expect(problems(base(), { secretsPresent: ["sshPrivateKey", "borgPassphrase"], invalidSecrets: ["borgPassphrase"] })).toMatch(
      /borgPassphrase: \(secret, not shown\) is invalid; expected a passphrase of at least 12 characters on one line/,
    );
  });

  it("refuses pulumi up while the other host's key is unpinned", () => {
    const msg = (() => {
      try {
        parseHostConfig(withValue(base(), "backup.offsite.ssh.hostKey", "unpinned"), { source: "f", mode: "apply" });
      } catch (e) {
        return (e as Error).message;
      }
      return "accepted";
    })();
    expect(msg).toMatch(/backup\.offsite\.ssh\.hostKey: "unpinned" cannot be applied/);
    expect(() => parseHostConfig(withValue(base(), "backup.offsite.ssh.hostKey", "unpinned"), { source: "f", mode: "preview" })).not.toThrow();
  });

  it.each<[string, (c: Record<string, unknown>) => Record<string, unknown>, string, string]>([
    ["a relative daily path", (c) => withValue(c, "backup.paths.daily", ["data"]), "backup.paths.daily.0", "absolute path"],
    ["a daily path twice", (c) => withValue(c, "backup.paths.daily", ["/data/enhanced", "/data/enhanced"]), "backup.paths.daily.1", "a path listed once"],
    ["an hourly path twice", (c) => withValue(c, "backup.paths.hourly", ["/srv", "/srv"]), "backup.paths.hourly.1", "a path listed once"],
    [
      "the repository inside a daily path",
      (c) => withValue(c, "backup.repository.path", "/data/enhanced/borg"),
      "backup.repository.path",
      "borg would archive its own repository",
    ],
    [
      "the repository inside a bind volume",
      (c) => withValue(c, "backup.repository.path", "/data/chroma/borg"),
      "backup.repository.path",
      "a bind volume or service mount of this host",
    ],
    [
      "a daily path inside the repository",
      (c) => withValue(c, "backup.paths.daily", ["/mnt/borg-backup/x"]),
      "backup.paths.daily.0",
      "a path outside the repository /mnt/borg-backup",
    ],
    [
      "a database outside every path",
      (c) => withValue(c, "backup.sqlite", ["/var/lib/x.sqlite3"]),
      "backup.sqlite.0",
      "a database file inside a backed-up path",
    ],
    [
      "hourly paths without keep-hourly",
      (c) => withValue(c, "backup.retention", { hourly: { daily: 2 } }),
      "backup.retention.hourly.hourly",
      "a keep-hourly number above 0",
    ],
    ["a retention of zeros", (c) => withValue(c, "backup.retention", { daily: { daily: 0 } }), "backup.retention.daily", "at least one keep number above 0"],
    ["an upper-case repository name", (c) => withValue(c, "backup.repository.name", "Sark"), "backup.repository.name", "a lower-case name"],
    ["a schedule with a quote", (c) => withValue(c, "backup.schedules.daily", "02:00'"), "backup.schedules.daily", "OnCalendar"],
    ["a growth factor of 1", (c) => withValue(c, "backup.growthFactor", 1), "backup.growthFactor", "above 1"],
    [
      "the off-site copy on this host itself",
      (c) => withValue(c, "backup.offsite.ssh.address", "192.0.2.10"),
      "backup.offsite.ssh.address",
      "an off-site copy on this host itself protects nothing",
    ],
    ["a receiving user with a capital", (c) => withValue(c, "backup.offsite.user", "Borg"), "backup.offsite.user", "e.g. 'borg-sark'"],
    ["a bad peer host key", (c) => withValue(c, "backup.offsite.ssh.hostKey", "SHA256:abc"), "backup.offsite.ssh.hostKey", "OpenSSH public host key line"],
    ["a typo in a key", (c) => withValue(c, "backup.paths.dayly", ["/srv"]), "backup.paths.dayly", "unknown key"],
    [
      "no daily path at all",
      (c) => withValue(withValue(withValue(c, "volumes", []), "backup.paths", { daily: [] }), "backup.sqlite", []),
      "backup.paths.daily",
      "at least one path",
    ],
    ["a borg snapshot without a backup section", (c) => withValue(c, "backup", undefined), "(root)", ""],
  ])("rejects %s", (label, mutate, key, expected) => {
    if (label.startsWith("a borg snapshot")) {
      const values = {
        ...mutate(base()),
        services: {
          chromadb: {
            host: "sark",
            image: "chromadb/chroma:0.6.3",
            overlay: false,
            mounts: [{ source: "/home/maxvamp/chromadb-data", target: "/chroma/chroma" }],
          },
        },
        migrations: [
          { name: "chromadb", service: "chromadb", source: "/home/maxvamp/chromadb-data", destination: "/data/enhanced/chromadb", snapshot: "borg" },
        ],
      };
      expectConfigProblem(values, "migrations.0.snapshot", "\"borg\" is invalid; expected 'none', or a backup section");
      return;
    }
    expectConfigProblem(mutate(base()), key, expected);
  });
});
