/**
 * What encrypting the overlay network costs: iperf3 between a container on SARK's test host and one
 * on CLU's, over the stack's attachable overlay as `pulumi up` makes it (`encrypted: false`, the
 * stack files' choice) and over the same overlay with IPsec (`encrypted: true`, made by the same
 * network-ensure.sh the stack runs), in paired rounds.
 *
 *   npm run bench:overlay        (root, a running Docker engine; BENCH_ROUNDS, BENCH_SECONDS)
 *
 * It runs under vitest (vitest.bench-hosts.config.mts), as the e2e suites do: the engine that
 * applies the stacks runs the program through test/harness.ts, which needs vitest's module
 * registry. It is a measurement, not a test: it fails only when a measurement cannot be made.
 * Defaults: 6 rounds of 5 s per side. Each round measures both networks back to back, plain first
 * in even rounds and encrypted first in odd ones, and the ratio encrypted/plain of that round
 * counts (pairs cancel the machine's drifts); printed: every round, the median ratio and its range.
 *
 * The test hosts (test/hosts) are containers with their own dockerd on one bridge of this machine,
 * so "the wire" is a veth pair and the figures show the CPU cost of VXLAN and of ESP on this
 * machine's two cores, not a LAN's: on the DGX servers (many cores, AES-NI, a 10/100 GbE link)
 * run the same measurement by hand between the hosts before deciding. iperf3 runs inside a
 * stand-in container on each overlay, started through the test host's own dynamic loader and
 * libraries (a read-only bind of the host's /), since nothing can be pulled here.
 */
import { spawnSync } from "node:child_process";
import { it } from "vitest";
import { mustRoot, asRoot, stopHosts, testStackConfig, type HostName, type TestHosts, startSuite } from "../test/e2e/hosts";
import { bundledScript, shq } from "../components/render/command";

