/** `services`: the containers this host runs, by key. */
import { z } from "zod";
import { absolutePath, checkOnThisHost, checkUnique, dockerName, duration, hostName, ipv4, listOf, listOrNone, port, type CrossRule } from "../primitives";
import { SERVICE_SECRET_KEYS } from "../secrets";

/** The address Docker publishes on when none is given: every interface of the host. */
export const ALL_INTERFACES = "0.0.0.0";

export const serviceSection = z.strictObject({
  host: hostName.meta({ description: "The host that runs it: must be this stack's host." }),
  image: z
    .string()
    .regex(/^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/, "an image reference such as 'chromadb/chroma:0.6.3'")
    .refine((i) => /@sha256:/.test(i) || (/:[\w][\w.-]*$/.test(i.split("/").pop() ?? "") && !i.endsWith(":latest")), {
      message: "a pinned tag or digest, not 'latest' or no tag",
    })
    .meta({ title: "pinned image reference", description: "Image with a pinned tag or digest (`latest` and untagged images are refused)." }),
  pull: z.boolean().default(true).meta({ description: "Pull the image from its registry (false for an image built on the host)." }),
  containerName: dockerName.optional().meta({ description: "Container name.", defaultText: "the service's key" }),
  command: z.array(z.string()).optional().meta({ description: "The container's command." }),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name"), z.string())
    .default({})
    .meta({ description: "Environment variables. No secrets here: they are plaintext in the state (see `secretEnv`)." }),
  secretEnv: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name"), z.enum(SERVICE_SECRET_KEYS))
    .default({})
    .meta({
      description:
        "Environment variables whose value is a stack secret, by the secret's name (e.g. `CHROMA_SERVER_AUTHN_CREDENTIALS: chromaToken`): handed to the container as a Pulumi secret, encrypted in the state, never in a command.",
    }),
  ports: z
    .array(
      z.strictObject({
        published: port.meta({ description: "Host port; published once per host address and protocol." }),
        target: port.meta({ description: "Container port." }),
        protocol: z.enum(["tcp", "udp"]).default("tcp").meta({ description: "Protocol of the published port." }),
        ip: z.string().regex(ipv4, "an IPv4 address").optional().meta({
          title: "IPv4 address",
          description: "Host address to publish on: one of the host's own addresses (preflight checks it). Required unless the service sets `exposeToAll`.",
          defaultText: "required; `0.0.0.0` with `exposeToAll`",
        }),
      }),
    )
    .default([])
    .meta({ description: "Published ports. Services that only talk to each other use the overlay network and publish nothing." }),
  exposeToAll: z.boolean().default(false).meta({
    description:
      "Publish a port without an `ip` on every interface of the host (Docker's default) on purpose. Without it each port names its address, so that a new interface (a VPN, a second NIC) never exposes the service by itself.",
  }),
  mounts: z
    .array(
      z.strictObject({
        source: z
          .union([absolutePath, dockerName])
          .meta({ title: "volume name or absolute path", description: "A volume declared on this host, or an absolute host path (a bind mount)." }),
        target: absolutePath.meta({ description: "Path inside the container; one source per path." }),
        readOnly: z.boolean().default(false).meta({ description: "Mount read-only; a read-only bind source is left out of the automatic backup paths." }),
      }),
    )
    .default([])
    .meta({ description: "Volumes and bind mounts." }),
  gpus: z
    .strictObject({
      count: z.number().int("a positive whole number").positive("a positive whole number").optional().meta({ description: "Number of GPUs." }),
      deviceIds: z
        .array(z.string().regex(/^[\w-]+$/, "a GPU index or UUID"))
        .min(1, "at least one GPU id")
        .optional()
        .meta({ description: "Specific GPUs by index or UUID." }),
    })
    .refine((g) => (g.count === undefined) !== (g.deviceIds === undefined), { message: "either count or deviceIds, not both or neither" })
    .optional()
    .meta({ description: "GPUs reserved through the NVIDIA runtime (`deviceRequests`): a count, or specific GPUs by id." }),
  shmSizeMb: z
    .number()
    .int("a whole number")
    .positive("a positive whole number")
    .optional()
    .meta({ title: "MiB", description: "Shared memory in MiB (vLLM needs more than Docker's 64 MiB).", defaultText: "Docker's 64" }),
  healthcheck: z
    .strictObject({
      test: z
        .array(z.string())
        .min(2, "['CMD', ...] or ['CMD-SHELL', '...']")
        .refine((t) => t[0] === "CMD" || t[0] === "CMD-SHELL", {
          message: "a test starting with CMD or CMD-SHELL",
        })
        .meta({ description: "`['CMD', ...]` or `['CMD-SHELL', '...']`." }),
      interval: duration.default("30s").meta({ description: "Time between two checks." }),
      timeout: duration.default("10s").meta({ description: "Time one check may take." }),
      retries: z
        .number()
        .int("a whole number")
        .min(1, "at least 1")
        .default(3)
        .meta({ description: "Failed checks in a row that make the container unhealthy." }),
      startPeriod: duration.default("30s").meta({ description: "Start-up time during which failed checks do not count." }),
    })
    .optional()
    .meta({ description: "The container's health check." }),
  waitTimeout: z.number().int("a whole number").positive("a positive whole number").default(120).meta({
    title: "seconds",
    description:
      "Seconds the switch to a new container waits for it to be healthy (its health check; without one, running for 10 s) before it hands the service back to the old one.",
  }),
  stopGraceSeconds: z.number().int("a whole number").min(1, "at least 1").max(600, "at most 600").default(30).meta({
    description:
      "Seconds a stopping container gets between SIGTERM and SIGKILL: the old one at the switch, and this one when Pulumi replaces or deletes it (the Docker provider's `destroy_grace_seconds`, whose default 0 kills at once).",
  }),
  overlay: z.boolean().default(true).meta({ description: "Attach to the swarm's overlay network (needs a `swarm` section)." }),
});

