/**
 * Building blocks of the sections (names, addresses, paths, host keys) and the helpers their
 * cross-field rules share. Each block carries a JSON Schema `title` (zod `.meta`), which the
 * generated config reference shows as the field's type (tools/config-docs.ts).
 */
import * as path from "node:path";
import { z } from "zod";

/**
 * Placeholder for a host key that nobody has recorded yet. `pulumi preview` accepts it (with a
 * warning); `pulumi up` refuses it, because an unpinned connection would trust any machine that
 * answers on the address.
 */
export const UNPINNED_HOST_KEY = "unpinned";

export const hostName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, "a lower-case host name: letters, digits and '-', starting with a letter")
  .meta({ title: "lower-case host name" });

export const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const dnsName = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
export const address = z
  .string()
  .refine((s) => ipv4.test(s) || (dnsName.test(s) && !/^[\d.]+$/.test(s)), {
    message: "an IPv4 address or a DNS name",
  })
  .meta({ title: "IPv4 address or DNS name" });

/**
 * An IPv4 network in CIDR form (`192.168.68.0/24`; a single address is `/32`), with no host bits
 * set: nftables would silently widen `192.168.68.5/24` to the whole /24, so the door names it.
 */
export const cidr = z
  .string()
  .refine((s) => /^[\d.]+\/(3[0-2]|[12]?\d)$/.test(s) && ipv4.test(s.split("/")[0]!), { message: "an IPv4 network in CIDR form such as '192.168.68.0/24'" })
  .refine(
    (s) => {
      const m = /^([\d.]+)\/(\d+)$/.exec(s);
      if (!m || !ipv4.test(m[1]!)) return true; // the first refinement reports it
      return (ipv4Number(m[1]!) & ~cidrMask(Number(m[2]))) >>> 0 === 0;
    },
    { message: "a network address with no host bits set (e.g. '192.168.68.0/24', not '192.168.68.5/24')" },
  )
  .meta({ title: "IPv4 CIDR" });

