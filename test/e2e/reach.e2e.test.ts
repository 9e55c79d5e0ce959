/**
 * Who can reach the services, on the two test hosts: both stacks applied with a `network`
 * section (the firewall), the swarm peer and the service tokens. Two more containers on the test
 * network stand for the LAN: a configured client (172.31.250.20/32 in `network.clients`) and a
 * stranger (172.31.250.21, neither client nor peer). The firewall must hold after a dockerd
 * restart and after a reboot of a test host, and a second apply must find nothing to do.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApplyResult, Engine } from "./engine";
import { asRoot, mustRoot, stopHosts, testStackConfig, type HostName, type TestHosts, startSuite } from "./hosts";

const CLIENT = { name: "dgxtest-reach-client", ip: "172.31.250.20" };
const STRANGER = { name: "dgxtest-reach-stranger", ip: "172.31.250.21" };
const ADDRESS: Record<HostName, string> = { sark: "172.31.250.10", clu: "172.31.250.11" };
// made for this suite only; the door asks for 32+ characters
const CHROMA_TOKEN = "e2e-chroma-token-5b0d7f3e2a914c68a1d2e3f4";
const VLLM_API_KEY = "e2e-vllm-api-key-9c41a2b3d4e5f60718293a4b";

let hosts: TestHosts;
let key: string;
let engine: Engine;
const rounds: Record<HostName, ApplyResult>[] = [];
const started = Date.now();

/** The test stack with the firewall, the peer and the tokens. */
function reachConfig(name: HostName): Record<string, unknown> {
  const c = testStackConfig(hosts, name);
  const services = structuredClone(c.services) as Record<string, Record<string, unknown>>;
  if (name === "sark") {
    services.chromadb!.env = {
      ...(services.chromadb!.env as object),
      CHROMA_SERVER_AUTHN_PROVIDER: "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
    };
    services.chromadb!.secretEnv = { CHROMA_SERVER_AUTHN_CREDENTIALS: "chromaToken" };
  } else {
    services.vllm!.secretEnv = { VLLM_API_KEY: "vllmApiKey" };
  }
  return {
    ...c,
    services,
    // node_exporter on both, Prometheus and Alertmanager on sark: the host's own ports in the firewall
    observability:
      name === "sark"
        ? {
            prometheus: {
              targets: [
                { host: "sark", address: `${ADDRESS.sark}:9100` },
                { host: "clu", address: `${ADDRESS.clu}:9100` },
              ],
              scrapeIntervalSeconds: 2,
            },
          }
        : {},
    network: { clients: [`${CLIENT.ip}/32`] },
    swarm: { ...(c.swarm as object), peer: ADDRESS[name === "sark" ? "clu" : "sark"] },
  };
}

const apply = (name: HostName) =>
  engine.up({ stack: `test-${name}`, config: reachConfig(name), secrets: { sshPrivateKey: key, chromaToken: CHROMA_TOKEN, vllmApiKey: VLLM_API_KEY } });

async function converge(): Promise<Record<HostName, ApplyResult>> {
  const sark = await apply("sark");
  const clu = await apply("clu");
  return { sark, clu };
}

