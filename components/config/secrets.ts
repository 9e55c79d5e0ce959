/**
 * The stack config keys that hold secrets, what their values must look like, and the problems
 * the door lists about them. Their values never reach `parseHostConfig`: the caller that holds
 * them checks their form (`checkSecretFormat`) and passes only names.
 */

/**
 * Stack config keys that hold secrets. They are never parsed into `HostConfig`: the program
 * reads them with `requireSecret` (or `getSecret`), so they stay wrapped as Pulumi secrets end
 * to end.
 */
export const SECRET_KEYS = ["sshPrivateKey", "alertWebhook", "heartbeatUrl", "borgPassphrase", "chromaToken", "vllmApiKey", "cloudCredentials"] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/**
 * The secrets a service may take into its environment (`services.<s>.secretEnv`): the tokens its
 * clients authenticate with. Each is required once a service names it.
 */
export const SERVICE_SECRET_KEYS = ["chromaToken", "vllmApiKey"] as const satisfies readonly SecretKey[];
export type ServiceSecretKey = (typeof SERVICE_SECRET_KEYS)[number];

/**
 * Secret keys a stack may leave unset: without `alertWebhook`, alerts go to the journal only;
 * `borgPassphrase` is required only with a `backup` section. Every other key of `SECRET_KEYS`
 * is required when the caller says which secrets are set.
 */
const OPTIONAL_SECRET_KEYS: readonly SecretKey[] = ["alertWebhook", "heartbeatUrl", "borgPassphrase", "cloudCredentials", ...SERVICE_SECRET_KEYS];

/** What each secret is, for the generated config reference. */
export const SECRET_DOCS: Readonly<Record<SecretKey, { readonly type: string; readonly default: string; readonly description: string }>> = {
  sshPrivateKey: {
    type: "secret: OpenSSH private key",
    default: "required",
    description: "The key every remote command and the Docker provider log in with: `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`.",
  },
  alertWebhook: {
    type: "secret: http(s) URL on one line",
    default: "none (journal only)",
    description: "Where storage and backup alerts are POSTed: `pulumi config set --secret alertWebhook`.",
  },
  heartbeatUrl: {
    type: "secret: http(s) URL on one line",
    default: "none (no heartbeat)",
    description:
      "A dead-man's switch outside the hosts (healthchecks-style): every successful backup run GETs it, so a host that is down or whose timers stopped is noticed: `pulumi config set --secret heartbeatUrl`. Used with `backup`.",
  },
  borgPassphrase: {
    type: "secret: one line, 12+ characters",
    default: "required with `backup`",
    description: "The borg repository passphrase: `pulumi config set --secret borgPassphrase`; keep a copy off the hosts.",
  },
  chromaToken: {
    type: "secret: 32+ characters, no spaces",
    default: "required when a service's `secretEnv` names it",
    description:
      "ChromaDB's token (SARK): `openssl rand -hex 32 | pulumi config set --secret chromaToken`. Clients send `Authorization: Bearer <token>` (docs/reach.md).",
  },
  cloudCredentials: {
    type: "secret: JSON object, one entry per cloud target",
    default: "required with `backup.cloud`",
    description:
      'The object-storage credentials of `backup.cloud.targets`, by target name: `{"s3-main": {"accessKeyId": "...", "secretAccessKey": "..."}, "azure-main": {"accountKey": "..."}}` (`pulumi config set --secret cloudCredentials < creds.json`). Written only into the root-only rclone config on the host (docs/backups-cloud.md).',
  },
  vllmApiKey: {
    type: "secret: 32+ characters, no spaces",
    default: "required when a service's `secretEnv` names it",
    description:
      "vLLM's API key (CLU): `openssl rand -hex 32 | pulumi config set --secret vllmApiKey`. Clients send `Authorization: Bearer <key>` (docs/reach.md).",
  },
};

const TOKEN_FORMAT = {
  test: /^[A-Za-z0-9._~+/=-]{32,}$/,
  expected: "at least 32 characters of letters, digits and ._~+/=- on one line (e.g. openssl rand -hex 32)",
};

