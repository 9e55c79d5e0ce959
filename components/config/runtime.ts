/**
 * Reads this stack's config from the Pulumi runtime and hands it to the config door. The only
 * module that touches `pulumi.Config`.
 */
import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { ConfigError } from "./errors";
import { parseStackConfig, PROJECT, type HostConfig, type ServiceSecretKey } from "./index";

export interface StackConfig {
  readonly config: HostConfig;
  readonly sshPrivateKey: pulumi.Output<string>;
  /** The alert webhook URL, as a secret; undefined when not set (alerts go to the journal only). */
  readonly alertWebhook?: pulumi.Output<string>;
  /** The dead-man's-switch URL, as a secret; undefined when not set (no heartbeat). */
  readonly heartbeatUrl?: pulumi.Output<string>;
  /** The borg repository passphrase, as a secret; set when the stack has a `backup` section. */
  readonly borgPassphrase?: pulumi.Output<string>;
  /** The object-storage credentials of `backup.cloud`, as a secret; set when the stack has that section. */
  readonly cloudCredentials?: pulumi.Output<string>;
  /** The tokens the services' `secretEnv` names, as secrets (only those named). */
  readonly serviceSecrets: Readonly<Partial<Record<ServiceSecretKey, pulumi.Output<string>>>>;
}

/**
 * Whether a config key was set with `--secret`. The SDK's own check is marked internal (absent
 * from its .d.ts) but is what `pulumi.Config` uses; without it, every value counts as secret.
 */
function isSecret(fullKey: string): boolean {
  const check = (runtimeConfig as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  return check ? check(fullKey) : true;
}

/**
 * What the program throws for an error: a `ConfigError` becomes a `pulumi.RunError` with the same
 * text, because the SDK's run entry logs a RunError's message alone and any other error with its
 * JavaScript stack (sdk/nodejs/cmd/run/run.ts, the uncaught-error handler: "Always hide the stack
 * for RunErrors"). The operator sees the list of problems and nothing else. Other errors pass
 * unchanged: their stack is what a bug report needs.
 */
export function programError(e: unknown): unknown {
  return e instanceof ConfigError ? new pulumi.RunError(e.message) : e;
}

export function loadStackConfig(): StackConfig {
  const all = Object.fromEntries(Object.entries(pulumi.runtime.allConfig()).map(([fullKey, value]) => [fullKey, { value, secret: isSecret(fullKey) }]));
  // the secrets' values are only checked for form there; they are read below as Pulumi secrets
  let parsed: ReturnType<typeof parseStackConfig>;
  try {
    parsed = parseStackConfig(all, {
      source: `Pulumi.${pulumi.getStack()}.yaml`,
      mode: pulumi.runtime.isDryRun() ? "preview" : "apply",
    });
  } catch (e) {
    throw programError(e);
  }
  const { config, secrets } = parsed;
  const secretsPresent = Object.keys(secrets);
  const cfg = new pulumi.Config(PROJECT);
  const alertWebhook = secretsPresent.includes("alertWebhook") ? cfg.requireSecret("alertWebhook").apply((u) => u.trim()) : undefined;
  const heartbeatUrl = secretsPresent.includes("heartbeatUrl") ? cfg.requireSecret("heartbeatUrl").apply((u) => u.trim()) : undefined;
  // only the line ending `pulumi config set --secret borgPassphrase < file` adds is dropped:
  // spaces are part of a passphrase
  const borgPassphrase =
    config.backup && secretsPresent.includes("borgPassphrase") ? cfg.requireSecret("borgPassphrase").apply((p) => p.replace(/\r?\n$/, "")) : undefined;
  const cloudCredentials = config.backup?.cloud && secretsPresent.includes("cloudCredentials") ? cfg.requireSecret("cloudCredentials") : undefined;
  // the tokens the services name (the door has checked that each is set, as a secret)
  const named = new Set(Object.values(config.services).flatMap((s) => Object.values(s.secretEnv)));
  const serviceSecrets = Object.fromEntries([...named].map((k) => [k, cfg.requireSecret(k).apply((v) => v.trim())]));
  return {
    config,
    serviceSecrets,
    sshPrivateKey: cfg.requireSecret("sshPrivateKey"),
    ...(alertWebhook ? { alertWebhook } : {}),
    ...(heartbeatUrl ? { heartbeatUrl } : {}),
    ...(borgPassphrase ? { borgPassphrase } : {}),
    ...(cloudCredentials ? { cloudCredentials } : {}),
  };
}
