/**
 * Writers for the host firewall: the nftables ruleset of table `inet dgx-storage` and the unit
 * that loads it at boot. Pure: typed object in, file text out.
 *
 * Why nftables, and why these priorities: DGX OS 6 is Ubuntu 22.04, whose iptables is the nft
 * backend (iptables-nft), so Docker's rules live in the kernel's nftables as tables `ip filter`
 * and `ip nat`. Base chains of every table run on the same hook in priority order, so a chain of
 * our own table at `filter - 1` sees a packet before Docker's FORWARD and DOCKER-USER chains
 * (priority `filter`) and before any host firewall (ufw, also iptables) on INPUT. A `drop` there
 * is final; an `accept` only ends our chain and the packet goes on to Docker's rules, so this
 * table never opens anything Docker or the host would close. Docker rewrites its own tables on
 * every start and never touches another table, so the rules hold across a dockerd restart.
 * (netfilter hooks: wiki.nftables.org "Netfilter hooks", "Configuring chains": base chain
 * priority; Docker and iptables: docs.docker.com/engine/network/packet-filtering-firewalls/)
 */
import { MANAGED_HEADER } from "./sysctl";
import { HOST_PATHS } from "./host-paths";
import { renderUnit } from "./systemd";

export const FIREWALL_TABLE = "dgx-storage";
export const FIREWALL_FILE = `${HOST_PATHS.etc}/firewall.nft`;
export const FIREWALL_UNIT = "dgx-storage-firewall.service";

/** A port published by a container of this host. */
export interface PublishedPort {
  /** Host address it is bound to; `0.0.0.0` for every interface. */
  readonly ip: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
}

/** A TCP port of a service on the host itself (not a container): who besides the host may reach it. */
export interface HostPort {
  readonly port: number;
  /** `peer`: the other swarm node only; `clients`: the client networks; `local`: nobody else. */
  readonly from: "peer" | "clients" | "local";
  /** What listens there, for the comment beside the rule. */
  readonly what: string;
}

export interface FirewallSpec {
  /** Networks (IPv4 CIDR) allowed to reach the published ports. */
  readonly clients: readonly string[];
  /** The other swarm node: the only source allowed on the swarm ports. Absent: no swarm rules. */
  readonly peer?: string;
  readonly published: readonly PublishedPort[];
  /** Ports of services on the host (node_exporter, Prometheus, Alertmanager). @default [] */
  readonly hostPorts?: readonly HostPort[];
}

/** The swarm's ports (docs.docker.com/engine/swarm/swarm-tutorial/#open-protocols-and-ports-between-the-hosts). */
export const SWARM_PORTS = { tcp: [2377, 7946], udp: [4789, 7946] } as const;

