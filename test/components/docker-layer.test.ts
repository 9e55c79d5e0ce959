import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { loadStackFile, parseHostConfig } from "../../components/config";
import { sha256 } from "../../components/render/command";
import { FIXTURE_HOST_KEY } from "../fixtures";
import {
  expectConfigProblem,
  pinnedStackConfig,
  REPO,
  runStack,
  SENTINEL_CHROMA_TOKEN,
  SENTINEL_JOIN_TOKEN,
  stackFileConfig,
  UNKNOWN,
  type Registration,
  type StackRun,
} from "../harness";

const VOLUME = "docker:index/volume:Volume";

const run = (stack: "sark" | "clu", preview = true) => runStack({ stack, config: pinnedStackConfig(stack), preview });

function dockerResources(r: StackRun): Registration[] {
  return r.registrations.filter((x) => x.type.startsWith("docker:"));
}

describe("Docker provider per host", () => {
  it.each(["sark", "clu"] as const)("%s: every Docker resource uses the host's own provider, over SSH with the pinned key", async (stack) => {
    const r = await run(stack);
    const provider = r.byName(`${stack}-docker`);
    const address = stack === "sark" ? "192.168.68.69" : "192.168.68.71";
    expect(provider.inputs.host).toBe(`ssh://maxvamp@${address}:22`);
    // provider inputs reach the engine JSON-encoded
    expect(JSON.parse(String(provider.inputs.sshOpts))).toEqual([
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      `KnownHostsCommand=/bin/echo '${address} ${FIXTURE_HOST_KEY}'`,
    ]);
    const docker = dockerResources(r);
    expect(docker.length).toBeGreaterThan(3);
    for (const d of docker) expect(d.provider, d.name).toBe(`${provider.urn}::${stack}-docker-id`);
  });

  it("puts the port in the known-hosts pattern when it is not 22, and pins nothing for an unpinned key", async () => {
    const config = pinnedStackConfig("sark");
    const host = config.host as { ssh: Record<string, unknown> };
    const r = await runStack({ stack: "sark", config: { ...config, host: { ...host, ssh: { ...host.ssh, port: 2222 } } } });
    expect(JSON.parse(String(r.byName("sark-docker").inputs.sshOpts))).toContain(`KnownHostsCommand=/bin/echo '[192.168.68.69]:2222 ${FIXTURE_HOST_KEY}'`);
    const unpinned = await runStack({ stack: "sark", config: stackFileConfig("Pulumi.sark.yaml") });
    expect(String(unpinned.byName("sark-docker").inputs.sshOpts)).not.toContain("KnownHostsCommand");
  });
});

describe("volumes", () => {
  it.each(["sark", "clu"] as const)("%s: the plan's volumes are protected and kept on delete", async (stack) => {
    const r = await run(stack);
    const volumes = r.ofType(VOLUME);
    expect(volumes.map((v) => v.inputs.name).sort()).toEqual(
      stack === "sark" ? ["backup-data", "chroma-data", "chroma-persistent"] : ["memory-data", "memory-persistent", "vllm-models"],
    );
    for (const v of volumes) {
      expect(v.protect, v.name).toBe(true);
      expect(v.retainOnDelete, v.name).toBe(true);
      expect(v.inputs.driver).toBe("local");
    }
  });

  it("a bind-backed volume gets type=none,o=bind on an absolute device, after the directory command", async () => {
    const r = await run("sark");
    const vol = r.byName("sark-volumes-chroma-persistent");
    expect(vol.inputs.driverOpts).toEqual({ type: "none", o: "bind", device: "/data/chroma" });
    const dir = r.byName("sark-volumes-chroma-persistent-dir");
    expect(vol.dependsOn).toContain(dir.urn);
    expect(String(dir.inputs.create)).toMatch(/ ensure-dir \/data\/chroma 0:0 0755$/);
    expect(dir.inputs).not.toHaveProperty("delete"); // never empties or deletes the directory
    expect(r.byName("sark-volumes-chroma-data").inputs).not.toHaveProperty("driverOpts");
  });
});

