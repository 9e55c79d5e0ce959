/**
 * Who can reach the services: published ports bound to a named address, the client networks and
 * the swarm peer in the config door, the tokens as secrets, the firewall's ruleset and command.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseHostConfig } from "../../components/config";
import { firewallSpec, preflightChecks } from "../../components/plan/host";
import { scriptCommand, sha256 } from "../../components/render/command";
import { FIREWALL_FILE, renderFirewall, renderFirewallUnit } from "../../components/render/firewall";
import { parseUnit } from "../../components/render/systemd";
import { OBSERVABILITY_FIXTURE, withValue } from "../fixtures";
import { expectConfigProblem, pinnedStackConfig, runStack, SENTINEL_CHROMA_TOKEN, SENTINEL_VLLM_API_KEY, type StackRun } from "../harness";
import { itWith } from "../tools";

const CONTAINER = "docker:index/container:Container";
const COMMAND = "command:remote:Command";
const TOKENS = [SENTINEL_CHROMA_TOKEN, SENTINEL_VLLM_API_KEY];

/** sark's stack file with one change to chromadb. */
function chroma(patch: Record<string, unknown>): Record<string, unknown> {
  const c = pinnedStackConfig("sark");
  const services = structuredClone(c.services) as Record<string, Record<string, unknown>>;
  Object.assign(services.chromadb!, patch);
  return { ...c, services };
}

describe("config door: published ports name their address", () => {
  it("GIVEN a port without ip THEN it is refused, naming the key and what to write", () =>
    expectConfigProblem(
      chroma({ ports: [{ published: 8000, target: 8000 }] }),
      "services.chromadb.ports.0.ip",
      "an address of this host to publish on (e.g. 192.168.68.69); or exposeToAll: true",
    ));

  it("GIVEN ip 0.0.0.0 THEN it is refused like no address", () =>
    expectConfigProblem(
      chroma({ ports: [{ published: 8000, target: 8000, ip: "0.0.0.0" }] }),
      "services.chromadb.ports.0.ip",
      '"0.0.0.0" is invalid; expected an address of this host',
    ));

  it("GIVEN an ip that is not an IPv4 address THEN the value is named", () =>
    expectConfigProblem(
      chroma({ ports: [{ published: 8000, target: 8000, ip: "192.168.68" }] }),
      "services.chromadb.ports.0.ip",
      '"192.168.68" is invalid; expected an IPv4 address',
    ));

  it("GIVEN exposeToAll THEN a port without ip is published on every interface, on purpose", () => {
    const c = parseHostConfig(chroma({ exposeToAll: true, ports: [{ published: 8000, target: 8000 }] }), { source: "Pulumi.sark.yaml" });
    expect(c.services.chromadb!.ports).toEqual([{ published: 8000, target: 8000, protocol: "tcp", ip: "0.0.0.0" }]);
    expect(preflightChecks(c).filter((x) => x.startsWith("address:"))).toEqual([]);
  });

  it("GIVEN the committed stack files THEN each port is bound to its host's LAN address, and preflight checks that the host has it", () => {
    const sark = parseHostConfig(pinnedStackConfig("sark"), { source: "Pulumi.sark.yaml" });
    const clu = parseHostConfig(pinnedStackConfig("clu"), { source: "Pulumi.clu.yaml" });
    expect(sark.services.chromadb!.ports.map((p) => p.ip)).toEqual(["192.168.68.69"]);
    expect(clu.services.vllm!.ports.map((p) => p.ip)).toEqual(["192.168.68.71"]);
    expect(preflightChecks(sark)).toContain("address:192.168.68.69");
    expect(preflightChecks(clu)).toContain("address:192.168.68.71");
    expect(sark.network?.clients).toEqual(["192.168.68.0/24"]);
    expect([sark.swarm?.peer, clu.swarm?.peer]).toEqual(["192.168.68.71", "192.168.68.69"]);
  });
});

