/**
 * The one mock harness: runs index.ts under Pulumi's mock runtime for a stack (a fresh module
 * each time) and returns every registration, recorded by tools/mock-capture.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { expect, vi } from "vitest";
import { parseHostConfig } from "../components/config";
import { FIXTURE_HOST_KEY, withPeerKey } from "./fixtures";
import { startCapture, type Read, type Registration, type RegistrationHook } from "../tools/mock-capture";

export type { Read, Registration } from "../tools/mock-capture";

export const REPO = path.resolve(__dirname, "..");

/** Sentinel secret values: tests assert they appear only inside secret inputs. */
export const SENTINEL_SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nSENTINEL-SSH-KEY-5f1d\n-----END OPENSSH PRIVATE KEY-----\n";

export interface StackRun {
  readonly registrations: readonly Registration[];
  /** URNs the hook left unanswered (with `hook` only): failed, skipped or killed steps. */
  readonly unanswered: ReadonlySet<string>;
  /** Resources read, not registered (StackReferences). */
  readonly reads: readonly Read[];
  readonly exports: Record<string, unknown>;
  /** The program's exports as it made them (Outputs unresolved), e.g. for pulumi.isSecret. */
  readonly rawExports: Record<string, unknown>;
  byName(name: string): Registration;
  ofType(type: string): Registration[];
}

export interface RunOptions {
  /** Stack name (`sark`, `clu`, `test-sark`, ...). */
  readonly stack: string;
  /** Config values without the project prefix. */
  readonly config: Record<string, unknown>;
  /** Secret config values. @default the sentinel SSH key; the sentinel borg passphrase and service tokens are added unless given or left out */
  readonly secrets?: Record<string, string>;
  /** Leave the borg passphrase out (a test of the door's rule). @default false */
  readonly withoutBorgPassphrase?: boolean;
  /** Leave the service tokens (chromaToken, vllmApiKey) out. @default false: their sentinels are set */
  readonly withoutServiceTokens?: boolean;
  /** @default true */
  readonly preview?: boolean;
  /** Outputs returned by StackReferences, by referenced stack name. @default MANAGER_OUTPUTS for sark */
  readonly stackOutputs?: Record<string, Record<string, unknown>>;
  /** What a remote command prints on an `up` (preview: false), by name. @default swarm-init's output, else "" */
  readonly commandStdout?: (name: string) => string | undefined;
  /**
   * Applies each registration for real (test/e2e/engine.ts); the mocked outputs above are then
   * not used. Exports that wait for an unanswered registration are left out of `exports`.
   */
  readonly hook?: RegistrationHook;
}

/** Sentinel borg passphrase: tests assert it appears only inside secret inputs. */
export const SENTINEL_BORG_PASSPHRASE = "sentinel-borg-passphrase-0b9e";

/** What `borg-repo.sh ssh-key` prints on an up: the off-site public key (a key made for these tests). */
export const OFFSITE_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJNuR60GMH3cwtKterh+Fd545OGEz0pvHhvFBXSfHzv+ dgx-backup@sark";

/** Sentinel service tokens (32+ characters, as the door asks): tests assert they appear only inside secrets. */
export const SENTINEL_CHROMA_TOKEN = "sentinel-chroma-token-0000000000000000-3c7a";
export const SENTINEL_VLLM_API_KEY = "sentinel-vllm-api-key-0000000000000000-9e41";

/** Sentinel swarm join token: tests assert it appears only inside secret inputs. */
export const SENTINEL_JOIN_TOKEN = "SWMTKN-1-sentinel0join0token-5f1d";

/** The manager stack's outputs, as the worker's StackReference sees them. */
export const MANAGER_OUTPUTS: Record<string, Record<string, unknown>> = {
  "organization/dgx-storage/sark": {
    swarmManagerAddress: "192.168.68.69:2377",
    swarmManagerNodeId: "mgrnode0000000000000000001",
    swarmWorkerToken: SENTINEL_JOIN_TOKEN,
    overlayNetwork: "optimized-swarm",
  },
};

/** What swarm-init.sh prints on a manager. */
export const SWARM_INIT_STDOUT = `${JSON.stringify({ nodeId: "mgrnode0000000000000000001", managerAddress: "192.168.68.69:2377", workerToken: SENTINEL_JOIN_TOKEN })}\n`;

/** A stack file's config in the project namespace, prefix removed. */
export function stackFileConfig(file: string): Record<string, unknown> {
  const doc = parseYaml(fs.readFileSync(path.resolve(REPO, file), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config)
      .filter(([k]) => k.startsWith("dgx-storage:"))
      .map(([k, v]) => [k.slice("dgx-storage:".length), v]),
  );
}

/**
 * A real stack file's config with pinned host keys, the host's and the off-site peer's (the
 * committed files carry "unpinned").
 */
export function pinnedStackConfig(stack: "sark" | "clu", hostKey = FIXTURE_HOST_KEY): Record<string, unknown> {
  const config = stackFileConfig(`Pulumi.${stack}.yaml`);
  const host = config.host as { ssh: Record<string, unknown> };
  return withPeerKey({ ...config, host: { ...host, ssh: { ...host.ssh, hostKey } } });
}