describe("swarm and the overlay network", () => {
  it("sark initialises the swarm once, keeps its stdout secret, and creates the attachable overlay network after it", async () => {
    const r = await run("sark");
    const init = r.byName("sark-swarm-init");
    expect(String(init.inputs.create)).toMatch(/ swarm-init 192\.168\.68\.69$/);
    expect(init.inputs).not.toHaveProperty("delete");
    expect(init.inputs.logging).toBe("stderr");
    expect(init.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    // the network: created when missing, one made by hand with the same options used as it is
    const net = r.byName("sark-swarm-network");
    expect(net.type).toBe("command:remote:Command");
    expect(String(net.inputs.create)).toMatch(/ network-ensure optimized-swarm 0$/); // not encrypted by default
    expect(net.inputs).not.toHaveProperty("delete");
    expect(net.dependsOn).toContain(init.urn);
    expect(r.ofType("docker:index/network:Network")).toEqual([]);
  });

  it("sark exports the manager address and node id in the clear and the worker token as a secret", async () => {
    const r = await run("sark", false);
    expect(r.exports.swarmManagerAddress).toBe("192.168.68.69:2377");
    expect(r.exports.swarmManagerNodeId).toBe("mgrnode0000000000000000001");
    expect(r.exports.swarmWorkerToken).toBe(SENTINEL_JOIN_TOKEN);
    expect(await pulumi.isSecret(r.rawExports.swarmWorkerToken as pulumi.Output<string>)).toBe(true);
    expect(await pulumi.isSecret(r.rawExports.swarmManagerNodeId as pulumi.Output<string>)).toBe(false);
    expect(r.exports.overlayNetwork).toBe("optimized-swarm");
  });

  it("an encrypted network sets the encrypted option", async () => {
    const config = pinnedStackConfig("sark");
    const swarm = config.swarm as Record<string, unknown>;
    const r = await runStack({ stack: "sark", config: { ...config, swarm: { ...swarm, network: { name: "optimized-swarm", encrypted: true } } } });
    expect(String(r.byName("sark-swarm-network").inputs.create)).toMatch(/ network-ensure optimized-swarm 1$/);
  });

  it("clu reads the manager's stack and joins with the token on stdin only, logging nothing", async () => {
    const r = await run("clu");
    expect(r.reads.map((x) => [x.type, x.name, x.id])).toEqual([["pulumi:pulumi:StackReference", "clu-swarm-manager", "organization/dgx-storage/sark"]]);
    const join = r.byName("clu-swarm-join");
    expect(String(join.inputs.create)).toMatch(/ swarm-join 192\.168\.68\.69:2377 mgrnode0000000000000000001 192\.168\.68\.71$/);
    expect(String(join.inputs.create)).not.toContain(SENTINEL_JOIN_TOKEN);
    expect(join.inputs.stdin).toBe(SENTINEL_JOIN_TOKEN);
    expect(join.secretPaths).toContain("stdin");
    expect(join.inputs.logging).toBe("none");
    expect(join.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(join.inputs).not.toHaveProperty("delete");
    expect(r.ofType("docker:index/network:Network")).toEqual([]); // only the manager creates it
  });
});

describe("services", () => {
  it("ChromaDB on sark: one source at /chroma/chroma, pinned image, overlay, restart policy, health check; created stopped for the switch", async () => {
    const r = await run("sark");
    const c = r.byName("sark-chromadb-container");
    expect(c.inputs.name).toBe("chromadb");
    // the data path after the plan's migration (test/components/data-migration.test.ts)
    expect(c.inputs.mounts).toEqual([{ type: "bind", source: "/data/enhanced/chromadb", target: "/chroma/chroma", readOnly: false }]);
    expect(c.inputs.networksAdvanced).toEqual([{ name: "optimized-swarm", aliases: ["chromadb"] }]);
    expect(c.inputs.restart).toBe("unless-stopped");
    expect(c.inputs.ports).toEqual([{ internal: 8000, external: 8000, protocol: "tcp", ip: "192.168.68.69" }]);
    expect(c.inputs.envs).toEqual([
      "IS_PERSISTENT=TRUE",
      "ANONYMIZED_TELEMETRY=FALSE",
      "CHROMA_SERVER_AUTHN_PROVIDER=chromadb.auth.token_authn.TokenAuthenticationServerProvider",
      `CHROMA_SERVER_AUTHN_CREDENTIALS=${SENTINEL_CHROMA_TOKEN}`,
    ]);
    expect((c.inputs.healthcheck as Record<string, unknown>).tests).toEqual(expect.arrayContaining(["CMD", "python"]));
    // created stopped: the switch starts it and waits for its health check (waitTimeout: 180)
    expect(c.inputs).toMatchObject({ start: false, mustRun: false, destroyGraceSeconds: 30 });
    expect(c.inputs).not.toHaveProperty("wait");
    expect(String(r.byName("sark-chromadb-switch").inputs.create)).toMatch(
      / container-switch chromadb sark-chromadb-container-id 180 30 --migration chromadb$/,
    );
    expect(c.deleteBeforeReplace).toBe(true);
    const image = r.byName("sark-chromadb-image");
    expect(image.inputs).toMatchObject({ name: "chromadb/chroma:0.6.3", keepLocally: true });
    expect(c.dependsOn).toEqual(expect.arrayContaining([image.urn, r.byName("sark-swarm-network").urn, r.byName("sark-chromadb-adopt").urn]));
    // a replaced or deleted container is not stopped by the provider: the switch retires it
    expect(c.retainOnDelete).toBe(true);
    // the configuration's hash: in a label, and the adopt step's argument and trigger
    // the hash covers the token as its SHA-256 only (a new token replaces the container)
    const secrets = [sha256(`CHROMA_SERVER_AUTHN_CREDENTIALS=${SENTINEL_CHROMA_TOKEN}`)];
    const hash = sha256(JSON.stringify({ service: loadStackFile(path.join(REPO, "Pulumi.sark.yaml")).services.chromadb, network: "optimized-swarm", secrets }));
    expect(c.inputs.labels).toEqual([
      { label: "managed-by", value: "dgx-storage" },
      { label: "dgx-storage/config", value: hash },
    ]);
    const adopt = r.byName("sark-chromadb-adopt");
    expect(String(adopt.inputs.create)).toMatch(new RegExp(` container-adopt chromadb ${hash}$`));
    expect(adopt.inputs.triggers).toEqual([hash]);
  });

  it("vLLM on clu: exactly one NVIDIA GPU, the model read-only, the cache volume at its own path", async () => {
    const r = await run("clu");
    const c = r.byName("clu-vllm-container");
    expect(c.inputs.deviceRequests).toEqual([{ driver: "nvidia", count: 1, capabilities: ["gpu"] }]);
    expect(c.inputs.mounts).toEqual([
      { type: "bind", source: "/home/maxvamp/GLM-4.5-Air-AWQ", target: "/models/GLM-4.5-Air-AWQ", readOnly: true },
      { type: "volume", source: "vllm-models", target: "/root/.cache/huggingface", readOnly: false },
    ]);
    expect(c.inputs.shmSize).toBe(16384);
    expect(c.inputs.command).toEqual(expect.arrayContaining(["--model", "/models/GLM-4.5-Air-AWQ"]));
    expect(c.deleteBeforeReplace).toBe(true);
    expect(c.dependsOn).toEqual(
      expect.arrayContaining([r.byName("clu-swarm-join").urn, r.byName("clu-volumes-vllm-models").urn, r.byName("clu-vllm-adopt").urn]),
    );
  });

  it("a GPU named by id is requested by id", async () => {
    const config = pinnedStackConfig("clu");
    const services = structuredClone(config.services) as Record<string, Record<string, unknown>>;
    services.vllm!.gpus = { deviceIds: ["GPU-3f2a"] };
    const r = await runStack({ stack: "clu", config: { ...config, services } });
    expect(r.byName("clu-vllm-container").inputs.deviceRequests).toEqual([{ driver: "nvidia", deviceIds: ["GPU-3f2a"], capabilities: ["gpu"] }]);
  });

  it("the memory service on clu uses its host-built image without pulling, and its data", async () => {
    const r = await run("clu");
    expect(r.registrations.find((x) => x.name === "clu-memory-service-image")).toBeUndefined();
    const c = r.byName("clu-memory-service-container");
    expect(c.inputs.image).toBe("memory-service:1.0");
    expect(c.inputs.mounts).toEqual([{ type: "bind", source: "/data/enhanced/memory-service", target: "/app/data", readOnly: false }]);
    expect(c.inputs).not.toHaveProperty("deviceRequests");
    expect(c.inputs.networksAdvanced).toEqual([{ name: "optimized-swarm", aliases: ["memory-service"] }]);
  });

  it("exports the container names (unknown until they exist) and volumes", async () => {
    const r = await run("clu");
    expect(r.exports.volumes).toEqual(["memory-data", "memory-persistent", "vllm-models"]);
    expect([UNKNOWN, ["memory-service", "vllm"]]).toContainEqual(r.exports.containers);
  });
});

describe("config door: the Docker layer", () => {
  const base = () => pinnedStackConfig("sark");
  const reject = expectConfigProblem;
  const chroma = (patch: Record<string, unknown>) => {
    const c = base();
    const services = structuredClone(c.services) as Record<string, Record<string, unknown>>;
    Object.assign(services.chromadb!, patch);
    return { ...c, services };
  };

  it("rejects the plan's two sources at one container path", () =>
    reject(
      chroma({
        mounts: [
          { source: "chroma-data", target: "/chroma/data" },
          { source: "/data/chroma", target: "/chroma/data", readOnly: true },
        ],
      }),
      "services.chromadb.mounts.1.target",
      "one source per container path",
    ));
  it("rejects a relative bind device", () =>
    reject({ ...base(), volumes: [{ name: "chroma-persistent", host: "sark", bind: { device: "data/chroma" } }] }, "volumes.0.bind.device", "absolute path"));
  it.each([0, -1, 1.5])("rejects a GPU count of %s", (count) => reject(chroma({ gpus: { count } }), "services.chromadb.gpus.count", "a positive whole number"));
  it("rejects GPUs given both by count and by id", () =>
    reject(chroma({ gpus: { count: 1, deviceIds: ["0"] } }), "services.chromadb.gpus", "either count or deviceIds"));
  it("rejects a service placed on an unknown host", () => reject(chroma({ host: "sarc" }), "services.chromadb.host", "this stack's host 'sark'"));
  it("rejects a volume placed on the other host", () =>
    reject({ ...base(), volumes: [{ name: "memory-data", host: "clu" }] }, "volumes.0.host", "this stack's host 'sark'"));
  it("rejects a duplicate volume name", () =>
    reject(
      {
        ...base(),
        volumes: [
          { name: "chroma-data", host: "sark" },
          { name: "chroma-data", host: "sark" },
        ],
      },
      "volumes.1.name",
      "a unique volume name",
    ));
  it("rejects two volumes binding one device", () =>
    reject(
      {
        ...base(),
        volumes: [
          { name: "a", host: "sark", bind: { device: "/data/x" } },
          { name: "b", host: "sark", bind: { device: "/data/x" } },
        ],
      },
      "volumes.1.bind.device",
      "a device no other volume uses",
    ));
  it.each(["chromadb/chroma:latest", "chromadb/chroma", "localhost:5000/chroma"])("rejects the unpinned image %s", (image) =>
    reject(chroma({ image }), "services.chromadb.image", "pinned tag or digest"),
  );
  it("accepts an image pinned by digest", () => {
    expect(() => parseHostConfig(chroma({ image: `chromadb/chroma@sha256:${"a".repeat(64)}` }), { source: "x" })).not.toThrow();
  });
  it("rejects a mount of an undeclared volume", () =>
    reject(
      chroma({ mounts: [{ source: "chroma-dta", target: "/chroma/chroma" }] }),
      "services.chromadb.mounts.0.source",
      "a volume declared in this stack's volumes",
    ));
  it("rejects two services publishing one host port", () => {
    const c = chroma({});
    const services = c.services as Record<string, unknown>;
    services.other = { host: "sark", image: "busybox:1.36", ports: [{ published: 8000, target: 80, ip: "192.168.68.69" }] };
    reject(c, "services.other.ports.0.published", "a host port no other service publishes");
  });
  it("rejects a network on a worker", () =>
    reject(
      {
        ...pinnedStackConfig("clu"),
        swarm: { role: "worker", advertiseAddress: "192.168.68.71", managerStack: "organization/dgx-storage/sark", network: { name: "x" } },
      },
      "swarm.network",
      "no network on a worker",
    ));
  it("rejects an overlay service without a swarm", () => {
    const { swarm: _s, ...noSwarm } = base();
    reject(noSwarm, "services.chromadb.overlay", "a swarm section");
  });
  it("rejects a bad owner and mode", () => {
    reject(
      { ...base(), volumes: [{ name: "v", host: "sark", bind: { device: "/data/v", owner: "maxvamp", mode: "755x" } }] },
      "volumes.0.bind.owner",
      "numeric 'uid:gid'",
    );
    reject({ ...base(), volumes: [{ name: "v", host: "sark", bind: { device: "/data/v", mode: "0999" } }] }, "volumes.0.bind.mode", "octal mode");
  });
  it("rejects a health check that is not CMD or CMD-SHELL", () =>
    reject(chroma({ healthcheck: { test: ["curl", "-f", "x"] } }), "services.chromadb.healthcheck.test", "CMD or CMD-SHELL"));
});
