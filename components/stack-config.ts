/**
 * Reads this stack's config from the Pulumi runtime and hands it to the config door. The only
 * module that touches `pulumi.Config`.
 */
import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { checkSecretFormat, parseHostConfig, PROJECT, SECRET_KEYS, type HostConfig, type SecretKey } from "./config";

export interface StackConfig {
  readonly config: HostConfig;
  readonly sshPrivateKey: pulumi.Output<string>;
  /** The alert webhook URL, as a secret; undefined when not set (alerts go to the journal only). */
  readonly alertWebhook?: pulumi.Output<string>;
  /** The borg repository passphrase, as a secret; set when the stack has a `backup` section. */
  readonly borgPassphrase?: pulumi.Output<string>;
}

function decode(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Whether a config key was set with `--secret`. The SDK's own check is marked internal (absent
 * from its .d.ts) but is what `pulumi.Config` uses; without it, every value counts as secret.
 */
function isSecret(fullKey: string): boolean {
  const check = (runtimeConfig as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  return check ? check(fullKey) : true;
}

export function loadStackConfig(): StackConfig {
  const values: Record<string, unknown> = {};
  const secretsPresent: string[] = [];
  const secretValues: Partial<Record<SecretKey, string>> = {};
  for (const [fullKey, raw] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    if ((SECRET_KEYS as readonly string[]).includes(key) && isSecret(fullKey)) {
      secretsPresent.push(key);
      // only to check its form (checkSecretFormat); the value goes nowhere else from here
      secretValues[key as SecretKey] = raw;
      continue;
    }
    // a secret key set in plaintext stays in `values`, and the door rejects it
    values[key] = decode(raw);
  }
  const config = parseHostConfig(values, {
    source: `Pulumi.${pulumi.getStack()}.yaml`,
    mode: pulumi.runtime.isDryRun() ? "preview" : "apply",
    secretsPresent,
    invalidSecrets: checkSecretFormat(secretValues),
  });
  const cfg = new pulumi.Config(PROJECT);
  const alertWebhook = secretsPresent.includes("alertWebhook") ? cfg.requireSecret("alertWebhook").apply((u) => u.trim()) : undefined;
  // only the line ending `pulumi config set --secret borgPassphrase < file` adds is dropped:
  // spaces are part of a passphrase
  const borgPassphrase =
    config.backup && secretsPresent.includes("borgPassphrase") ? cfg.requireSecret("borgPassphrase").apply((p) => p.replace(/\r?\n$/, "")) : undefined;
  return {
    config,
    sshPrivateKey: cfg.requireSecret("sshPrivateKey"),
    ...(alertWebhook ? { alertWebhook } : {}),
    ...(borgPassphrase ? { borgPassphrase } : {}),
  };
}
