/**
 * The policy pack (policy/policies.ts) without the Pulumi CLI: each rule's `validateResource` is
 * called as the analyzer server calls it, with the resource's inputs deserialised by
 * @pulumi/policy's own `deserializeProperties` (secrets unwrapped) inside its
 * `unknownCheckingProxy`, and a `reportViolation` that records the messages.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import { AnalyzeRequest, AnalyzerResourceOptions, EnforcementLevel, type AnalyzeDiagnostic, type AnalyzerInfo } from "@pulumi/pulumi/proto/analyzer_pb";
import { unknownCheckingProxy, UnknownValueError, type ResourceValidationArgs, type ResourceValidationPolicy } from "@pulumi/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bindVolumeAbsoluteDevice,
  COMMAND_TYPE,
  CONTAINER_TYPE,
  containerOneSourcePerTarget,
  containerPortBound,
  dataVolumeProtected,
  EXPOSE_TO_ALL_LABEL,
  HOLDS_DATA_LABEL,
  policies,
  remoteCommandPinsHostKey,
  secretStdinNoLogging,
  VOLUME_TYPE,
} from "../../policy/policies";
import { FIXTURE_HOST_KEY } from "../fixtures";
import { pinnedStackConfig, REPO, runStack, stackFileConfig, type Registration } from "../harness";

// internals of @pulumi/policy and google-protobuf that have no type declarations
const load = createRequire(__filename);
const { deserializeProperties } = load("@pulumi/policy/deserialize") as {
  deserializeProperties(struct: unknown, proxySecrets: boolean): Record<string, unknown>;
};
const { Struct } = load("google-protobuf/google/protobuf/struct_pb") as { Struct: { fromJavaScript(o: unknown): never } };
const { Empty } = load("google-protobuf/google/protobuf/empty_pb") as { Empty: new () => never };

/** How the engine marks a secret in serialised inputs (@pulumi/pulumi runtime/rpc). */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** How the engine marks a value unknown during preview. */
const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const secret = (value: unknown) => ({ [SECRET_SIG_KEY]: SECRET_SIG, value });

interface FakeResource {
  readonly type: string;
  readonly name?: string;
  /** Inputs as the engine sends them: secrets wrapped with `secret()`. */
  readonly inputs: Record<string, unknown>;
  readonly protect?: boolean;
}

/** Runs one policy on one resource as the analyzer server does; returns the violations. */
async function violations(policy: ResourceValidationPolicy, r: FakeResource): Promise<string[]> {
  const messages: string[] = [];
  // the engine never sends an undefined property; a JSON round trip drops them the same way
  const wire = Struct.fromJavaScript(JSON.parse(JSON.stringify(r.inputs)));
  const props = unknownCheckingProxy(deserializeProperties(wire, false));
  const name = r.name ?? "test";
  const args = {
    type: r.type,
    props,
    urn: `urn:pulumi:test::dgx-storage::${r.type}::${name}`,
    name,
    opts: {
      protect: r.protect ?? false,
      ignoreChanges: [],
      aliases: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
      additionalSecretOutputs: [],
    },
    stackTags: new Map<string, string>(),
    isType: () => false,
    asType: () => undefined,
    getConfig: () => ({}),
    notApplicable: (reason?: string) => {
      throw new Error(`not applicable: ${reason}`);
    },
  } as unknown as ResourceValidationArgs;
  const validate = policy.validateResource;
  for (const v of Array.isArray(validate) ? validate : validate ? [validate] : []) {
    await v(args, (message) => messages.push(message));
  }
  return messages;
}

/** Wraps each secret path of a captured registration back into the engine's secret form. */
function asEngineInputs(r: Registration): Record<string, unknown> {
  const inputs = structuredClone(r.inputs);
  for (const p of r.secretPaths) {
    const keys = p.match(/[^.[\]]+/g) ?? [];
    let cur = inputs as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
    const last = keys[keys.length - 1]!;
    cur[last] = secret(cur[last]);
  }
  return inputs;
}