describe("config door: client networks and the swarm peer", () => {
  const sark = () => pinnedStackConfig("sark");
  it.each([
    ["192.168.68.0", "an IPv4 network in CIDR form"],
    ["192.168.68.0/33", "an IPv4 network in CIDR form"],
    ["lan", "an IPv4 network in CIDR form"],
    ["192.168.68.5/24", "no host bits set (e.g. '192.168.68.0/24', not '192.168.68.5/24')"],
  ])("GIVEN client network %s THEN it is refused: %s", (bad, text) =>
    expectConfigProblem(withValue(sark(), "network.clients", [bad]), "network.clients.0", text),
  );

  it("GIVEN no client network THEN the section is refused", () =>
    expectConfigProblem(withValue(sark(), "network.clients", []), "network.clients", "at least one client network"));

  it("GIVEN a network section and a swarm without peer THEN the peer is asked for", () =>
    expectConfigProblem(withValue(sark(), "swarm.peer", undefined), "swarm.peer", "the other swarm node's address"));

  it("GIVEN the host's own address as peer THEN it is refused", () =>
    expectConfigProblem(withValue(sark(), "swarm.peer", "192.168.68.69"), "swarm.peer", "not this host's own advertiseAddress"));

  it("GIVEN a single address as /32 THEN it is a client network", () => {
    expect(parseHostConfig(withValue(sark(), "network.clients", ["192.168.68.0/24", "10.8.0.7/32"]), { source: "x" }).network?.clients).toEqual([
      "192.168.68.0/24",
      "10.8.0.7/32",
    ]);
  });
});

describe("config door: the service tokens are secrets", () => {
  const present = ["sshPrivateKey", "borgPassphrase"];
  const problems = (values: Record<string, unknown>, secretsPresent: string[], invalidSecrets: ("chromaToken" | "vllmApiKey")[] = []) => {
    try {
      parseHostConfig(values, { source: "Pulumi.sark.yaml", secretsPresent, invalidSecrets });
      return "";
    } catch (e) {
      return (e as Error).message;
    }
  };
  it("GIVEN chromaToken named by secretEnv but not set THEN it is asked for with the command that sets it", () => {
    expect(problems(pinnedStackConfig("sark"), present)).toContain(
      "services.chromadb.secretEnv.CHROMA_SERVER_AUTHN_CREDENTIALS: (missing) secret chromaToken; set it with: openssl rand -hex 32 | pulumi config set --secret chromaToken",
    );
    expect(problems(pinnedStackConfig("sark"), [...present, "chromaToken"])).toBe("");
  });
  it("GIVEN the token inline in plaintext THEN it is refused", () => {
    expect(problems({ ...pinnedStackConfig("sark"), chromaToken: "x".repeat(40) }, [...present, "chromaToken"])).toContain(
      "chromaToken: must be set as a secret",
    );
  });
  it("GIVEN a short token THEN it is refused without showing it", () => {
    const m = problems(pinnedStackConfig("sark"), [...present, "chromaToken"], ["chromaToken"]);
    expect(m).toContain("chromaToken: (secret, not shown) is invalid; expected at least 32 characters");
  });
  it("GIVEN secretEnv naming something else than a service token THEN the allowed names are listed", () =>
    expectConfigProblem(chroma({ secretEnv: { X: "sshPrivateKey" } }), "services.chromadb.secretEnv.X", '"chromaToken", "vllmApiKey"'));
});