/** Asserts that the door rejects `values` with a problem line for `key` that contains `text`. */
export function expectConfigProblem(values: Record<string, unknown>, key: string, text: string): void {
  let message = "";
  try {
    parseHostConfig(values, { source: "Pulumi.sark.yaml" });
  } catch (e) {
    message = (e as Error).message;
  }
  const line = message.split("\n").find((l) => l.includes(`- ${key}:`));
  expect(line, `no problem for ${key} in:\n${message}`).toBeDefined();
  expect(line).toContain(text);
}

export async function runStack(opts: RunOptions): Promise<StackRun> {
  const capture = await startCapture({
    stack: opts.stack,
    config: opts.config,
    secrets: {
      ...(opts.withoutBorgPassphrase ? {} : { borgPassphrase: SENTINEL_BORG_PASSPHRASE }),
      ...(opts.withoutServiceTokens ? {} : { chromaToken: SENTINEL_CHROMA_TOKEN, vllmApiKey: SENTINEL_VLLM_API_KEY }),
      ...(opts.secrets ?? { sshPrivateKey: SENTINEL_SSH_KEY }),
    },
    preview: opts.preview ?? true,
    stackOutputs: opts.stackOutputs ?? MANAGER_OUTPUTS,
    secretOutputNames: ["swarmWorkerToken"],
    commandStdout: (name) =>
      opts.commandStdout?.(name) ??
      (name.endsWith("-swarm-init") ? SWARM_INIT_STDOUT : name.endsWith("-backup-ssh-key") ? `${OFFSITE_PUBLIC_KEY}\n` : undefined),
    ...(opts.hook ? { hook: opts.hook } : {}),
  });
  const { registrations } = capture;
  vi.resetModules();
  let exports: Record<string, unknown>;
  try {
    // index.ts sets module.exports (`export =`), which vitest hands over as the default export
    const mod = (await import("../index")) as { default?: Record<string, unknown> };
    if (!mod.default) throw new Error("index.ts must export its stack outputs as one object (export =)");
    exports = mod.default;
  } catch (e) {
    // let a test see what had been registered before the program failed
    throw Object.assign(e as Error, { registrations });
  }
  await capture.settled();
  const resolved: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(exports)) {
    if (!pulumi.Output.isInstance(v)) resolved[k] = v;
    else if (!opts.hook) resolved[k] = await promiseOf(v);
    else {
      // every answered registration has resolved its outputs by now: what is still pending waits
      // for one that never will be answered
      const NEVER = Symbol("never");
      const value = await Promise.race([promiseOf(v), turns(50).then(() => NEVER)]);
      if (value !== NEVER) resolved[k] = value;
    }
  }
  return {
    registrations,
    unanswered: capture.unanswered,
    reads: capture.reads,
    exports: resolved,
    rawExports: exports,
    byName(name) {
      const r = registrations.find((x) => x.name === name);
      if (!r) throw new Error(`no resource named ${name}; have: ${registrations.map((x) => x.name).join(", ")}`);
      return r;
    },
    ofType(type) {
      return registrations.filter((x) => x.type === type);
    },
  };
}

/**
 * Whether `pulumi up` runs `name` only after `dependency`: `dependency` is among the resources it
 * waits for, directly or through them: the dependencies the SDK sends with each registration
 * (its own dependsOn, expanded through components, and the resources its inputs come from) and
 * its provider. A parent component's dependsOn is not counted: the engine inherits nothing from
 * it (the Node SDK does delay a child's registration until its parent's URN is known, which
 * waits for the parent's dependsOn; the edges asserted with this hold without that).
 */
export function waitsFor(run: StackRun, name: string, dependency: string): boolean {
  const byUrn = new Map(run.registrations.map((r) => [r.urn, r]));
  const target = run.byName(dependency).urn;
  const seen = new Set<string>();
  const todo = [run.byName(name).urn];
  while (todo.length > 0) {
    const r = byUrn.get(todo.pop()!);
    if (!r) continue;
    for (const d of [...r.dependsOn, ...(r.provider ? [r.provider.split("::").slice(0, -1).join("::")] : [])]) {
      if (d === target) return true;
      if (!seen.has(d)) {
        seen.add(d);
        todo.push(d);
      }
    }
  }
  return false;
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** What `promiseOf` gives for a value that is unknown during a preview. */
export const UNKNOWN = Symbol("unknown during preview");

/**
 * The value of an Output, awaited (secrets unwrapped), or `UNKNOWN` when the engine would only
 * know it after an apply (an `apply` callback never runs then, so plain awaiting would hang).
 * `isKnown`/`promise` are the SDK's own, not in its .d.ts.
 */
export async function promiseOf<T>(o: pulumi.Output<T>): Promise<T | typeof UNKNOWN> {
  const impl = o as unknown as { isKnown: Promise<boolean>; promise(withUnknowns?: boolean): Promise<T> };
  return (await impl.isKnown) ? impl.promise(true) : UNKNOWN;
}
