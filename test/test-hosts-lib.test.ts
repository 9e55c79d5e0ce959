/**
 * test/hosts/lib.sh's remove_orphan_subnet_rules, which start-hosts.sh runs before it creates the
 * hosts' network: the iptables rules of an earlier dgxtest-net whose bridge is gone (the engine's
 * state was lost before stop-hosts.sh ran) are removed, and nothing else. Its masquerade rule made
 * every cross-host test fail (swarm join timed out, the overlay carried nothing) on a machine where
 * it was left: two CI runs of f1e4f85. Run here against a fake `iptables` and `ip` that keep their
 * state in files, so the rules parsed and the deletions asked for are the ones iptables would see.
 * And devices_on_subnet, with which start-hosts.sh refuses to start beside a device that still has
 * an address in the subnet, against real veth devices in a network namespace of its own.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { REPO } from "./harness";
import { describeWith } from "./tools";

const LIB = path.join(REPO, "test/hosts/lib.sh");

// `iptables -t T -S` prints T.rules; `iptables -t T -D <spec>` removes the line "-A <spec>" and
// fails like iptables when there is none (or when T.fail exists); `ip link show X` succeeds when X
// is a line of links.
const FAKE_IPTABLES = `#!/usr/bin/env bash
[[ $1 == -t ]] || exit 2
t=$2; shift 2
f="$FAKE_STATE/$t.rules"
case $1 in
-S) cat "$f" ;;
-D)
  shift
  [[ -e "$FAKE_STATE/$t.fail" ]] && { echo "iptables: Operation not permitted." >&2; exit 4; }
  spec="-A $*"
  grep -qxF -- "$spec" "$f" || { echo "iptables: Bad rule (does a matching rule exist in that chain?)." >&2; exit 1; }
  grep -vxF -- "$spec" "$f" >"$f.new" || true
  mv "$f.new" "$f"
  ;;
*) exit 2 ;;
esac
`;
const FAKE_IP = `#!/usr/bin/env bash
[[ $1 == link && $2 == show ]] || exit 2
grep -qxF -- "$3" "$FAKE_STATE/links"
`;

const NAT = [
  "-P POSTROUTING ACCEPT",
  "-N DOCKER",
  "-A POSTROUTING -s 172.31.250.0/24 ! -o br-ece7e6cd31dd -j MASQUERADE",
  "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
  "-A POSTROUTING -s 172.31.250.0/24 ! -o br-6f8d0b376727 -j MASQUERADE",
  "-A POSTROUTING -s 172.20.0.0/16 ! -o br-0123456789ab -j MASQUERADE",
  "-A DOCKER ! -i br-ece7e6cd31dd -p tcp -m tcp --dport 22567 -j DNAT --to-destination 172.31.250.10:22",
];
const FILTER = [
  "-P FORWARD DROP",
  "-A FORWARD -o br-6f8d0b376727 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
  "-A DOCKER -d 172.31.250.10/32 ! -i br-ece7e6cd31dd -o br-ece7e6cd31dd -p tcp -m tcp --dport 22 -j ACCEPT",
];

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function fakeMachine(opts: { failDelete?: boolean } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-orphan-"));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, "bin"));
  fs.writeFileSync(path.join(dir, "bin/iptables"), FAKE_IPTABLES, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "bin/ip"), FAKE_IP, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "nat.rules"), `${NAT.join("\n")}\n`);
  fs.writeFileSync(path.join(dir, "filter.rules"), `${FILTER.join("\n")}\n`);
  // the current dgxtest-net's bridge and docker0 exist; br-6f8d0b376727 and br-0123456789ab do not
  fs.writeFileSync(path.join(dir, "links"), "br-ece7e6cd31dd\ndocker0\n");
  if (opts.failDelete) fs.writeFileSync(path.join(dir, "nat.fail"), "");
  return dir;
}

function removeOrphans(dir: string) {
  const r = spawnSync("bash", ["-c", 'set -euo pipefail; source "$1"; remove_orphan_subnet_rules', "test", LIB], {
    env: { ...process.env, PATH: `${path.join(dir, "bin")}:${process.env.PATH}`, FAKE_STATE: dir },
    encoding: "utf8",
  });
  return { code: r.status, stderr: r.stderr };
}

const rules = (dir: string, table: string) =>
  fs
    .readFileSync(path.join(dir, `${table}.rules`), "utf8")
    .trim()
    .split("\n");

describe("test/hosts/lib.sh remove_orphan_subnet_rules", () => {
  it("removes the masquerade rule of a dgxtest-net whose bridge is gone, and says which", () => {
    const dir = fakeMachine();
    const r = removeOrphans(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(rules(dir, "nat")).toEqual(NAT.filter((l) => !l.includes("br-6f8d0b376727")));
    expect(r.stderr).toContain(
      "removed an orphaned iptables rule (bridge br-6f8d0b376727 no longer exists): -t nat -A POSTROUTING -s 172.31.250.0/24 ! -o br-6f8d0b376727 -j MASQUERADE",
    );
    expect(r.stderr.match(/removed an orphaned/g)).toHaveLength(1);
  });

  it("leaves the rules of a bridge that exists, of another subnet, and those that name no subnet", () => {
    const dir = fakeMachine();
    removeOrphans(dir);
    // another network's orphan (172.20.0.0/16) is not this suite's to remove; nor the FORWARD
    // rule of the gone bridge, which names no subnet and matches only that (absent) interface
    expect(rules(dir, "nat")).toContain("-A POSTROUTING -s 172.20.0.0/16 ! -o br-0123456789ab -j MASQUERADE");
    expect(rules(dir, "nat")).toContain("-A POSTROUTING -s 172.31.250.0/24 ! -o br-ece7e6cd31dd -j MASQUERADE");
    expect(rules(dir, "filter")).toEqual(FILTER);
  });

  it("a second run removes nothing", () => {
    const dir = fakeMachine();
    removeOrphans(dir);
    const r = removeOrphans(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
  });

  it("exits 1 and names the rule when iptables refuses to remove it", () => {
    const dir = fakeMachine({ failDelete: true });
    const r = removeOrphans(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "ERROR: could not remove the orphaned iptables rule -t nat -A POSTROUTING -s 172.31.250.0/24 ! -o br-6f8d0b376727 -j MASQUERADE",
    );
    expect(rules(dir, "nat")).toEqual(NAT);
  });
});

describeWith({ tools: ["unshare", "ip"], root: true }, "test/hosts/lib.sh devices_on_subnet (in a network namespace of its own)", () => {
  // the subnet is a documentation range here, not the hosts' 172.31.250.0/24: unit tests may name
  // no other address in a command line (test/network-guard.ts), and these never leave the namespace
  const inNamespace = (setup: string) =>
    spawnSync("unshare", ["--net", "bash", "-c", `set -euo pipefail; ${setup}; source "$1"; SUBNET=198.51.100.0/24; devices_on_subnet`, "test", LIB], {
      encoding: "utf8",
    });

  it("names every device with an address in the subnet, with the address, and only those", () => {
    const r = inNamespace(
      "ip link add v0 type veth peer name v1; ip addr add 198.51.100.7/24 dev v0; ip addr add 192.0.2.1/24 dev v1; ip addr add 198.51.100.200/25 dev v1",
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split(", ").sort()).toEqual(["v0 (198.51.100.7/24)", "v1 (198.51.100.200/25)"]);
  });

  it("prints nothing when no device has one", () => {
    const r = inNamespace("ip link add v0 type veth peer name v1; ip addr add 203.0.113.7/24 dev v0");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
  });
});