describe.each(["sark", "clu"] as const)("stack %s under mocks: reach", (stack) => {
  const run = (): Promise<StackRun> => runStack({ stack, config: pinnedStackConfig(stack), preview: false });

  it("GIVEN the committed stack THEN no container publishes on all interfaces", async () => {
    const r = await run();
    const ports = r.ofType(CONTAINER).flatMap((c) => (c.inputs.ports as { ip?: string }[] | undefined) ?? []);
    expect(ports.length).toBeGreaterThan(0);
    for (const p of ports) {
      expect(p.ip).toMatch(/^192\.168\.68\.(69|71)$/);
      expect(p.ip).not.toBe("0.0.0.0");
    }
  });

  it("GIVEN the tokens THEN they appear only inside secret inputs: the container's envs, never a command, never in plaintext", async () => {
    const r = await run();
    const [token, envName] = stack === "sark" ? [SENTINEL_CHROMA_TOKEN, "CHROMA_SERVER_AUTHN_CREDENTIALS"] : [SENTINEL_VLLM_API_KEY, "VLLM_API_KEY"];
    const svc = r.byName(stack === "sark" ? "sark-chromadb-container" : "clu-vllm-container");
    expect(svc.inputs.envs).toContain(`${envName}=${token}`);
    expect(svc.secretPaths).toContain("envs");
    for (const x of r.registrations) {
      for (const t of TOKENS) {
        expect(JSON.stringify(x.plainInputs), x.name).not.toContain(t);
        if (x.type === COMMAND) expect(JSON.stringify(x.inputs), x.name).not.toContain(t);
      }
    }
    // the memory service is ChromaDB's client: it gets ChromaDB's token, as a secret too
    if (stack === "clu") {
      const memory = r.byName("clu-memory-service-container");
      expect(memory.inputs.envs).toContain(`CHROMA_CLIENT_AUTH_CREDENTIALS=${SENTINEL_CHROMA_TOKEN}`);
      expect(memory.inputs.envs).toContain("CHROMA_CLIENT_AUTH_PROVIDER=chromadb.auth.token_authn.TokenAuthClientProvider");
      expect(memory.secretPaths).toContain("envs");
      expect(JSON.stringify(memory.inputs)).not.toContain(SENTINEL_VLLM_API_KEY);
    }
    // no other container sees the tokens
    for (const c of r.ofType(CONTAINER).filter((c) => c !== svc)) expect(JSON.stringify(c.inputs), c.name).not.toContain(token);
    expect(JSON.stringify(r.exports)).not.toContain(token);
  });

  it("GIVEN a network section THEN the firewall command installs the rendered ruleset, re-runs on its hash, removes on delete, after the packages and before the services", async () => {
    const r = await run();
    const c = r.byName(`${stack}-firewall-apply`);
    const config = parseHostConfig(pinnedStackConfig(stack), { source: "x" });
    const ruleset = renderFirewall(firewallSpec(config));
    const unit = renderFirewallUnit();
    expect(c.inputs.create).toBe(scriptCommand("firewall", ["apply", ruleset, unit], { sudo: true }));
    expect(c.inputs.delete).toBe(scriptCommand("firewall", ["remove"], { sudo: true }));
    expect(c.inputs.triggers).toEqual([sha256(ruleset + unit)]);
    expect(c.deleteBeforeReplace).toBe(true);
    expect(c.dependsOn).toEqual([r.byName(`${stack}-packages`).urn]);
    const service = stack === "sark" ? "sark-chromadb-container" : "clu-vllm-container";
    const waits = (name: string) => r.byName(name).dependsOn.includes(c.urn);
    expect(waits(service)).toBe(true);
    expect(waits(stack === "sark" ? "sark-swarm-init" : "clu-swarm-join")).toBe(true);
    expect(ruleset).toContain(`ip saddr ${stack === "sark" ? "192.168.68.71" : "192.168.68.69"} accept`);
  });
});

/** A stack's firewall with the observability section (Prometheus and Alertmanager on sark). */
const specOf = (stack: "sark" | "clu") =>
  firewallSpec(parseHostConfig({ ...pinnedStackConfig(stack), observability: OBSERVABILITY_FIXTURE[stack] }, { source: "x" }));