/** What a secret's value must look like (the value is never shown in a problem). */
const SECRET_FORMATS: Readonly<Partial<Record<SecretKey, { readonly test: RegExp; readonly expected: string }>>> = {
  // one line: the file on the host holds exactly this URL, read by storage-alert.sh and borg-run.sh
  alertWebhook: { test: /^https?:\/\/[^\s'"\\`$]+$/, expected: "an http(s) URL on one line (e.g. https://ntfy.sh/<topic>)" },
  heartbeatUrl: { test: /^https?:\/\/[^\s'"\\`$]+$/, expected: "an http(s) URL on one line (e.g. https://hc-ping.com/<uuid>)" },
  // borg-repo.sh reads one line from stdin into the pass file; a short passphrase guards little
  borgPassphrase: { test: /^[^\n\r]{12,}$/, expected: "a passphrase of at least 12 characters on one line" },
  // sent as an HTTP header value (`Authorization: Bearer <token>`), and long enough that the
  // configuration hash the container is labelled with (which covers it) cannot be searched
  chromaToken: TOKEN_FORMAT,
  vllmApiKey: TOKEN_FORMAT,
  // a JSON object; each target's fields are checked where the rclone config is rendered
  cloudCredentials: { test: /^\{[\s\S]*\}$/, expected: 'a JSON object by target name, e.g. {"s3-main": {"accessKeyId": "...", "secretAccessKey": "..."}}' },
};

/** The names of the secrets whose values do not have the form `SECRET_FORMATS` expects. */
export function checkSecretFormat(values: Readonly<Partial<Record<SecretKey, string>>>): SecretKey[] {
  return SECRET_KEYS.filter((k) => {
    const v = values[k];
    const f = SECRET_FORMATS[k];
    return v !== undefined && f !== undefined && !f.test.test(v.trim());
  });
}

export const isSecretKey = (k: string): k is SecretKey => (SECRET_KEYS as readonly string[]).includes(k);

/**
 * The problems about secrets: one set inline in plaintext (in `values`), a required one missing
 * (only when `secretsPresent` is given), one whose value has the wrong form.
 */
export function secretProblems(
  values: Readonly<Record<string, unknown>>,
  opts: { readonly secretsPresent?: readonly string[] | undefined; readonly invalidSecrets?: readonly SecretKey[] | undefined },
): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(values)) {
    if (isSecretKey(k)) problems.push(`${k}: must be set as a secret (pulumi config set --secret ${k} ...), not inline`);
  }
  const present = opts.secretsPresent;
  if (present) {
    for (const k of SECRET_KEYS) {
      if (OPTIONAL_SECRET_KEYS.includes(k)) continue;
      if (!present.includes(k) && !(k in values)) {
        problems.push(`${k}: (missing) secret; set it with: pulumi config set --secret ${k} < ~/.ssh/<key> (Pulumi stores it encrypted)`);
      }
    }
    for (const [env, key] of namedServiceSecrets(values)) {
      if (!present.includes(key)) {
        problems.push(`${env}: (missing) secret ${key}; set it with: openssl rand -hex 32 | pulumi config set --secret ${key}`);
      }
    }
    const cloud = (values.backup as { cloud?: unknown } | undefined)?.cloud;
    if (cloud !== undefined && !present.includes("cloudCredentials")) {
      problems.push(
        "cloudCredentials: (missing) secret, required with backup.cloud; set it with: pulumi config set --secret cloudCredentials < creds.json (docs/backups-cloud.md)",
      );
    }
    if (values.backup !== undefined && !present.includes("borgPassphrase")) {
      problems.push(
        "borgPassphrase: (missing) secret, required with a backup section; set it with: pulumi config set --secret borgPassphrase (keep a copy off the hosts)",
      );
    }
  }
  for (const k of opts.invalidSecrets ?? []) {
    problems.push(`${k}: (secret, not shown) is invalid; expected ${SECRET_FORMATS[k]?.expected ?? "another value"}`);
  }
  return problems;
}

/** `[key path, secret]` for each `services.<s>.secretEnv.<VAR>` that names a service secret. */
function namedServiceSecrets(values: Readonly<Record<string, unknown>>): [string, ServiceSecretKey][] {
  const services = values.services;
  if (!services || typeof services !== "object") return [];
  const out: [string, ServiceSecretKey][] = [];
  for (const [svc, s] of Object.entries(services as Record<string, unknown>)) {
    const env = (s as { secretEnv?: unknown } | null)?.secretEnv;
    if (!env || typeof env !== "object") continue;
    for (const [k, v] of Object.entries(env as Record<string, unknown>)) {
      if ((SERVICE_SECRET_KEYS as readonly unknown[]).includes(v)) out.push([`services.${svc}.secretEnv.${k}`, v as ServiceSecretKey]);
    }
  }
  return out;
}