function option(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive whole number, got ${JSON.stringify(raw)}`);
  return v;
}

const rounds = option("BENCH_ROUNDS", 6);
const seconds = option("BENCH_SECONDS", 5);
const ENCRYPTED = "bench-overlay-encrypted";
const SERVER = "bench-iperf-server";
/** iperf3 of the test host, run in a container by the host's loader and libraries. */
const IPERF = [
  "-v",
  "/:/host:ro",
  "--entrypoint",
  "/host/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  "standin:1",
  "--library-path",
  "/host/usr/lib/x86_64-linux-gnu",
  "/host/usr/bin/iperf3",
];

interface Sample {
  readonly round: number;
  readonly plain: number;
  readonly encrypted: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Throughput in Gbit/s received by the server on CLU, sent from SARK over `network`. */
function measure(hosts: TestHosts, network: string): number {
  const on = (name: HostName, cmd: string) => mustRoot(hosts, name, cmd);
  asRoot(hosts, "clu", `docker rm -f ${SERVER} >/dev/null 2>&1`);
  on("clu", `docker run -d --name ${SERVER} --network ${shq(network)} ${IPERF.map(shq).join(" ")} -s -1 >/dev/null`);
  try {
    // the client retries while the server starts and the overlay's name reaches SARK
    const out = on(
      "sark",
      `for i in $(seq 1 30); do docker run --rm --network ${shq(network)} ${IPERF.map(shq).join(" ")} -c ${SERVER} -t ${seconds} -J 2>/dev/null > /var/tmp/iperf.json && break; sleep 1; done; cat /var/tmp/iperf.json`,
    );
    const r = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    const bps = r.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error(`iperf3 over ${network}: ${r.error ?? out.slice(0, 300)}`);
    return bps / 1e9;
  } finally {
    asRoot(hosts, "clu", `docker rm -f ${SERVER} >/dev/null 2>&1`);
  }
}

/**
 * Docker's encrypted overlay protects VXLAN with ESP in transport mode using the AEAD
 * `rfc4106(gcm(aes))` (libnetwork, drivers/overlay/encryption.go, buildAeadAlgo; vendored by moby 20.10). A kernel without it
 * accepts the network but carries no traffic over it (iperf3 times out), so ask the kernel first,
 * in a network namespace of its own: the same xfrm state Docker would add.
 */
function kernelHasOverlayCipher(): string | undefined {
  const r = spawnSync(
    "unshare",
    [
      "--net",
      "ip",
      "xfrm",
      "state",
      "add",
      "src",
      "192.0.2.1",
      "dst",
      "192.0.2.2",
      "proto",
      "esp",
      "spi",
      "0x100",
      "reqid",
      "1",
      "mode",
      "transport",
      "aead",
      "rfc4106(gcm(aes))",
      `0x${"ab".repeat(20)}`,
      "128",
    ],
    { encoding: "utf8" },
  );
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/overlay.hosts.ts needs root (it starts the test hosts)");
  const missing = kernelHasOverlayCipher();
  if (missing !== undefined) {
    const release = spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim();
    throw new Error(
      `this kernel (${release}) cannot add the xfrm state of Docker's encrypted overlay (ESP with rfc4106(gcm(aes))): '${missing}'. ` +
        "An encrypted overlay made here carries no traffic, so its cost cannot be measured on this machine; measure it on the servers (docs/reach.md).",
    );
  }
  const started = Date.now();
  const { hosts, key, engine } = startSuite({ dgxLike: true });
  try {
    // the swarm and the plain overlay, as the stacks make them
    for (const name of ["sark", "clu"] as const)
      await engine.up({ stack: `test-${name}`, config: testStackConfig(hosts, name), secrets: { sshPrivateKey: key } });
    const plain = (testStackConfig(hosts, "sark").swarm as { network: { name: string } }).network.name;
    // the same overlay with IPsec, by the stack's own script
    mustRoot(hosts, "sark", `bash -c ${shq(bundledScript("network-ensure"))} network-ensure ${ENCRYPTED} 1`);
    console.log(`overlay: ${plain} (plain) and ${ENCRYPTED} (encrypted), iperf3 -t ${seconds} from sark to clu, ${rounds} paired rounds`);
    const samples: Sample[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [plain, ENCRYPTED] : [ENCRYPTED, plain];
      const got: Record<string, number> = {};
      for (const net of order) got[net] = measure(hosts, net);
      samples.push({ round, plain: got[plain]!, encrypted: got[ENCRYPTED]! });
      console.log(
        `round ${round + 1}: plain ${got[plain]!.toFixed(2)} Gbit/s, encrypted ${got[ENCRYPTED]!.toFixed(2)} Gbit/s, ratio ${(got[ENCRYPTED]! / got[plain]!).toFixed(3)}`,
      );
    }
    const ratios = samples.map((s) => s.encrypted / s.plain);
    console.log("");
    console.log("| overlay | median Gbit/s | range |");
    console.log("|---|---:|---|");
    console.log(
      `| plain (encrypted: false) | ${median(samples.map((s) => s.plain)).toFixed(2)} | ${Math.min(...samples.map((s) => s.plain)).toFixed(2)}-${Math.max(...samples.map((s) => s.plain)).toFixed(2)} |`,
    );
    console.log(
      `| IPsec (encrypted: true) | ${median(samples.map((s) => s.encrypted)).toFixed(2)} | ${Math.min(...samples.map((s) => s.encrypted)).toFixed(2)}-${Math.max(...samples.map((s) => s.encrypted)).toFixed(2)} |`,
    );
    console.log(
      `encrypted/plain throughput, median of the paired ratios: ${median(ratios).toFixed(3)} (range ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})`,
    );
    console.log(`bench/overlay.hosts.ts: ${((Date.now() - started) / 1000).toFixed(0)} s including host start and stop`);
  } finally {
    stopHosts();
  }
}

it("the overlay's throughput, encrypted against not, in paired rounds (printed)", main, 40 * 60_000);
