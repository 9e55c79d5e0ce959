/**
 * Loaded before every unit test file (vitest.config.mts `setupFiles`): unit tests may reach
 * loopback only. Several of them assert the real servers' addresses (192.168.68.69/71) as the
 * stack files declare them, under Pulumi's mock runtime, where no provider runs and nothing
 * connects; this guard makes that a checked fact instead of a belief.
 *
 * - Every TCP connection of the test process goes through `net.Socket.prototype.connect` (net,
 *   http, https, tls, undici's fetch): one to anything but loopback or a Unix socket throws.
 * - A child process whose argv names an IPv4 address outside loopback and the documentation
 *   ranges (RFC 5737: 192.0.2/24, 198.51.100/24, 203.0.113/24, which the fixtures use) is refused
 *   before it starts: ssh, curl, borg or a script given such an address.
 * - Each refusal is also recorded, and every test ends by checking that there was none, so a
 *   refusal that code under test caught and swallowed still fails the test.
 *
 * CI also runs `npm test` in a network namespace with nothing but loopback (.ci/run), which covers
 * what a child process might find in a file rather than in argv.
 */
import type * as ChildProcessModule from "node:child_process";
import { syncBuiltinESMExports } from "node:module";
import * as net from "node:net";
import { afterEach, expect } from "vitest";

// the CommonJS exports object: an ES module namespace cannot be assigned to
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cp = require("node:child_process") as typeof ChildProcessModule;

const REFUSED: string[] = ((globalThis as { __networkGuardRefused?: string[] }).__networkGuardRefused ??= []);

/** The refusals so far (the guard's own test reads and clears them). */
export function refusedConnections(): string[] {
  return REFUSED;
}

/** True for the addresses a unit test may reach: loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || h === "::ffff:127.0.0.1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

const IPV4 = /(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])/g;

/** IPv4 addresses in a text that are neither loopback, 0.0.0.0, nor documentation addresses. */
export function reachableAddresses(text: string): string[] {
  return [...text.matchAll(IPV4)]
    .filter(([, a, b, c]) => {
      const [x, y, z] = [Number(a), Number(b), Number(c)];
      if (x === 127 || x === 0) return false;
      if ((x === 192 && y === 0 && z === 2) || (x === 198 && y === 51 && z === 100) || (x === 203 && y === 0 && z === 113)) return false;
      return true;
    })
    .map(([m]) => m);
}

function refuse(what: string): never {
  REFUSED.push(what);
  throw new Error(`network guard: a unit test tried to ${what}; unit tests may reach loopback only (test/network-guard.ts)`);
}

/** The host of Socket#connect's many call forms: (options[, cb]), (port[, host][, cb]), (path[, cb]), or net.connect's normalized [options, cb]. */
function connectTarget(args: unknown[]): { host?: string; port?: unknown; path?: string } {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === "object") return first as { host?: string; port?: unknown; path?: string };
  if (typeof first === "string" && !/^\d+$/.test(first)) return { path: first };
  return { port: first, host: typeof args[1] === "string" ? args[1] : undefined };
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  const t = connectTarget(args);
  if (t.path === undefined && !isLoopback(t.host ?? "localhost")) refuse(`connect to ${t.host}:${String(t.port)}`);
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;

function checkArgv(file: unknown, args: unknown): void {
  const argv = [file, ...(Array.isArray(args) ? args : [])].map(String).join(" ");
  const found = reachableAddresses(argv);
  if (found.length > 0) refuse(`start a process naming ${found.join(", ")}: ${argv.slice(0, 200)}`);
}

// asynchronous children (spawn, exec, execFile, fork) all start in ChildProcess#spawn
type SpawnOptions = { file?: string; args?: string[] };
const proto = cp.ChildProcess.prototype as unknown as { spawn(this: unknown, options: SpawnOptions): unknown };
const spawnAsync = proto.spawn;
proto.spawn = function guardedSpawn(this: unknown, options: SpawnOptions) {
  checkArgv(options.file, options.args?.slice(1));
  return spawnAsync.call(this, options);
};
// the synchronous ones call each other through module-private functions: each export is wrapped
const mutable = cp as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const name of ["spawnSync", "execFileSync", "execSync"] as const) {
  const original = mutable[name]!;
  mutable[name] = function guardedSync(file: unknown, args?: unknown, ...rest: unknown[]) {
    checkArgv(file, args);
    return original.call(cp, file, args, ...rest);
  };
}
// ES module imports of node:child_process see the wrapped functions too
syncBuiltinESMExports();

afterEach(() => {
  const seen = REFUSED.splice(0);
  expect(seen, "the network guard refused these during the test").toEqual([]);
});