describe("renderFirewall", () => {
  const spec = {
    clients: ["192.168.68.0/24", "10.8.0.7/32"],
    peer: "192.168.68.71",
    published: [{ ip: "192.168.68.69", port: 8000, protocol: "tcp" as const }],
  };

  it("replaces the table in one transaction, drops swarm ports from all but the peer and published ports from all but the clients", () => {
    const text = renderFirewall(spec);
    const lines = text.split("\n").map((l) => l.trim());
    expect(lines.slice(0, 8).filter((l) => l.startsWith("table") || l.startsWith("delete"))).toEqual([
      "table inet dgx-storage",
      "delete table inet dgx-storage",
      "table inet dgx-storage {",
    ]);
    expect(lines).toContain("elements = { 192.168.68.0/24, 10.8.0.7/32 }");
    expect(lines).toContain("type filter hook input priority filter - 1; policy accept;");
    expect(lines).toContain("type filter hook forward priority filter - 1; policy accept;");
    expect(lines).toContain("tcp dport { 2377, 7946 } jump swarm_peer");
    expect(lines).toContain("udp dport { 4789, 7946 } jump swarm_peer");
    expect(lines).toContain("meta l4proto esp jump swarm_peer");
    expect(lines.slice(lines.indexOf("chain swarm_peer {") + 1, lines.indexOf("chain swarm_peer {") + 4)).toEqual([
      "fib saddr type local accept",
      "ip saddr 192.168.68.71 accept",
      "drop",
    ]);
    expect(lines).toContain(
      "meta l4proto tcp ct direction original ct status dnat ct original ip daddr 192.168.68.69 ct original proto-dst 8000 ip saddr != @clients drop",
    );
    expect(text.startsWith("# Managed by dgx-storage")).toBe(true);
  });

  it("without a swarm peer has no input chain; a port on every interface matches any address", () => {
    const text = renderFirewall({ clients: ["10.0.0.0/8"], published: [{ ip: "0.0.0.0", port: 53, protocol: "udp" }] });
    expect(text).not.toContain("hook input");
    expect(text).toContain("meta l4proto udp ct direction original ct status dnat ct original proto-dst 53 ip saddr != @clients drop");
  });

  it("the host's own services: node_exporter from the peer (a worker) or the host alone (the manager), Prometheus from the clients, Alertmanager from the host alone", () => {
    expect(specOf("sark").hostPorts).toEqual([
      { port: 9100, from: "local", what: "node_exporter" },
      { port: 9090, from: "clients", what: "Prometheus and the storage page" },
      { port: 9093, from: "local", what: "Alertmanager" },
      { port: 9094, from: "local", what: "Alertmanager HA gossip (off)" },
    ]);
    expect(specOf("clu").hostPorts).toEqual([{ port: 9100, from: "peer", what: "node_exporter" }]);
    // without the observability section, nothing of it
    expect(firewallSpec(parseHostConfig(pinnedStackConfig("clu"), { source: "x" })).hostPorts).toEqual([]);
    const lines = (stack: "sark" | "clu") =>
      renderFirewall(specOf(stack))
        .split("\n")
        .map((l) => l.trim());
    expect(lines("clu")).toContain('tcp dport 9100 jump swarm_peer comment "node_exporter"');
    expect(lines("sark")).toEqual(
      expect.arrayContaining([
        'tcp dport 9100 fib saddr type != local drop comment "node_exporter"',
        'tcp dport 9090 fib saddr type != local ip saddr != @clients drop comment "Prometheus and the storage page"',
        'tcp dport 9093 fib saddr type != local drop comment "Alertmanager"',
        'tcp dport 9094 fib saddr type != local drop comment "Alertmanager HA gossip (off)"',
      ]),
    );
    // a host port without a peer gets an input chain of its own; one for the peer needs a peer
    const alone = renderFirewall({ clients: ["10.0.0.0/8"], published: [], hostPorts: [{ port: 9100, from: "clients", what: "node_exporter" }] });
    expect(alone).toContain("hook input");
    expect(alone).not.toContain("swarm_peer");
    expect(() => renderFirewall({ clients: ["10.0.0.0/8"], published: [], hostPorts: [{ port: 9100, from: "peer", what: "x" }] })).toThrow(
      "port 9100 (x) is for the peer, and there is none",
    );
  });

  it("refuses what would not parse", () => {
    expect(() => renderFirewall({ ...spec, clients: [] })).toThrow("at least one client network");
    expect(() => renderFirewall({ ...spec, peer: "192.168.68" })).toThrow("not an IPv4 address: 192.168.68");
  });

  it("the unit loads the file at boot, before dockerd, after Ubuntu's nftables.service, and has no ExecStop", () => {
    const unit = parseUnit(renderFirewallUnit());
    const get = (section: string, key: string) =>
      unit
        .find(([s]) => s === section)?.[1]
        .filter(([k]) => k === key)
        .map(([, v]) => v);
    expect(get("Service", "ExecStart")).toEqual([`/usr/sbin/nft -f ${FIREWALL_FILE}`]);
    expect(get("Service", "ExecStop")).toEqual([]);
    expect(get("Unit", "Before")?.[0]).toContain("docker.service");
    expect(get("Unit", "After")?.[0]).toContain("nftables.service");
    expect(get("Install", "WantedBy")).toEqual(["multi-user.target"]);
  });

  itWith({ tools: ["nft"] }, "both stacks' rulesets pass nft's own check (nft -c -f), with and without the observability section", () => {
    for (const stack of ["sark", "clu"] as const) {
      for (const spec of [firewallSpec(parseHostConfig(pinnedStackConfig(stack), { source: "x" })), specOf(stack)]) {
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dgx-nft-")), "firewall.nft");
        fs.writeFileSync(file, renderFirewall(spec));
        const r = spawnSync("nft", ["-c", "-f", file], { encoding: "utf8" });
        expect(r.stderr, stack).toBe("");
        expect(r.status, stack).toBe(0);
      }
    }
  });
});