/** Python in a container of this machine's engine on the test network (the stand-in image has it). */
function from(who: { name: string }, code: string): { code: number; out: string } {
  const r = spawnSync("docker", ["exec", who.name, "python3", "-c", code], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** "open", "closed" (refused or dropped: no answer in 3 s) for a TCP port, seen from `who`. */
function tcp(who: { name: string }, ip: string, port: number): string {
  return from(
    who,
    `import socket\ntry:\n    socket.create_connection(("${ip}", ${port}), 3).close(); print("open")\nexcept OSError:\n    print("closed")`,
  ).out.trim();
}

/** The HTTP status of GET url from `who` (0: no answer), with the token when given. */
function http(who: { name: string }, url: string, token?: string): number {
  const header = token ? `, headers={"Authorization": "Bearer ${token}"}` : "";
  const r = from(
    who,
    `import urllib.request, urllib.error\ntry:\n    print(urllib.request.urlopen(urllib.request.Request("${url}"${header}), timeout=3).status)\nexcept urllib.error.HTTPError as e:\n    print(e.code)\nexcept OSError:\n    print(0)`,
  );
  return Number(r.out.trim());
}

function lanContainer(c: { name: string; ip: string }): void {
  spawnSync("docker", ["rm", "-f", c.name], { encoding: "utf8" });
  const r = spawnSync("docker", ["run", "-d", "--name", c.name, "--network", "dgxtest-net", "--ip", c.ip, "--entrypoint", "sleep", "standin:1", "3600"], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`docker run ${c.name}: ${r.stderr}`);
}

/** What every check below expects: the firewall as declared, seen from the LAN. */
function expectReach(when: string): void {
  const chroma = `http://${ADDRESS.sark}:8000`;
  const vllm = `http://${ADDRESS.clu}:8000`;
  // the stranger: nothing published, no swarm port
  expect(tcp(STRANGER, ADDRESS.sark, 8000), `${when}: stranger -> chromadb`).toBe("closed");
  expect(tcp(STRANGER, ADDRESS.clu, 8000), `${when}: stranger -> vllm`).toBe("closed");
  for (const ip of [ADDRESS.sark, ADDRESS.clu]) {
    expect(tcp(STRANGER, ip, 2377), `${when}: stranger -> ${ip}:2377`).toBe("closed");
    expect(tcp(STRANGER, ip, 7946), `${when}: stranger -> ${ip}:7946`).toBe("closed");
  }
  // the client: the services, with their token only; still no swarm port
  expect(http(CLIENT, `${chroma}/api/v1/heartbeat`), `${when}: client -> heartbeat (public)`).toBe(200);
  expect(http(CLIENT, `${chroma}/api/v1/last`), `${when}: client -> chromadb without token`).toBe(401);
  expect(http(CLIENT, `${chroma}/api/v1/last`, "wrong-token"), `${when}: client -> chromadb, wrong token`).toBe(401);
  expect(http(CLIENT, `${chroma}/api/v1/last`, CHROMA_TOKEN), `${when}: client -> chromadb with token`).toBe(200);
  expect(http(CLIENT, `${vllm}/health`), `${when}: client -> vllm /health (public)`).toBe(200);
  expect(http(CLIENT, `${vllm}/v1/models`), `${when}: client -> vllm without key`).toBe(401);
  expect(http(CLIENT, `${vllm}/v1/models`, VLLM_API_KEY), `${when}: client -> vllm with key`).toBe(200);
  expect(tcp(CLIENT, ADDRESS.sark, 2377), `${when}: client -> sark:2377`).toBe("closed");
  // the peer: the swarm's ports are open to it, and the swarm works
  expect(
    mustRoot(hosts, "clu", `python3 -c 'import socket; socket.create_connection(("${ADDRESS.sark}", 2377), 3).close(); print("open")'`).trim(),
    `${when}: clu -> sark:2377`,
  ).toBe("open");
  expect(mustRoot(hosts, "sark", "docker node ls --format '{{.Status}}'").trim().split("\n"), `${when}: both swarm nodes`).toEqual(["Ready", "Ready"]);
  // the hosts' own services: node_exporter to the manager's Prometheus only, Prometheus (and the
  // storage page) to the clients, Alertmanager to nobody but sark itself
  for (const ip of [ADDRESS.sark, ADDRESS.clu]) expect(tcp(STRANGER, ip, 9100), `${when}: stranger -> ${ip}:9100`).toBe("closed");
  for (const port of [9090, 9093, 9094]) expect(tcp(STRANGER, ADDRESS.sark, port), `${when}: stranger -> sark:${port}`).toBe("closed");
  expect(http(CLIENT, `http://${ADDRESS.sark}:9090/-/healthy`), `${when}: client -> prometheus`).toBe(200);
  expect(tcp(CLIENT, ADDRESS.clu, 9100), `${when}: client -> clu:9100`).toBe("closed");
  for (const port of [9093, 9094]) expect(tcp(CLIENT, ADDRESS.sark, port), `${when}: client -> sark:${port}`).toBe("closed");
  const fromClu = (port: number) =>
    mustRoot(
      hosts,
      "clu",
      `python3 -c 'import socket; s = socket.socket(); s.settimeout(3); print("open" if s.connect_ex(("${ADDRESS.sark}", ${port})) == 0 else "closed")'`,
    ).trim();
  expect(fromClu(9100), `${when}: clu -> sark:9100`).toBe("closed");
  expect(
    mustRoot(hosts, "sark", `python3 -c 'import socket; socket.create_connection(("${ADDRESS.clu}", 9100), 3).close(); print("open")'`).trim(),
    `${when}: sark -> clu:9100`,
  ).toBe("open");
}

/** Polls until `check` passes (a restarted service, a rebooted host), then runs it once more for its message. */
async function eventually(check: () => boolean, seconds: number, what: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`${what}: not within ${seconds} s`);
}

const servicesUp = () =>
  http(CLIENT, `http://${ADDRESS.sark}:8000/api/v1/heartbeat`) === 200 &&
  http(CLIENT, `http://${ADDRESS.clu}:8000/health`) === 200 &&
  asRoot(hosts, "sark", "docker node ls --format '{{.Status}}' | sort -u").stdout.trim() === "Ready";

beforeAll(() => {
  ({ hosts, key, engine } = startSuite({ dgxLike: true }));
  lanContainer(CLIENT);
  lanContainer(STRANGER);
});

afterAll(() => {
  for (const c of [CLIENT, STRANGER]) spawnSync("docker", ["rm", "-f", c.name], { encoding: "utf8" });
  stopHosts();
  console.log(`reach e2e: ${((Date.now() - started) / 1000).toFixed(1)} s including host start and stop`);
});

describe("reach on the test hosts", () => {
  it("before the apply: the stranger and the client reach the hosts (sshd), so a closed port below is the firewall's doing", () => {
    for (const who of [STRANGER, CLIENT]) for (const ip of [ADDRESS.sark, ADDRESS.clu]) expect(tcp(who, ip, 22), `${who.name} -> ${ip}:22`).toBe("open");
  });

  it("apply: the firewall is loaded and enabled on both hosts, before the swarm and the services", async () => {
    rounds.push(await converge());
    const { sark, clu } = rounds[0]!;
    for (const [name, r] of [
      ["sark", sark],
      ["clu", clu],
    ] as const) {
      expect(r.steps.filter((s) => s.status !== "ok").map((s) => `${s.op} ${s.name} ${s.status}`)).toEqual([]);
      expect(r.step(`${name}-firewall-apply`).end).toBeLessThanOrEqual(r.step(name === "sark" ? "sark-swarm-init" : "clu-swarm-join").start);
      expect(mustRoot(hosts, name, "systemctl is-enabled dgx-storage-firewall.service").trim()).toBe("enabled");
      expect(mustRoot(hosts, name, "nft list table inet dgx-storage")).toContain(`ip saddr ${ADDRESS[name === "sark" ? "clu" : "sark"]} accept`);
      expect(mustRoot(hosts, name, "cat /etc/dgx-storage/firewall.nft")).toContain(`elements = { ${CLIENT.ip}/32 }`);
    }
    // Alertmanager on loopback only, and no HA gossip listener
    expect(mustRoot(hosts, "sark", "ss -Htln '( sport = :9093 or sport = :9094 )' | awk '{print $4}'").trim()).toBe("127.0.0.1:9093");
    // the published ports are bound to the host's own address, not every interface
    expect(mustRoot(hosts, "sark", "docker port chromadb").trim()).toBe(`8000/tcp -> ${ADDRESS.sark}:8000`);
    expect(mustRoot(hosts, "clu", "docker port vllm").trim()).toBe(`8000/tcp -> ${ADDRESS.clu}:8000`);
    // the tokens reached the containers' environment (the mock tests show they travel as secrets only)
    expect(mustRoot(hosts, "sark", "docker inspect -f '{{json .Config.Env}}' chromadb")).toContain(`CHROMA_SERVER_AUTHN_CREDENTIALS=${CHROMA_TOKEN}`);
    expect(mustRoot(hosts, "clu", "docker inspect -f '{{json .Config.Env}}' vllm")).toContain(`VLLM_API_KEY=${VLLM_API_KEY}`);
  });

  it("from the stranger nothing is open; from the client the services answer with their token only; from the peer the swarm works", () => {
    expectReach("after the apply");
  });

  it("after a dockerd restart on both hosts the rules still hold", async () => {
    for (const name of ["sark", "clu"] as const) mustRoot(hosts, name, "systemctl restart docker");
    await eventually(servicesUp, 180, "services back after the dockerd restart");
    expectReach("after a dockerd restart");
  });

  it("after a reboot of sark (its container host restarted) the unit loads the rules again", async () => {
    const ctr = hosts.hosts.sark.container;
    const before = spawnSync("docker", ["inspect", "-f", "{{.State.StartedAt}}", ctr], { encoding: "utf8" }).stdout;
    asRoot(hosts, "sark", "systemctl reboot");
    await eventually(
      () =>
        spawnSync("docker", ["inspect", "-f", "{{.State.StartedAt}}", ctr], { encoding: "utf8" }).stdout !== before &&
        asRoot(hosts, "sark", "systemctl is-active dgx-storage-firewall.service").stdout.trim() === "active",
      180,
      "sark back with its firewall unit active",
    );
    await eventually(servicesUp, 240, "services back after the reboot");
    expectReach("after a reboot of sark");
  });

  it("a second apply changes nothing", async () => {
    rounds.push(await converge());
    for (const r of [rounds[1]!.sark, rounds[1]!.clu]) {
      expect(r.steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    }
    expectReach("after the second apply");
  });
});
