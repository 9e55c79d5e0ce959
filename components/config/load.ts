/**
 * Loading: from a stack file, or from the config map Pulumi hands over, through the schema to a
 * validated, normalised, frozen `HostConfig`, or one `ConfigError` listing every problem.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, describeIssue, show } from "./errors";
import { UNPINNED_HOST_KEY } from "./primitives";
import { hostConfigSchema, type HostConfig } from "./schema";
import { checkSecretFormat, isSecretKey, secretProblems, type SecretKey } from "./secrets";
import { automaticBackupPaths, outermostPaths } from "./sections/backup";
import { DEFAULT_NETWORK } from "./sections/swarm";
import { ALL_INTERFACES } from "./sections/services";

/** The Pulumi project name, which is also the config namespace (`dgx-storage:<key>`). */
export const PROJECT = "dgx-storage";

/** Where the config came from and what is being done with it. */
export interface ParseOptions {
  /** The stack file's name, quoted in every error (e.g. `Pulumi.sark.yaml`). */
  readonly source: string;
  /**
   * `apply` refuses what `preview` only warns about (an unpinned host key).
   * @default "preview"
   */
  readonly mode?: "preview" | "apply";
  /**
   * Secret keys that are set (their values are never passed in). When given, a missing secret
   * is a problem; synth and the schema tests leave it out, because the operator sets secrets.
   * @default undefined (not checked)
   */
  readonly secretsPresent?: readonly string[];
  /**
   * Secret keys whose values the caller found malformed (`checkSecretFormat`): each is listed as
   * a problem, its value never shown. @default []
   */
  readonly invalidSecrets?: readonly SecretKey[];
}

/** What `pulumi up` refuses and `pulumi preview` accepts: unpinned host keys. */
function applyProblems(data: HostConfig | undefined, peerKey: string | undefined): string[] {
  const problems: string[] = [];
  if (peerKey === UNPINNED_HOST_KEY) {
    problems.push(
      `backup.offsite.ssh.hostKey: ${show(UNPINNED_HOST_KEY)} cannot be applied; pin the other host's key (the same line as its stack's host.ssh.hostKey): ` +
        `pulumi config set --path backup.offsite.ssh.hostKey 'ssh-ed25519 AAAA...'`,
    );
  }
  if (data?.host.ssh.hostKey === UNPINNED_HOST_KEY) {
    const h = data.host;
    problems.push(
      `host.ssh.hostKey: ${show(UNPINNED_HOST_KEY)} cannot be applied; pin the key first: ` +
        `ssh-keyscan -t ed25519 -p ${h.ssh.port} ${h.address}, check its fingerprint on the console, then ` +
        `pulumi config set --path host.ssh.hostKey 'ssh-ed25519 AAAA...'`,
    );
  }
  return problems;
}

/**
 * Validates the config values of one stack (keys without the `dgx-storage:` prefix) and returns
 * the frozen config. Throws one `ConfigError` listing every problem.
 */
