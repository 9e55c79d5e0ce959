/**
 * The whole host config: the sections, and their cross-field rules run over the whole object.
 * Field docs live in the sections' `.meta({ description })`; docs/config.md is generated from
 * this schema (tools/config-docs.ts).
 */
import { z } from "zod";
import { EVEN_IF_INVALID, type CrossRule, type RawConfig } from "./primitives";
import { backupRule, backupSection } from "./sections/backup";
import { capacityRule, capacitySection } from "./sections/capacity";
import { cloudRule } from "./sections/cloud";
import { dockerRule, dockerSection } from "./sections/docker";
import { hostSection } from "./sections/host";
import { maintenanceRule, maintenanceSection } from "./sections/maintenance";
import { migrationsRule, migrationsSection } from "./sections/migrations";
import { monitoringRule, monitoringSection } from "./sections/monitoring";
import { networkRule, networkSection } from "./sections/network";
import { observabilityRule, observabilitySection } from "./sections/observability";
import { servicesRule, servicesSection } from "./sections/services";
import { swarmRule, swarmSection } from "./sections/swarm";
import { sysctlSection } from "./sections/sysctl";
import { volumesRule, volumesSection } from "./sections/volumes";

/** The rules one field cannot check alone, each beside its section. */
const CROSS_RULES: readonly CrossRule[] = [
  volumesRule,
  servicesRule,
  migrationsRule,
  maintenanceRule,
  monitoringRule,
  capacityRule,
  backupRule,
  cloudRule,
  dockerRule,
  swarmRule,
  networkRule,
  observabilityRule,
];

export const hostConfigSchema = z
  .strictObject({
    host: hostSection,
    docker: dockerSection.default(dockerSection.parse({})),
    sysctl: sysctlSection,
    swarm: swarmSection.optional(),
    network: networkSection.optional(),
    volumes: volumesSection,
    services: servicesSection,
    migrations: migrationsSection,
    capacity: capacitySection.optional(),
    maintenance: maintenanceSection.optional(),
    monitoring: monitoringSection.optional(),
    backup: backupSection.optional(),
    observability: observabilitySection.optional(),
  })
  .superRefine((c, ctx) => {
    for (const rule of CROSS_RULES) rule(c as unknown as RawConfig, ctx);
  }, EVEN_IF_INVALID);

type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

type Parsed = z.output<typeof hostConfigSchema>;

/** The validated, frozen config of one host. */
export type HostConfig = DeepReadonly<
  Omit<Parsed, "host" | "services" | "backup"> & {
    host: Parsed["host"] & { sudo: boolean };
    /** Each port with its address (`0.0.0.0` only with `exposeToAll`). */
    services: Record<
      string,
      Omit<Parsed["services"][string], "ports"> & { containerName: string; ports: (Parsed["services"][string]["ports"][number] & { ip: string })[] }
    >;
    /** `paths.daily`: the configured paths plus the automatic ones, outermost only, sorted. */
    backup?: NonNullable<Parsed["backup"]>;
  }
>;
export type DaemonSettings = HostConfig["docker"]["daemon"];
export type VolumeConfig = HostConfig["volumes"][number];
export type ServiceConfig = HostConfig["services"][string];
export type SwarmConfig = NonNullable<HostConfig["swarm"]>;
export type MigrationConfig = HostConfig["migrations"][number];
export type CapacityConfig = NonNullable<HostConfig["capacity"]>;
export type MaintenanceConfig = NonNullable<HostConfig["maintenance"]>;
export type MonitoringConfig = NonNullable<HostConfig["monitoring"]>;
export type BackupConfig = NonNullable<HostConfig["backup"]>;
export type NetworkConfig = NonNullable<HostConfig["network"]>;
export type ObservabilityConfig = NonNullable<HostConfig["observability"]>;
