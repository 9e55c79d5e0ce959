/** `observability`: node_exporter and textfile metrics on the host; Prometheus and Alertmanager on the manager. */
import { z } from "zod";
import { checkListedOnce, type CrossRule } from "../primitives";

const seconds = (def: number, max: number) => z.number().int("a whole number").min(1, "at least 1").max(max, `at most ${max}`).default(def);

export const observabilitySection = z
  .strictObject({
    prometheus: z
      .strictObject({
        targets: z
          .array(
            z.strictObject({
              host: z
                .string()
                .regex(/^[a-z][a-z0-9-]*$/, "a host name: lower-case letters, digits and '-'")
                .meta({ description: "The `host` label of the target's series." }),
              address: z
                .string()
                .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, "address:port such as '192.168.68.71:9100'")
                .meta({ description: "`address:port` of the host's node_exporter (Debian's package listens on 9100)." }),
            }),
          )
          .min(1, "at least one target")
          .meta({ description: "The hosts Prometheus scrapes (this one and the other), each host listed once." }),
        scrapeIntervalSeconds: seconds(15, 3600).meta({ description: "Prometheus's scrape_interval." }),
        evaluationIntervalSeconds: seconds(15, 3600).meta({ description: "Prometheus's evaluation_interval: how often the alerting rules run." }),
        hostDownFor: z
          .string()
          .regex(/^\d+[smh]$/, "a duration such as '2m'")
          .default("2m")
          .meta({ description: "How long a target's scrape may fail before HostDown fires." }),
        groupWaitSeconds: seconds(30, 3600).meta({ description: "Alertmanager's group_wait." }),
        groupIntervalSeconds: seconds(300, 86400).meta({ description: "Alertmanager's group_interval." }),
        repeatIntervalMinutes: seconds(240, 10080).meta({ description: "Alertmanager's repeat_interval: a firing alert is sent again after this long." }),
        consoleHours: seconds(24, 720).meta({ description: "Hours of history the storage page's charts show." }),
        migrationStuckHours: seconds(24, 720).meta({
          description: "Hours a data migration may go unverified after its first run started before MigrationStuck (warning) fires.",
        }),
      })
      .optional()
      .meta({ description: "Prometheus and Alertmanager on this host (the manager); absent: this host is only scraped." }),
  })
  .meta({ description: "Observability: node_exporter, its collectors and the checks' textfile metrics; absent: the checks POST to the webhook themselves." });

/** Each target's host listed once. */
export const observabilityRule: CrossRule = (c, ctx) => {
  const targets = (c as { observability?: { prometheus?: { targets?: { host?: unknown }[] } } }).observability?.prometheus?.targets;
  checkListedOnce(ctx, Array.isArray(targets) ? targets.map((t) => t?.host) : undefined, ["observability", "prometheus", "targets"], "a target host");
};