export const servicesSection = z
  .record(dockerName, serviceSection)
  .default({})
  .meta({ description: "Service containers of this host, by key (`services.<key>`)." });

/** Placement, mount paths and sources, host ports across services, the overlay network. */
export const servicesRule: CrossRule = (c, ctx) => {
  const here = c.host?.name;
  const volumeNames = new Set(listOf(c.volumes).map((v) => v?.name));
  const services = Object.entries(c.services ?? {});
  for (const [svc, s] of services) {
    checkOnThisHost(ctx, here, s?.host, ["services", svc, "host"], "a service belongs in the stack file of the host that runs it");
    const mounts = listOf(s?.mounts);
    checkUnique(ctx, mounts, {
      key: (m) => m?.target,
      at: (i) => ["services", svc, "mounts", i, "target"],
      input: (m) => m?.target,
      message: (first) => `one source per container path (mounts[${first}] is already mounted there; Docker refuses a duplicate mount point)`,
    });
    mounts.forEach((m, i) => {
      const src = m?.source;
      if (typeof src === "string" && !src.startsWith("/") && !volumeNames.has(src)) {
        ctx.addIssue({
          code: "custom",
          path: ["services", svc, "mounts", i, "source"],
          message: `a volume declared in this stack's volumes (${listOrNone([...volumeNames])}) or an absolute host path`,
          input: src,
        });
      }
    });
    if (s?.overlay !== false && c.swarm === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["services", svc, "overlay"],
        message: "false, or a swarm section: the overlay network needs a swarm",
        input: s?.overlay ?? true,
      });
    }
  }
  // a published port names its address, unless the service is exposed on every interface on purpose
  for (const [svc, s] of services) {
    listOf(s?.ports).forEach((p, i) => {
      if (s?.exposeToAll === true) return;
      if (p?.ip === undefined || p.ip === ALL_INTERFACES) {
        ctx.addIssue({
          code: "custom",
          path: ["services", svc, "ports", i, "ip"],
          message: `an address of this host to publish on (e.g. ${typeof c.host?.address === "string" && ipv4.test(c.host.address) ? c.host.address : "192.168.68.69"}); or exposeToAll: true on the service to publish on every interface on purpose`,
          input: p?.ip,
        });
      }
    });
  }
  // one host port per address and protocol, across every service of the host
  const published = services.flatMap(([svc, s]) => listOf(s?.ports).map((p, i) => ({ svc, i, p })));
  const portKey = (p: (typeof published)[number]["p"]) => `${String(p?.ip ?? ALL_INTERFACES)}:${String(p?.published)}/${String(p?.protocol ?? "tcp")}`;
  checkUnique(ctx, published, {
    key: (x) => portKey(x.p),
    at: (_, x) => ["services", x.svc, "ports", x.i, "published"],
    input: (x) => x.p?.published,
    message: (_, first) => `a host port no other service publishes (${first.svc} has ${portKey(first.p)})`,
  });
};