/** An IPv4 address as an unsigned 32-bit number. */
export function ipv4Number(a: string): number {
  return a.split(".").reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

/** The netmask of a prefix length, as an unsigned 32-bit number. */
export function cidrMask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** `address` lies in the network `net` (CIDR). */
export function inCidr(address: string, net: string): boolean {
  const [base, bits] = net.split("/");
  const mask = cidrMask(Number(bits));
  return (ipv4Number(address) & mask) >>> 0 === (ipv4Number(base!) & mask) >>> 0;
}

export const port = z.number().int("a whole number").min(1, "a port from 1 to 65535").max(65535, "a port from 1 to 65535").meta({ title: "port 1..65535" });

/** An absolute, normalised POSIX path without `..`, `//` or a trailing slash. */
export const absolutePath = z
  .string()
  .refine((p) => p.startsWith("/"), { message: "an absolute path (starting with '/')" })
  .refine((p) => p === "/" || (!p.endsWith("/") && path.posix.normalize(p) === p), {
    message: "a normalised path (no '..', '.', '//' or trailing '/')",
  })
  .refine((p) => !/[\s'"\\$`]/.test(p), { message: "a path without whitespace, quotes, '\\', '$' or '`'" })
  .meta({ title: "absolute path" });

export const posixUser = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a POSIX user name")
  .meta({ title: "POSIX user name" });

const SSH_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"] as const;

/**
 * An OpenSSH public host key line (`<type> <base64>`; a trailing comment is dropped), the form
 * `ssh-keyscan` prints and @pulumi/command's `connection.hostKey` expects.
 */
export const hostKey = z
  .string()
  .transform((s) => s.trim())
  .refine(
    (s) => {
      if (s === UNPINNED_HOST_KEY) return true;
      const [type, blob] = s.split(/\s+/);
      if (!SSH_KEY_TYPES.includes(type as (typeof SSH_KEY_TYPES)[number]) || !blob) return false;
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return false;
      // The blob starts with the key type again (RFC 4253 string encoding): a cheap check that
      // catches a truncated or pasted-wrong key.
      const raw = Buffer.from(blob, "base64");
      const len = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
      return len > 0 && raw.subarray(4, 4 + len).toString("latin1") === type;
    },
    {
      message: `an OpenSSH public host key line such as 'ssh-ed25519 AAAA...' (from ssh-keyscan), or '${UNPINNED_HOST_KEY}' until it is recorded`,
    },
  )
  .transform((s) => (s === UNPINNED_HOST_KEY ? s : s.split(/\s+/).slice(0, 2).join(" ")))
  .meta({ title: `'ssh-ed25519 AAAA...' or '${UNPINNED_HOST_KEY}'` });

export const dockerName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, "a Docker object name: letters, digits, '_', '.', '-'")
  .meta({ title: "Docker name" });

/** A lower-case name that names a file on the host (a migration's state, a repository's pass file). */
export const lowerName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,40}$/, "a lower-case name: letters, digits, '-'")
  .meta({ title: "lower-case name" });

export const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h)$/, "a duration such as '30s'")
  .meta({ title: "duration such as '30s'" });

export const percent = z.number().gt(0, "a percentage above 0").max(100, "a percentage of at most 100").meta({ title: "percent" });

// ---------------------------------------------------------------------------------------------
// Helpers of the cross-field rules
// ---------------------------------------------------------------------------------------------

/**
 * Cross-field rules run even when a field failed, so that one run reports every problem
 * (zod's `when` option of refinements). Their input may then be partly invalid: they only read
 * it defensively.
 */
export const EVEN_IF_INVALID = { when: () => true };

/** The shape cross-field rules read: possibly invalid, so every field is optional. */
export interface RawConfig {
  host?: { name?: unknown; address?: unknown; ssh?: { port?: unknown } };
  docker?: { daemon?: { liveRestore?: unknown } };
  swarm?: { role?: unknown; network?: unknown; managerStack?: unknown; peer?: unknown; advertiseAddress?: unknown };
  network?: { clients?: unknown[] };
  volumes?: { name?: unknown; host?: unknown; bind?: { device?: unknown } }[];
  services?: Record<
    string,
    {
      host?: unknown;
      ports?: { published?: unknown; protocol?: unknown; ip?: unknown }[];
      exposeToAll?: unknown;
      secretEnv?: Record<string, unknown>;
      mounts?: { source?: unknown; target?: unknown; readOnly?: unknown }[];
      overlay?: unknown;
    }
  >;
  migrations?: { name?: unknown; service?: unknown; source?: unknown; destination?: unknown; mount?: unknown; snapshot?: unknown }[];
  capacity?: { disks?: { mount?: unknown }[] };
  maintenance?: { fstrim?: { mounts?: unknown[] } };
  monitoring?: { mounts?: unknown[]; nvmeDevices?: unknown[]; baseline?: { paths?: unknown[] } };
  backup?: {
    repository?: { path?: unknown };
    paths?: { daily?: unknown[]; hourly?: unknown[] };
    sqlite?: unknown[];
    retention?: { hourly?: { hourly?: unknown } };
    offsite?: { ssh?: { address?: unknown; port?: unknown }; repoDir?: unknown };
    cloud?: { targets?: unknown; drillScratch?: unknown };
  };
}

/** A cross-field rule: reads the whole (possibly invalid) config, adds an issue per problem. */
export type CrossRule = (c: RawConfig, ctx: z.RefinementCtx) => void;

/** The list, or an empty one when the (possibly invalid) value is not a list. */
export function listOf<T>(v: readonly T[] | undefined): readonly T[];
export function listOf(v: unknown): readonly unknown[];
export function listOf(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

/** "a, b, c", or "none" for an empty list (in messages). */
export const listOrNone = (items: readonly unknown[]) => (items.length > 0 ? items.map(String).join(", ") : "none");

/** `a` is `b` or lies inside it. */
export const inside = (a: string, b: string) => a === b || a.startsWith(b === "/" ? "/" : `${b}/`);

/**
 * Each entry of a list once: an issue on every later entry whose key an earlier one has.
 * `key` picks what must be unique (default: the entry itself); entries whose key is `undefined`
 * are left out (a missing value is its own problem). `message` gets the first entry's index and
 * that entry; `at` gives the issue's path for an entry's index, `input` the value shown.
 */
export function checkUnique<T>(
  ctx: z.RefinementCtx,
  list: readonly T[] | undefined,
  opts: {
    readonly at: (i: number, item: T) => PropertyKey[];
    readonly message: (firstIndex: number, first: T) => string;
    readonly key?: (item: T, i: number) => unknown;
    readonly input?: (item: T) => unknown;
  },
): void {
  const seen = new Map<unknown, number>();
  const items = listOf(list);
  items.forEach((item, i) => {
    const k = opts.key ? opts.key(item, i) : item;
    if (opts.key && k === undefined) return;
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else ctx.addIssue({ code: "custom", path: opts.at(i, item), message: opts.message(first, items[first]!), input: opts.input ? opts.input(item) : item });
  });
}

/** The common case: a plain list of values at `path`, "<what> listed once (it is already at [i])". */
export function checkListedOnce(ctx: z.RefinementCtx, list: unknown, path: readonly PropertyKey[], what: string): void {
  checkUnique(ctx, listOf(list), { at: (i) => [...path, i], message: (first) => `${what} listed once (it is already at [${first}])` });
}

/**
 * A volume or a service names the host it is on, and a stack file holds only its own host's: one
 * issue at `path` when `placed` is not this stack's host `here` (none while `here` itself is
 * invalid: that is its own problem). `what`: "a volume belongs in the stack file of the host that
 * keeps it".
 */
export function checkOnThisHost(ctx: z.RefinementCtx, here: unknown, placed: unknown, path: readonly PropertyKey[], what: string): void {
  if (typeof here === "string" && placed !== here) {
    ctx.addIssue({ code: "custom", path: [...path], message: `this stack's host '${here}': ${what}`, input: placed });
  }
}