function fail(message: string): never {
  throw new Error(`firewall: ${message}`);
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const CIDR = /^([\d.]+)\/(3[0-2]|[12]?\d)$/;

/** The ruleset file `nft -f` loads: the table is replaced as a whole, in one transaction. */
export function renderFirewall(spec: FirewallSpec): string {
  if (spec.clients.length === 0) fail("at least one client network");
  for (const c of spec.clients) if (!CIDR.test(c) || !IPV4.test(c.split("/")[0]!)) fail(`not an IPv4 CIDR: ${c}`);
  if (spec.peer !== undefined && !IPV4.test(spec.peer)) fail(`not an IPv4 address: ${spec.peer}`);
  for (const p of spec.published) {
    if (!IPV4.test(p.ip)) fail(`not an IPv4 address: ${p.ip}`);
    if (!(Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535)) fail(`not a port: ${p.port}`);
  }
  const hostPorts = spec.hostPorts ?? [];
  for (const h of hostPorts) {
    if (!(Number.isInteger(h.port) && h.port >= 1 && h.port <= 65535)) fail(`not a port: ${h.port}`);
    if (h.from === "peer" && spec.peer === undefined) fail(`port ${h.port} (${h.what}) is for the peer, and there is none`);
  }
  const t = "\t";
  const lines = [
    MANAGED_HEADER,
    `# Loaded by ${FIREWALL_UNIT} at boot and by firewall.sh on apply (nft -f ${FIREWALL_FILE}).`,
    "# The first two lines make the load a replacement: create the table if absent, delete it, and",
    "# declare it anew, all in one transaction (a ruleset that fails to load changes nothing).",
    `table inet ${FIREWALL_TABLE}`,
    `delete table inet ${FIREWALL_TABLE}`,
    `table inet ${FIREWALL_TABLE} {`,
    `${t}# who may reach the published ports`,
    `${t}set clients {`,
    `${t}${t}type ipv4_addr`,
    `${t}${t}flags interval`,
    `${t}${t}elements = { ${spec.clients.join(", ")} }`,
    `${t}}`,
  ];
  if (spec.peer !== undefined) {
    lines.push(
      "",
      `${t}# the swarm's control plane, gossip, VXLAN data plane and (encrypted overlay) ESP: the peer`,
      `${t}# only; this host's own addresses too (a manager's agent dials its own advertise address)`,
      `${t}chain swarm_peer {`,
      `${t}${t}fib saddr type local accept`,
      `${t}${t}ip saddr ${spec.peer} accept`,
      `${t}${t}drop`,
      `${t}}`,
    );
  }
  if (spec.peer !== undefined || hostPorts.length > 0) {
    // the host's own services: a packet from one of this host's addresses is the host itself
    // (`fib saddr type local`, nft(8) FIB EXPRESSIONS)
    const rule: Record<HostPort["from"], string> = {
      peer: "jump swarm_peer",
      clients: "fib saddr type != local ip saddr != @clients drop",
      local: "fib saddr type != local drop",
    };
    lines.push(
      "",
      `${t}chain input {`,
      `${t}${t}type filter hook input priority filter - 1; policy accept;`,
      ...(spec.peer !== undefined
        ? [
            `${t}${t}tcp dport { ${SWARM_PORTS.tcp.join(", ")} } jump swarm_peer`,
            `${t}${t}udp dport { ${SWARM_PORTS.udp.join(", ")} } jump swarm_peer`,
            `${t}${t}meta l4proto esp jump swarm_peer`,
          ]
        : []),
      ...hostPorts.map((h) => `${t}${t}tcp dport ${h.port} ${rule[h.from]} comment "${h.what.replace(/[^A-Za-z0-9 _.,:()-]/g, "")}"`),
      `${t}}`,
    );
  }
  // A published port is DNATed in prerouting (Docker's `ip nat` DOCKER chain) and forwarded to
  // the container: what still names the host's address and port is the connection's original
  // tuple (`ct original`). Only the client's direction is judged (`ct direction original`): the
  // container's replies carry its own address as source and would otherwise be dropped. Packets
  // of an established connection match too, so a narrower client list cuts open connections.
  lines.push(
    "",
    `${t}# published container ports: the client networks only, before Docker's FORWARD chain`,
    `${t}chain forward {`,
    `${t}${t}type filter hook forward priority filter - 1; policy accept;`,
    ...spec.published.map(
      (p) =>
        `${t}${t}meta l4proto ${p.protocol} ct direction original ct status dnat ${p.ip === "0.0.0.0" ? "" : `ct original ip daddr ${p.ip} `}ct original proto-dst ${p.port} ip saddr != @clients drop`,
    ),
    `${t}}`,
    "}",
  );
  return lines.join("\n") + "\n";
}

/**
 * The unit that loads the ruleset at boot: before dockerd starts (so no published port is ever
 * open without it) and after Ubuntu's own nftables.service, whose /etc/nftables.conf starts with
 * `flush ruleset` when an operator enables it. No ExecStop: stopping the unit never opens the
 * ports; `firewall.sh remove` (pulumi destroy) deletes the table.
 */
export function renderFirewallUnit(): string {
  return renderUnit([
    [
      "Unit",
      [
        ["Description", `dgx-storage: host firewall (nftables table inet ${FIREWALL_TABLE})`],
        ["DefaultDependencies", false],
        ["Wants", "network-pre.target"],
        ["Before", "network-pre.target docker.service shutdown.target"],
        ["After", "nftables.service local-fs.target"],
        ["Conflicts", "shutdown.target"],
      ],
    ],
    [
      "Service",
      [
        ["Type", "oneshot"],
        ["RemainAfterExit", true],
        ["ExecStart", `/usr/sbin/nft -f ${FIREWALL_FILE}`],
      ],
    ],
    ["Install", [["WantedBy", "multi-user.target"]]],
  ]);
}