export function parseHostConfig(values: Readonly<Record<string, unknown>>, opts: ParseOptions): HostConfig {
  const plain = Object.fromEntries(Object.entries(values).filter(([k]) => !isSecretKey(k)));
  const problems = secretProblems(values, opts);
  const result = hostConfigSchema.safeParse(plain);
  if (!result.success) problems.push(...result.error.issues.flatMap((i) => describeIssue(i, plain)));
  if (opts.mode === "apply") {
    const config = result.success ? (result.data as HostConfig) : undefined;
    problems.push(...applyProblems(config, config?.backup?.offsite?.ssh.hostKey));
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(opts.source, problems);
  return deepFreeze(normalise(result.data)) as HostConfig;
}

/** The derived values: sudo, the manager's network, migrated mounts, the automatic backup paths. */
function normalise(data: ReturnType<typeof hostConfigSchema.parse>) {
  return {
    ...data,
    host: { ...data.host, sudo: data.host.sudo ?? data.host.ssh.user !== "root" },
    swarm: data.swarm?.role === "manager" ? { ...data.swarm, network: data.swarm.network ?? { name: DEFAULT_NETWORK, encrypted: false } } : data.swarm,
    // A migrated mount reads from its destination: the container is replaced after the
    // migration has copied and verified the data there.
    services: Object.fromEntries(
      Object.entries(data.services).map(([key, svc]) => {
        const moves = data.migrations.filter((m) => m.service === key);
        const mounts = svc.mounts.map((mt) => ({ ...mt, source: moves.find((m) => m.source === mt.source)?.destination ?? mt.source }));
        // the door refused a port without an address unless the service is exposed on purpose
        const ports = svc.ports.map((p) => ({ ...p, ip: p.ip ?? ALL_INTERFACES }));
        return [key, { ...svc, containerName: svc.containerName ?? key, mounts, ports }];
      }),
    ),
    ...(data.backup
      ? { backup: { ...data.backup, paths: { ...data.backup.paths, daily: outermostPaths([...data.backup.paths.daily, ...automaticBackupPaths(data)]) } } }
      : {}),
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

/**
 * The values of a stack file's `config:` block in the project's namespace, prefix removed.
 * Secure values (`{ secure: ... }`) are returned as the marker `{ secure: true }` so the door
 * can tell a set secret from a missing one without ever seeing its value.
 */
export function readStackFile(file: string): Record<string, unknown> {
  const doc = parseYaml(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    const [ns, name] = key.includes(":") ? key.split(/:(.*)/s) : [PROJECT, key];
    if (ns !== PROJECT || name === undefined) continue; // provider config such as docker:host
    out[name] = value;
  }
  return out;
}

/** Splits stack-file values into plain values and the names of secrets that are set. */
export function splitSecrets(values: Readonly<Record<string, unknown>>): {
  plain: Record<string, unknown>;
  secretsPresent: string[];
} {
  const plain: Record<string, unknown> = {};
  const secretsPresent: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (v && typeof v === "object" && "secure" in v) secretsPresent.push(k);
    else plain[k] = v;
  }
  return { plain, secretsPresent };
}

/** One config value as Pulumi hands it over: the raw string, and whether it was set with `--secret`. */
export interface RawConfigValue {
  readonly value: string;
  readonly secret?: boolean;
}

/**
 * The door for config as Pulumi hands it over: the runtime's map for `pulumi up` and preview
 * (./runtime.ts), the Automation API's `getAllConfig()` for `npm run drift`. Keys are full
 * (`dgx-storage:<key>`; other namespaces are skipped), values raw strings, decoded as JSON where
 * they parse. A key of `SECRET_KEYS` set as a secret leaves the values: it counts as present, its
 * form is checked (`checkSecretFormat`, value never shown) and it is returned in `secrets` for a
 * caller that needs it; set in plaintext, it stays in the values and the door rejects it.
 */
export function parseStackConfig(
  all: Readonly<Record<string, RawConfigValue>>,
  opts: Omit<ParseOptions, "secretsPresent" | "invalidSecrets">,
): { config: HostConfig; secrets: Partial<Record<SecretKey, string>> } {
  const values: Record<string, unknown> = {};
  const secrets: Partial<Record<SecretKey, string>> = {};
  for (const [fullKey, { value, secret }] of Object.entries(all)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    if (secret === true && isSecretKey(key)) {
      secrets[key] = value;
      continue;
    }
    try {
      values[key] = JSON.parse(value);
    } catch {
      values[key] = value;
    }
  }
  const config = parseHostConfig(values, { ...opts, secretsPresent: Object.keys(secrets), invalidSecrets: checkSecretFormat(secrets) });
  return { config, secrets };
}

/**
 * Loads and validates a stack file (tests and synth). Secrets are only required to be set when
 * `requireSecrets` is true: the committed stack files carry none, the operator adds them.
 */
export function loadStackFile(file: string, opts: { readonly mode?: "preview" | "apply"; readonly requireSecrets?: boolean } = {}): HostConfig {
  const { plain, secretsPresent } = splitSecrets(readStackFile(file));
  return parseHostConfig(plain, {
    source: path.basename(file),
    mode: opts.mode ?? "preview",
    ...(opts.requireSecrets ? { secretsPresent } : {}),
  });
}
