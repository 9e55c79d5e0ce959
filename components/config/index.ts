/**
 * The one door for stack config.
 *
 * Stack YAML (or the Pulumi runtime's config map) -> `parseHostConfig` -> a validated, frozen
 * `HostConfig`. Nothing downstream reads `pulumi.Config` again or re-validates what is checked
 * here. Every problem is reported at once, each with the stack file, the key path, the bad
 * value and what was expected, before a single resource is registered.
 *
 *   primitives.ts     building blocks (names, addresses, paths, host keys) and checkUnique
 *   sections/<s>.ts   one section each, with its cross-field rule beside it
 *   schema.ts         the whole host config and its inferred types
 *   secrets.ts        the secret keys, their form, the problems about them
 *   errors.ts         ConfigError and the problem lines
 *   load.ts           stack file or Pulumi's config map -> HostConfig
 *   runtime.ts        the program's entry (pulumi.Config); not re-exported here
 *
 * No `@pulumi/pulumi` import behind this index: the door is a pure function so that tests,
 * `npm run synth` and the Pulumi program all go through the same code, and components/plan/ can
 * import it without the SDK.
 */
export { ConfigError } from "./errors";
export { loadStackFile, parseHostConfig, parseStackConfig, PROJECT, readStackFile, splitSecrets, type ParseOptions, type RawConfigValue } from "./load";
export { UNPINNED_HOST_KEY } from "./primitives";
export {
  hostConfigSchema,
  type BackupConfig,
  type CapacityConfig,
  type DaemonSettings,
  type HostConfig,
  type MaintenanceConfig,
  type MigrationConfig,
  type MonitoringConfig,
  type NetworkConfig,
  type ObservabilityConfig,
  type ServiceConfig,
  type SwarmConfig,
  type VolumeConfig,
} from "./schema";
export { checkSecretFormat, SECRET_DOCS, SECRET_KEYS, SERVICE_SECRET_KEYS, type SecretKey, type ServiceSecretKey } from "./secrets";
export { ALL_INTERFACES } from "./sections/services";
export { automaticBackupPaths } from "./sections/backup";