const PINNED = { host: "192.0.2.10", user: "maxvamp", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", hostKey: FIXTURE_HOST_KEY };

function command(over: Record<string, unknown> = {}, connection: Record<string, unknown> = PINNED): FakeResource {
  return { type: COMMAND_TYPE, inputs: { connection: secret(connection), create: "true", addPreviousOutputInEnv: false, ...over } };
}

function volume(over: Record<string, unknown> = {}, protect = true): FakeResource {
  return { type: VOLUME_TYPE, name: "v", inputs: { name: "v", driver: "local", labels: [{ label: "managed-by", value: "dgx-storage" }], ...over }, protect };
}

function container(over: Record<string, unknown>): FakeResource {
  return { type: CONTAINER_TYPE, inputs: { name: "c", image: "busybox:1.36", ...over } };
}

describe("policy pack", () => {
  it("has the six rules, each mandatory and with a validateResource", () => {
    expect(policies.map((p) => p.name)).toEqual([
      "remote-command-pins-host-key",
      "secret-stdin-no-logging",
      "bind-volume-absolute-device",
      "data-volume-protected",
      "container-one-source-per-target",
      "container-port-bound",
    ]);
    for (const p of policies) {
      expect(p.enforcementLevel).toBe("mandatory");
      expect(typeof p.validateResource).toBe("function");
      expect(p.description?.length).toBeGreaterThan(20);
    }
  });

  it("the policy sees a secret input's plaintext (deserializeProperties unwraps secrets for validation)", async () => {
    const props = deserializeProperties(Struct.fromJavaScript({ connection: secret({ hostKey: FIXTURE_HOST_KEY }) }), false);
    expect(props).toEqual({ connection: { hostKey: FIXTURE_HOST_KEY } });
  });

  it("a rule ignores resources of other types", async () => {
    const bare = { type: "docker:index/network:Network", inputs: {} };
    for (const p of policies) expect(await violations(p, bare)).toEqual([]);
  });
});

describe("remote-command-pins-host-key", () => {
  const check = (r: FakeResource) => violations(remoteCommandPinsHostKey, r);

  it("accepts a command whose secret connection pins an OpenSSH host key", async () => {
    expect(await check(command())).toEqual([]);
    expect(await check(command({}, { ...PINNED, hostKey: `${FIXTURE_HOST_KEY} root@sark` }))).toEqual([]);
  });

  it.each([
    ["no hostKey", { ...PINNED, hostKey: undefined }, /hostKey is not set/],
    ["an empty hostKey", { ...PINNED, hostKey: "" }, /hostKey is not set/],
    ["hostKey unpinned", { ...PINNED, hostKey: "unpinned" }, /hostKey is "unpinned"/],
    ["a fingerprint, not a key", { ...PINNED, hostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU" }, /not an OpenSSH public key line/],
    ["a pinned target behind an unpinned proxy", { ...PINNED, proxy: { host: "192.0.2.1", user: "jump" } }, /connection\.proxy\.hostKey is not set/],
  ])("rejects a command with %s", async (_what, connection, message) => {
    const v = await check(command({}, connection as Record<string, unknown>));
    expect(v).toHaveLength(1);
    expect(v[0]).toMatch(message);
  });

  it("rejects a command without a connection", async () => {
    expect(await check({ type: COMMAND_TYPE, inputs: { create: "true" } })).toEqual([expect.stringMatching(/connection is missing/)]);
  });
});

describe("secret-stdin-no-logging", () => {
  const check = (r: FakeResource) => violations(secretStdinNoLogging, r);

  it("accepts stdin with logging none, and a command without stdin whatever it logs", async () => {
    expect(await check(command({ stdin: secret("token"), logging: "none" }))).toEqual([]);
    expect(await check(command({ logging: "stdoutAndStderr" }))).toEqual([]);
    expect(await check(command())).toEqual([]);
  });

  it("accepts secret stdin that is unknown during preview (the rule only tests that it is there)", async () => {
    expect(await check(command({ stdin: secret(UNKNOWN_VALUE), logging: "none" }))).toEqual([]);
  });

  it.each([
    ["no logging setting", {}, /logging is not set/],
    ["logging stderr", { logging: "stderr" }, /logging is "stderr"/],
    ["logging stdoutAndStderr", { logging: "stdoutAndStderr" }, /logging is "stdoutAndStderr"/],
  ])("rejects stdin with %s", async (_what, over, message) => {
    expect(await check(command({ stdin: secret("token"), ...over }))).toEqual([expect.stringMatching(message)]);
  });
});

describe("bind-volume-absolute-device", () => {
  const check = (r: FakeResource) => violations(bindVolumeAbsoluteDevice, r);

  it("accepts a bind volume on an absolute device, and a named volume", async () => {
    expect(await check(volume({ driverOpts: { type: "none", o: "bind", device: "/data/chroma" } }))).toEqual([]);
    expect(await check(volume())).toEqual([]);
    expect(await check(volume({ driverOpts: { type: "tmpfs", device: "tmpfs", o: "size=100m" } }))).toEqual([]);
  });

  it.each([
    ["a relative device", { o: "bind", device: "data/chroma" }, /not an absolute path/],
    ["a relative device with rbind in a list", { o: "rbind,ro", device: "./chroma" }, /not an absolute path/],
    ["a device with ..", { o: "bind", device: "/data/../etc" }, /not a normalised path/],
    ["a trailing slash", { o: "bind", device: "/data/chroma/" }, /not a normalised path/],
    ["no device", { o: "bind" }, /device is not set/],
  ])("rejects %s", async (_what, driverOpts, message) => {
    expect(await check(volume({ driverOpts: { type: "none", ...driverOpts } }))).toEqual([expect.stringMatching(message)]);
  });
});

describe("data-volume-protected", () => {
  const check = (r: FakeResource) => violations(dataVolumeProtected, r);

  it("accepts a protected volume", async () => {
    expect(await check(volume({}, true))).toEqual([]);
  });

  it("rejects an unprotected volume, naming it", async () => {
    expect(await check(volume({}, false))).toEqual([expect.stringMatching(/volume v is not protected/)]);
  });

  it(`exempts only a volume labelled ${HOLDS_DATA_LABEL}=false`, async () => {
    expect(await check(volume({ labels: [{ label: HOLDS_DATA_LABEL, value: "false" }] }, false))).toEqual([]);
    expect(await check(volume({ labels: [{ label: HOLDS_DATA_LABEL, value: "true" }] }, false))).toHaveLength(1);
  });
});

describe("container-one-source-per-target", () => {
  const check = (r: FakeResource) => violations(containerOneSourcePerTarget, r);

  it("accepts one source per path", async () => {
    expect(
      await check(
        container({
          mounts: [
            { type: "volume", source: "chroma-data", target: "/chroma/chroma" },
            { type: "bind", source: "/data/models", target: "/models", readOnly: true },
          ],
          volumes: [{ volumeName: "cache", containerPath: "/root/.cache" }],
        }),
      ),
    ).toEqual([]);
  });

  it("does not read a mount's source, which may be unknown during preview", async () => {
    // the fixture really is unknown to a policy: reading it throws, as in a preview
    const props = unknownCheckingProxy(deserializeProperties(Struct.fromJavaScript({ mounts: [{ source: UNKNOWN_VALUE }] }), false)) as {
      mounts: { source: unknown }[];
    };
    expect(() => props.mounts[0]!.source).toThrow(UnknownValueError);
    expect(await check(container({ mounts: [{ type: "volume", source: UNKNOWN_VALUE, target: "/data" }] }))).toEqual([]);
  });

  it.each([
    [
      "two mounts at one target",
      {
        mounts: [
          { type: "volume", source: "a", target: "/chroma/data" },
          { type: "bind", source: "/data/chroma", target: "/chroma/data", readOnly: true },
        ],
      },
      /\/chroma\/data is mounted 2 times \(mounts\[0\], mounts\[1\]\)/,
    ],
    [
      "a mount and a volume at one path",
      { mounts: [{ type: "volume", source: "vllm-models", target: "/models" }], volumes: [{ hostPath: "/data/models", containerPath: "/models" }] },
      /\/models is mounted 2 times \(mounts\[0\], volumes\[0\]\)/,
    ],
    [
      "the same path spelt with a trailing slash",
      {
        mounts: [
          { type: "volume", source: "a", target: "/app/data/" },
          { type: "bind", source: "/srv", target: "/app/data" },
        ],
      },
      /\/app\/data is mounted 2 times/,
    ],
  ])("rejects %s", async (_what, over, message) => {
    expect(await check(container(over))).toEqual([expect.stringMatching(message)]);
  });
});

describe("container-port-bound", () => {
  const check = (r: FakeResource) => violations(containerPortBound, r);

  it("accepts a port bound to an address, and no port at all", async () => {
    expect(await check(container({ ports: [{ internal: 8000, external: 8000, protocol: "tcp", ip: "192.168.68.69" }] }))).toEqual([]);
    expect(await check(container({}))).toEqual([]);
  });

  it("refuses a port without an address or on 0.0.0.0, naming it", async () => {
    expect(
      await check(
        container({
          ports: [
            { internal: 8000, external: 8000 },
            { internal: 53, external: 53, ip: "0.0.0.0" },
          ],
        }),
      ),
    ).toEqual([
      expect.stringMatching(/^ports\[0\] \(external 8000\) is published on every interface/),
      expect.stringMatching(/^ports\[1\] \(external 53\) is published on every interface/),
    ]);
  });

  it(`accepts every interface on purpose, through the ${EXPOSE_TO_ALL_LABEL} label the component sets for exposeToAll`, async () => {
    const config = pinnedStackConfig("sark");
    const services = structuredClone(config.services) as Record<string, Record<string, unknown>>;
    services.chromadb!.exposeToAll = true;
    services.chromadb!.ports = [{ published: 8000, target: 8000 }];
    const run = await runStack({ stack: "sark", config: { ...config, services } });
    const c = run.byName("sark-chromadb-container");
    expect(c.inputs.labels).toContainEqual({ label: EXPOSE_TO_ALL_LABEL, value: "true" });
    expect(await check({ type: c.type, name: c.name, inputs: asEngineInputs(c) })).toEqual([]);
    const { labels, ...unlabelled } = asEngineInputs(c);
    expect(labels).toBeDefined();
    expect(await check({ type: c.type, name: c.name, inputs: unlabelled })).toEqual([expect.stringMatching(/is published on every interface/)]);
  });
});

describe("the program's own resources", () => {
  it.each(["sark", "clu"] as const)("%s: every registration passes every rule", async (stack) => {
    const run = await runStack({ stack, config: pinnedStackConfig(stack) });
    // the rules have something to judge in each stack
    const types = new Set(run.registrations.map((r) => r.type));
    for (const t of [COMMAND_TYPE, VOLUME_TYPE, CONTAINER_TYPE]) expect(types).toContain(t);
    // secrets on stdin: the borg passphrase on both hosts, the swarm join token on clu
    expect(run.registrations.some((r) => r.type === COMMAND_TYPE && "stdin" in r.inputs)).toBe(true);
    expect(run.ofType(VOLUME_TYPE).some((r) => (r.inputs.driverOpts as { o?: string } | undefined)?.o === "bind")).toBe(true);

    const found: string[] = [];
    for (const r of run.registrations) {
      const resource = { type: r.type, name: r.name, inputs: asEngineInputs(r), protect: r.protect };
      for (const p of policies) for (const v of await violations(p, resource)) found.push(`${r.name} [${p.name}]: ${v}`);
    }
    expect(found).toEqual([]);
  });

  it(`a scratch volume (data: false) passes the protection rule unprotected, through the ${HOLDS_DATA_LABEL} label the component sets; a data volume does not`, async () => {
    const config = pinnedStackConfig("sark");
    const volumes = [...(config.volumes as Record<string, unknown>[]), { name: "scratch-cache", host: "sark", data: false }];
    const run = await runStack({ stack: "sark", config: { ...config, volumes } });
    const volume = (name: string) => {
      const r = run.ofType(VOLUME_TYPE).find((x) => x.inputs.name === name);
      if (!r) throw new Error(`no volume ${name}`);
      return r;
    };
    const scratch = volume("scratch-cache");
    expect(scratch.protect).toBe(false);
    expect(await violations(dataVolumeProtected, { type: scratch.type, name: scratch.name, inputs: asEngineInputs(scratch), protect: false })).toEqual([]);
    // a data volume as the component registers it (no such label), had it forgotten protect
    const data = volume("chroma-data");
    expect(data.protect).toBe(true);
    expect(await violations(dataVolumeProtected, { type: data.type, name: data.name, inputs: asEngineInputs(data), protect: false })).toEqual([
      expect.stringMatching(/is not protected/),
    ]);
  });

  it("the committed stack files, whose host keys are unpinned, fail the host-key rule on every command", async () => {
    const run = await runStack({ stack: "sark", config: stackFileConfig("Pulumi.sark.yaml") });
    const commands = run.ofType(COMMAND_TYPE);
    expect(commands.length).toBeGreaterThan(0);
    for (const r of commands) {
      expect(await violations(remoteCommandPinsHostKey, { type: r.type, inputs: asEngineInputs(r) })).toEqual([expect.stringMatching(/"unpinned"/)]);
    }
  });
});

/**
 * The pack as the Pulumi CLI runs it for `pulumi preview --policy-pack policy`: the nodejs
 * language host starts `@pulumi/pulumi/cmd/run-policy-pack` in policy/ (ts-node compiles
 * index.ts with policy/tsconfig.json and type checking on), the pack prints the port of its
 * gRPC analyzer on loopback, and the engine sends each resource to `Analyze`.
 */
describe("the pack served over gRPC, as the engine runs it", () => {
  let server: ChildProcess | undefined;
  let client: AnalyzerClient;
  let stderr = "";

  beforeAll(async () => {
    const runner = path.join(REPO, "node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");
    // the first argument (the engine's address) is dropped by the runner
    const child = spawn(process.execPath, [runner, "127.0.0.1:0", "."], { cwd: path.join(REPO, "policy"), stdio: ["ignore", "pipe", "pipe"] });
    server = child;
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const port = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const line = /^(\d+)\n/.exec(out);
        if (line) resolve(line[1]!);
      });
      child.on("exit", (code) => reject(new Error(`the policy pack exited with ${code} before serving:\n${stderr}`)));
    });
    client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }, 90_000);

  afterAll(() => {
    client?.close();
    if (server?.pid !== undefined && server.exitCode === null) server.kill("SIGTERM");
  });

  function analyze(r: FakeResource): Promise<AnalyzeDiagnostic[]> {
    const name = r.name ?? "test";
    const req = new AnalyzeRequest()
      .setType(r.type)
      .setName(name)
      .setUrn(`urn:pulumi:test::dgx-storage::${r.type}::${name}`)
      .setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(r.inputs))))
      .setOptions(new AnalyzerResourceOptions().setProtect(r.protect ?? false));
    return new Promise((resolve, reject) => client.analyze(req, (err, res) => (err ? reject(err) : resolve(res.getDiagnosticsList()))));
  }

  const summary = (ds: AnalyzeDiagnostic[]) => ds.map((d) => ({ policy: d.getPolicyname(), level: d.getEnforcementlevel(), message: d.getMessage() }));

  it("announces the five rules, all mandatory, at policy/package.json's version", async () => {
    const info = await new Promise<AnalyzerInfo>((resolve, reject) => client.getAnalyzerInfo(new Empty(), (err, res) => (err ? reject(err) : resolve(res))));
    expect(info.getName()).toBe("dgx-storage-policy");
    expect(info.getVersion()).toBe("0.1.0");
    expect(info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()])).toEqual(policies.map((p) => [p.name, EnforcementLevel.MANDATORY]));
  });

  it("passes the program's own resources (sark, pinned)", async () => {
    const run = await runStack({ stack: "sark", config: pinnedStackConfig("sark") });
    for (const r of run.registrations) {
      expect(summary(await analyze({ type: r.type, name: r.name, inputs: asEngineInputs(r), protect: r.protect })), r.name).toEqual([]);
    }
  });

  it("rejects, as mandatory, an unpinned command, secret stdin that logs, and an unprotected relative bind volume", async () => {
    expect(summary(await analyze(command({ stdin: secret("t") }, { ...PINNED, hostKey: "unpinned" })))).toEqual([
      { policy: "remote-command-pins-host-key", level: EnforcementLevel.MANDATORY, message: expect.stringMatching(/"unpinned"/) },
      { policy: "secret-stdin-no-logging", level: EnforcementLevel.MANDATORY, message: expect.stringMatching(/logging is not set/) },
    ]);
    expect(summary(await analyze(volume({ driverOpts: { type: "none", o: "bind", device: "data" } }, false))).map((d) => d.policy)).toEqual([
      "bind-volume-absolute-device",
      "data-volume-protected",
    ]);
    const twice = container({ mounts: [{ type: "volume", source: "a", target: "/x" }], volumes: [{ hostPath: "/y", containerPath: "/x" }] });
    expect(summary(await analyze(twice)).map((d) => [d.policy, d.level])).toEqual([["container-one-source-per-target", EnforcementLevel.MANDATORY]]);
  });

  it("a value it must read that is unknown during preview turns a rule advisory for that resource (the engine's rule, not ours)", async () => {
    const ds = summary(await analyze({ type: COMMAND_TYPE, inputs: { connection: UNKNOWN_VALUE, create: "true" } }));
    expect(ds).toEqual([
      {
        policy: "remote-command-pins-host-key",
        level: EnforcementLevel.ADVISORY,
        message: expect.stringMatching(/can't run policy 'remote-command-pins-host-key'.* during preview/),
      },
    ]);
  });
});
