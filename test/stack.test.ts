import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../components/config";
import { programError } from "../components/config/runtime";
import { sha256 } from "../components/render/command";
import { daemonJsonFragment, renderJson } from "../components/render/daemon-json";
import { renderSysctl } from "../components/render/sysctl";
import { FIXTURE_HOST_KEY, FIXTURE_PEER_HOST_KEY, withPeerKey } from "./fixtures";
import { runStack, SENTINEL_SSH_KEY, stackFileConfig, type Registration, type StackRun } from "./harness";

const COMMAND = "command:remote:Command";

async function realStack(stack: "sark" | "clu", preview = true): Promise<StackRun> {
  return runStack({ stack, config: stackFileConfig(`Pulumi.${stack}.yaml`), preview });
}

function parentName(run: StackRun, r: Registration): string | undefined {
  return run.registrations.find((x) => x.urn === r.parent)?.name;
}

describe.each(["sark", "clu"] as const)("stack %s under mocks", (stack) => {
  it("registers exactly the resources of the foundation, the Docker layer, monitoring and backup", async () => {
    const run = await realStack(stack);
    const expected: Record<typeof stack, string[]> = {
      sark: [
        "dgx-storage:index:DgxHost sark",
        "command:remote:Command sark-preflight",
        "command:remote:Command sark-packages",
        "dgx-storage:index:DaemonConfig sark-daemon",
        "command:remote:Command sark-daemon-merge",
        "command:remote:Command sark-daemon-restart",
        "dgx-storage:index:KernelTuning sark-kernel",
        "command:remote:Command sark-kernel-apply",
        "dgx-storage:index:HostFirewall sark-firewall",
        "command:remote:Command sark-firewall-apply",
        "dgx-storage:index:Monitoring sark-monitoring",
        "command:remote:Command sark-monitoring-units",
        "command:remote:Command sark-monitoring-fstrim",
        "command:remote:Command sark-monitoring-smartd",
        "command:remote:Command sark-monitoring-fio-data",
        "command:remote:Command sark-monitoring-df",
        // the committed file's off-site host key is unpinned: preview leaves the off-site parts out
        "dgx-storage:index:Backup sark-backup",
        "command:remote:Command sark-backup-repo",
        "command:remote:Command sark-backup-units",
        "command:remote:Command sark-backup-existing-jobs",
        "pulumi:providers:docker sark-docker",
        "dgx-storage:index:StorageVolumes sark-volumes",
        "command:remote:Command sark-volumes-chroma-persistent-dir",
        "docker:index/volume:Volume sark-volumes-chroma-data",
        "docker:index/volume:Volume sark-volumes-chroma-persistent",
        "docker:index/volume:Volume sark-volumes-backup-data",
        "dgx-storage:index:Swarm sark-swarm",
        "command:remote:Command sark-swarm-init",
        "command:remote:Command sark-swarm-network",
        "dgx-storage:index:ContainerService sark-chromadb",
        "command:remote:Command sark-chromadb-adopt",
        "command:remote:Command sark-chromadb-migrate-chromadb-dir",
        "docker:index/remoteImage:RemoteImage sark-chromadb-image",
        "docker:index/container:Container sark-chromadb-container",
        "dgx-storage:index:DataMigration sark-chromadb-migrate-chromadb",
        "command:remote:Command sark-chromadb-migrate-chromadb-run",
        "command:remote:Command sark-chromadb-switch",
        "command:remote:Command sark-chromadb-migrate-chromadb-finalize",
      ],
      clu: [
        "dgx-storage:index:DgxHost clu",
        "command:remote:Command clu-preflight",
        "command:remote:Command clu-packages",
        "dgx-storage:index:DaemonConfig clu-daemon",
        "command:remote:Command clu-daemon-merge",
        "command:remote:Command clu-daemon-restart",
        "dgx-storage:index:KernelTuning clu-kernel",
        "command:remote:Command clu-kernel-apply",
        "dgx-storage:index:HostFirewall clu-firewall",
        "command:remote:Command clu-firewall-apply",
        "dgx-storage:index:Monitoring clu-monitoring",
        "command:remote:Command clu-monitoring-units",
        "command:remote:Command clu-monitoring-fstrim",
        "command:remote:Command clu-monitoring-smartd",
        "command:remote:Command clu-monitoring-fio-data",
        "command:remote:Command clu-monitoring-df",
        "dgx-storage:index:Backup clu-backup",
        "command:remote:Command clu-backup-repo",
        "command:remote:Command clu-backup-units",
        "command:remote:Command clu-backup-existing-jobs",
        "pulumi:providers:docker clu-docker",
        "dgx-storage:index:StorageVolumes clu-volumes",
        "command:remote:Command clu-volumes-memory-persistent-dir",
        "docker:index/volume:Volume clu-volumes-memory-data",
        "docker:index/volume:Volume clu-volumes-memory-persistent",
        "docker:index/volume:Volume clu-volumes-vllm-models",
        "dgx-storage:index:Swarm clu-swarm",
        "command:remote:Command clu-swarm-join",
        "dgx-storage:index:ContainerService clu-memory-service",
        "command:remote:Command clu-memory-service-adopt",
        "command:remote:Command clu-memory-service-migrate-memory-service-dir",
        "docker:index/container:Container clu-memory-service-container",
        "dgx-storage:index:DataMigration clu-memory-service-migrate-memory-service",
        "command:remote:Command clu-memory-service-migrate-memory-service-run",
        "command:remote:Command clu-memory-service-switch",
        "command:remote:Command clu-memory-service-migrate-memory-service-finalize",
        "dgx-storage:index:ContainerService clu-vllm",
        "command:remote:Command clu-vllm-adopt",
        "docker:index/remoteImage:RemoteImage clu-vllm-image",
        "docker:index/container:Container clu-vllm-container",
        "command:remote:Command clu-vllm-switch",
      ],
    };
    expect(run.registrations.map((r) => `${r.type} ${r.name}`).sort()).toEqual(expected[stack].sort());
    // every child is named after its parent
    for (const r of run.registrations) {
      const parent = parentName(run, r);
      if (parent) expect(r.name.startsWith(`${parent}-`), `${r.name} under ${parent}`).toBe(true);
    }
  });

  it("pins the configured host key and connection on every command, and never injects output into the environment", async () => {
    const run = await realStack(stack);
    const address = stack === "sark" ? "192.168.68.69" : "192.168.68.71";
    for (const cmd of run.ofType(COMMAND)) {
      expect(cmd.inputs.connection).toMatchObject({ host: address, port: 22, user: "maxvamp", hostKey: "unpinned" });
      expect(cmd.inputs.addPreviousOutputInEnv).toBe(false);
      expect(cmd.inputs).not.toHaveProperty("environment");
      expect(String(cmd.inputs.create)).toMatch(/^sudo -n bash -c '/);
    }
  });

  it("replaces every command that has a delete delete-first, so the old undo never follows the new apply", async () => {
    const run = await realStack(stack);
    const withDelete = run.ofType(COMMAND).filter((c) => c.inputs.delete !== undefined);
    // install-units (monitoring, backup), daemon.json, sysctl, smartd.conf at least
    expect(withDelete.map((c) => c.name)).toEqual(expect.arrayContaining([`${stack}-daemon-merge`, `${stack}-monitoring-units`, `${stack}-backup-units`]));
    for (const c of withDelete) expect(c.deleteBeforeReplace, c.name).toBe(true);
    // one with nothing to undo keeps Pulumi's default order
    for (const c of run.ofType(COMMAND).filter((x) => x.inputs.delete === undefined)) expect(c.deleteBeforeReplace, c.name).toBe(false);
  });

  it("keeps the SSH key a secret: it appears only in secret inputs", async () => {
    const run = await realStack(stack);
    for (const r of run.registrations) {
      expect(JSON.stringify(r.plainInputs)).not.toContain("SENTINEL-SSH-KEY");
      expect(JSON.stringify(r.plainInputs)).not.toContain("sentinel0join0token");
    }
    for (const cmd of run.ofType(COMMAND)) {
      // the SDK marks the whole connection secret because it holds a secret; either way the key is covered
      expect(cmd.secretPaths.some((p) => "connection.privateKey".startsWith(p))).toBe(true);
      expect((cmd.inputs.connection as Record<string, unknown>).privateKey).toBe(SENTINEL_SSH_KEY);
    }
  });

  it("triggers the daemon.json commands on the managed content's hash; the restart runs after the merge", async () => {
    const run = await realStack(stack);
    const fragment = renderJson(
      daemonJsonFragment({ storageDriver: "overlay2", logDriver: "json-file", logOpts: { maxSize: "100m", maxFile: 5 }, liveRestore: false }),
    );
    const merge = run.byName(`${stack}-daemon-merge`);
    const restart = run.byName(`${stack}-daemon-restart`);
    expect(merge.inputs.triggers).toEqual([sha256(fragment)]);
    expect(restart.inputs.triggers).toEqual([sha256(fragment)]);
    expect(String(merge.inputs.create)).toContain(` daemon-json-merge apply '${JSON.stringify(JSON.parse(fragment))}'`);
    expect(String(merge.inputs.delete)).toMatch(/ daemon-json-merge remove$/);
    expect(String(restart.inputs.create)).toMatch(/ docker-restart overlay2$/);
    expect(restart.inputs).not.toHaveProperty("delete");
    expect(restart.dependsOn).toContain(merge.urn);
    expect(run.exports.daemonJsonHash).toBe(sha256(fragment));
  });

  it("writes the sysctl file with the plan's values, triggered by its hash, removed on delete", async () => {
    const run = await realStack(stack);
    const content = renderSysctl({ "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 });
    const apply = run.byName(`${stack}-kernel-apply`);
    expect(apply.inputs.triggers).toEqual([sha256(content)]);
    expect(String(apply.inputs.create)).toContain(" sysctl-apply apply /etc/sysctl.d/90-dgx-storage.conf '");
    expect(String(apply.inputs.create)).toContain("vm.swappiness = 10\nvm.vfs_cache_pressure = 50\n'");
    expect(String(apply.inputs.delete)).toMatch(/ sysctl-apply remove \/etc\/sysctl\.d\/90-dgx-storage\.conf$/);
  });
});

describe("stack config errors stop the program before any resource exists", () => {
  it("GIVEN an invalid stack file THEN every problem is listed and nothing is registered", async () => {
    const config = stackFileConfig("Pulumi.sark.yaml");
    const host = config.host as Record<string, unknown>;
    const bad = {
      ...config,
      host: { ...host, address: "192.168.68.999", ssh: { user: "maxvamp", port: 99999, hostKey: "unpinned" } },
      sysctl: { "vm.swappiness": 500 },
    };
    const error = await runStack({ stack: "sark", config: bad }).then(
      () => undefined,
      (e: unknown) => e as Error & { registrations: readonly Registration[] },
    );
    expect(error?.message).toMatch(
      /Pulumi\.sark\.yaml: invalid stack config \(3 problems\)[\s\S]*host\.address[\s\S]*host\.ssh\.port[\s\S]*sysctl\.vm\.swappiness/,
    );
    expect(error?.registrations).toEqual([]);
  });

  it("GIVEN pulumi up with an unpinned host key THEN it refuses with the keyscan command", async () => {
    await expect(realStack("sark", false)).rejects.toThrow(
      /host\.ssh\.hostKey: "unpinned" cannot be applied; pin the key first: ssh-keyscan -t ed25519 -p 22 192\.168\.68\.69/,
    );
  });

  it("GIVEN the SSH key set in plaintext THEN it is rejected", async () => {
    const config = { ...stackFileConfig("Pulumi.sark.yaml"), sshPrivateKey: "-----BEGIN" };
    await expect(runStack({ stack: "sark", config, secrets: {} })).rejects.toThrow(/sshPrivateKey: must be set as a secret/);
  });

  it("GIVEN a pinned key THEN pulumi up goes ahead and every command carries it", async () => {
    const config = stackFileConfig("Pulumi.sark.yaml");
    const host = config.host as { ssh: Record<string, unknown> };
    const run = await runStack({
      stack: "sark",
      config: withPeerKey({ ...config, host: { ...host, ssh: { ...host.ssh, hostKey: FIXTURE_HOST_KEY } } }),
      preview: false,
    });
    const cmds = run.ofType(COMMAND);
    expect(cmds.map((c) => c.name).sort()).toEqual(
      [
        "sark-backup-existing-jobs",
        "sark-backup-offsite-receive",
        "sark-backup-repo",
        "sark-backup-ssh-key",
        "sark-backup-units",
        "sark-chromadb-adopt",
        "sark-chromadb-migrate-chromadb-dir",
        "sark-chromadb-migrate-chromadb-finalize",
        "sark-chromadb-migrate-chromadb-run",
        "sark-chromadb-switch",
        "sark-daemon-merge",
        "sark-daemon-restart",
        "sark-firewall-apply",
        "sark-kernel-apply",
        "sark-monitoring-df",
        "sark-monitoring-fio-data",
        "sark-monitoring-fstrim",
        "sark-monitoring-smartd",
        "sark-monitoring-units",
        "sark-packages",
        "sark-preflight",
        "sark-swarm-init",
        "sark-swarm-network",
        "sark-volumes-chroma-persistent-dir",
      ].sort(),
    );
    // every command on SARK carries SARK's key; the one that installs the receiving side on CLU, CLU's
    for (const c of cmds) {
      expect((c.inputs.connection as Record<string, unknown>).hostKey, c.name).toBe(
        c.name === "sark-backup-offsite-receive" ? FIXTURE_PEER_HOST_KEY : FIXTURE_HOST_KEY,
      );
    }
  });

  it("GIVEN pulumi up with the other host's key unpinned in backup.offsite THEN it refuses before anything runs", async () => {
    const config = stackFileConfig("Pulumi.sark.yaml");
    const host = config.host as { ssh: Record<string, unknown> };
    await expect(
      runStack({ stack: "sark", config: { ...config, host: { ...host, ssh: { ...host.ssh, hostKey: FIXTURE_HOST_KEY } } }, preview: false }),
    ).rejects.toThrow(/backup\.offsite\.ssh\.hostKey: "unpinned" cannot be applied; pin the other host's key/);
  });
});

describe("what an operator sees on every preview", () => {
  const MANAGER_ONLY = ["swarmManagerAddress", "swarmManagerNodeId", "swarmWorkerToken"];

  it.each([
    ["sark", true],
    ["clu", true],
    ["sark", false],
    ["clu", false],
  ] as const)("GIVEN stack %s (preview %s) THEN no export is undefined, resolved or not", async (stack, preview) => {
    const config = stackFileConfig(`Pulumi.${stack}.yaml`);
    const host = config.host as { ssh: Record<string, unknown> };
    // an up needs pinned keys; a preview runs the committed files as they are
    const run = await runStack({
      stack,
      config: preview ? config : withPeerKey({ ...config, host: { ...host, ssh: { ...host.ssh, hostKey: FIXTURE_HOST_KEY } } }),
      preview,
    });
    // the SDK warns "Undefined value (<key>) will not show as a stack output" for a top-level
    // export that is undefined or an Output resolving to undefined (sdk/nodejs/runtime/stack.ts)
    expect(Object.entries(run.rawExports).filter(([, v]) => v === undefined)).toEqual([]);
    expect(Object.entries(run.exports).filter(([, v]) => v === undefined)).toEqual([]);
    const keys = Object.keys(run.rawExports);
    if (stack === "sark") expect(keys).toEqual(expect.arrayContaining(MANAGER_ONLY));
    else expect(keys.filter((k) => MANAGER_ONLY.includes(k))).toEqual([]);
    // the off-site public key exists only once the other host's key is pinned (pulumi up here)
    expect(keys.includes("backupOffsitePublicKey")).toBe(!preview);
    expect(keys).toEqual(
      expect.arrayContaining(["hostName", "address", "daemonJsonHash", "sysctlFile", "volumes", "containers", "overlayNetwork", "backupStatus"]),
    );
  });

  it("GIVEN a config error THEN the program fails with a RunError: the SDK prints its message alone, no stack", async () => {
    const config = stackFileConfig("Pulumi.clu.yaml");
    const error = await runStack({ stack: "clu", config: { ...config, sysctl: { "vm.swappiness": 500 } } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(pulumi.RunError.isInstance(error)).toBe(true);
    expect(error?.message).toBe(
      "Pulumi.clu.yaml: invalid stack config (1 problem):\n  - sysctl.vm.swappiness: 500 is invalid; expected a whole number from 0 to 200",
    );
  });
});

describe("programError: how the program fails", () => {
  it("GIVEN a ConfigError THEN a RunError with exactly its text, no stack frame in it", () => {
    const source = new ConfigError("Pulumi.sark.yaml", ['host.address: "x" is invalid; expected an IPv4 address or a DNS name']);
    const e = programError(source) as Error;
    expect(pulumi.RunError.isInstance(e)).toBe(true);
    expect(e.message).toBe('Pulumi.sark.yaml: invalid stack config (1 problem):\n  - host.address: "x" is invalid; expected an IPv4 address or a DNS name');
    expect(e.message).not.toMatch(/\n\s+at /);
  });

  it("GIVEN any other error THEN it passes unchanged, stack and all (a bug report needs it)", () => {
    const bug = new TypeError("x is undefined");
    expect(programError(bug)).toBe(bug);
    expect(pulumi.RunError.isInstance(programError(bug))).toBe(false);
  });
});
