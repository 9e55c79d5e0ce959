/**
 * The e2e engine: applies a stack to the test hosts the way `pulumi up` and the real providers
 * would. The program runs once per apply under Pulumi's mock runtime; every registration is
 * applied for real as the SDK sends it (tools/mock-capture.ts `hook`), and what the step returns
 * (a command's stdout, a container's id) flows back into the program, so a worker's
 * StackReference reads the manager's real outputs and the off-site receive command gets the real
 * public key.
 *
 * Ordering is the SDK's, not a plan of ours. The Node SDK sends a registration only once the URNs
 * of its dependencies and of its parent are known (sdk/nodejs/runtime/resource.ts
 * prepareResource: `gatherExplicitDependencies(opts.dependsOn)`, then
 * `getAllTransitivelyReferencedResourceURNs`, then "Wait for the parent to complete": `await
 * parent.urn.promise()`), and a URN is known when the engine has answered that registration,
 * i.e. after its step. On top, the engine makes each step wait for the URNs in its request's
 * `dependencies` and for its provider, nothing else: no dependsOn is inherited from a parent
 * component (pulumi/pulumi#8721 shows the engine taking only what the request names). Everything
 * whose dependencies are done runs at once, as Pulumi's default unbounded `--parallel`.
 *
 * State is kept per stack between applies (in memory, and as JSON in the workdir for debugging).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { HookResult, Read, Registration, RegistrationHook } from "../../tools/mock-capture";
import { runStack, type StackRun } from "../harness";
import {
  apiLessThan,
  checkCommandInputs,
  COMMAND,
  CONTAINER,
  containerCreateRequest,
  containerUpdateCallsApi,
  diffCommand,
  diffContainer,
  diffNetwork,
  diffVolume,
  DOCKER_PROVIDER,
  DockerApi,
  checkNetworkInputs,
  checkVolumeInputs,
  networkState,
  NETWORK,
  Processes,
  REMOTE_IMAGE,
  runRemoteCommand,
  STACK_REFERENCE,
  VOLUME,
  volumeState,
  type Connection,
  type Diff,
} from "./providers";

export type Op = "create" | "update" | "replace" | "delete" | "same" | "read";
export type Status = "ok" | "error" | "skipped" | "killed";

/** One step of an apply, with its time (ms since the apply started). */
export interface Step {
  readonly urn: string;
  readonly name: string;
  readonly type: string;
  readonly op: Op;
  status: Status;
  error?: string;
  /** What changed (update/replace), or why it was skipped. */
  readonly detail?: string;
  start: number;
  end: number;
}

/** A resource in a stack's state (what `pulumi stack export` would hold of it). */
export interface StateEntry {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly id: string;
  readonly parent: string;
  /** The inputs it was last applied with. */
  readonly inputs: Record<string, unknown>;
  readonly outputs: Record<string, unknown>;
  readonly dependencies: readonly string[];
  readonly provider: string;
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  readonly deleteBeforeReplace: boolean;
}

export interface StackState {
  resources: StateEntry[];
  /** The program's exports after the last apply that completed. */
  outputs: Record<string, unknown>;
  secretOutputNames: string[];
}

export interface ApplyOptions {
  /** The engine's stack name (`test-sark`): a StackReference to `organization/<project>/<stack>` reads it. */
  readonly stack: string;
  readonly config: Record<string, unknown>;
  readonly secrets: Record<string, string>;
  /** Kill the apply (like Ctrl-C twice, or kill -9 of pulumi) when this step starts, or afterMs into it. */
  readonly kill?: { readonly step: string; readonly afterMs?: number };
  /** Kill the apply as soon as this resolves true (asked every 250 ms while the apply runs): a fault at a moment the host shows. */
  readonly killWhen?: () => Promise<boolean>;
  /** Resources to replace although nothing changed, by name (`pulumi up --replace <urn>`). */
  readonly replace?: readonly string[];
  /** Called when a step starts (a test can watch the hosts meanwhile). */
  readonly onStepStart?: (step: Step) => void;
  /**
   * `pulumi up --continue-on-error`: a failure skips only its dependents. Without it (Pulumi's
   * default) no new step starts after the first failure; the running ones finish.
   * @default false
   */
  readonly continueOnError?: boolean;
}

export interface ApplyResult {
  readonly stack: string;
  readonly steps: readonly Step[];
  readonly ok: boolean;
  readonly killed: boolean;
  /** The program's run: registrations, exports. */
  readonly run: StackRun;
  /** The step of a resource by name; throws when it has none. */
  step(name: string): Step;
  /** A command's stdout after this apply (from the state, one trailing newline trimmed as the provider does; "" if it never ran). */
  stdout(name: string): string;
  /** Likewise its stderr. */
  stderr(name: string): string;
  /** A resource's state entry after this apply. */
  state(name: string): StateEntry | undefined;
  /** Names of the steps with this op and status ok, in start order. */
  names(op: Op): string[];
}

/** An apply with a failed (or killed) step: thrown at the end, carrying the whole result. */
export class ApplyFailed extends Error {
  constructor(readonly result: ApplyResult) {
    const bad = result.steps.filter((s) => s.status === "error" || s.status === "killed");
    super(
      `${result.stack}: ${result.killed ? "killed; " : ""}${bad.length} step(s) failed:\n${bad.map((s) => `- ${s.op} ${s.name}: ${s.error ?? s.status}`).join("\n")}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// pure parts (unit-tested in test/e2e-engine.test.ts)

/**
 * Runs work in dependency order as registrations arrive: each waits for the steps named in its
 * dependencies (those started in this apply; a URN not started here is done already, as a
 * resource read or kept from the state is). A dependency that failed or was skipped skips it.
 */
export class Scheduler {
  private readonly outcomes = new Map<string, Promise<boolean>>();

  /** Resolves with "ok", "failed" or "skipped" ("skipped": a dependency did not succeed). */
  submit(urn: string, dependencies: readonly string[], work: () => Promise<boolean>): Promise<"ok" | "failed" | "skipped"> {
    const deps = dependencies.filter((d) => d !== urn).map((d) => this.outcomes.get(d) ?? Promise.resolve(true));
    const outcome = Promise.all(deps).then(async (oks) => (oks.every(Boolean) ? ((await work()) ? "ok" : "failed") : "skipped"));
    this.outcomes.set(
      urn,
      outcome.then((o) => o === "ok"),
    );
    return outcome;
  }
}

/** What an apply does with one registration, given its state entry (if any). */
export interface Plan {
  readonly op: Exclude<Op, "delete" | "read">;
  readonly diff?: Diff;
  /** Set when the op is refused (protect). */
  readonly refused?: string;
}

/** The provider's diff for a resource type: old state against the new registration. */
export function diffFor(old: StateEntry, reg: Pick<Registration, "type" | "inputs">): Diff {
  switch (reg.type) {
    case COMMAND:
      return diffCommand(old.inputs, reg.inputs);
    case CONTAINER:
      return diffContainer(old.inputs, reg.inputs);
    case VOLUME:
      return diffVolume(old.outputs, reg.inputs);
    case NETWORK:
      return diffNetwork(old.outputs, reg.inputs);
    default: {
      // components, providers, images: an input change is an update of the record
      const same = JSON.stringify(old.inputs) === JSON.stringify(reg.inputs);
      return { kind: same ? "same" : "update", changed: same ? [] : ["inputs"], replaceKeys: [] };
    }
  }
}

/**
 * The step for a registration. `protect` refuses a replacement (pulumi/pulumi
 * pkg/resource/deploy/step_generator.go: a protected resource cannot be replaced or deleted;
 * the state's flag or the program's counts).
 */
export function planFor(
  old: StateEntry | undefined,
  reg: Pick<Registration, "type" | "inputs" | "protect" | "urn"> & { readonly forceReplace?: boolean },
): Plan {
  if (!old) return { op: "create" };
  const diff: Diff = reg.forceReplace ? { kind: "replace", changed: ["--replace"], replaceKeys: ["--replace"] } : diffFor(old, reg);
  if (diff.kind === "replace" && (old.protect || reg.protect)) {
    return {
      op: "replace",
      diff,
      refused: `unable to replace resource "${reg.urn}" as it is currently marked for protection (changed: ${diff.replaceKeys.join(", ")}). To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\``,
    };
  }
  return { op: diff.kind, diff };
}

/**
 * What deleting a state entry does: the provider's delete, or, with `retainOnDelete`, only
 * dropping it from the state and leaving it on the host (Pulumi's RetainOnDelete option).
 */
export function deleteAction(e: Pick<StateEntry, "retainOnDelete">): "provider-delete" | "forget" {
  return e.retainOnDelete ? "forget" : "provider-delete";
}

/**
 * The halves of a replacement in order: `deleteBeforeReplace` deletes the old resource first;
 * otherwise the new one is created and the old one deleted in the delete phase, after every
 * create and update (Pulumi's default create-before-delete).
 */
export function replaceOrder(reg: Pick<Registration, "deleteBeforeReplace">): readonly string[] {
  return reg.deleteBeforeReplace ? ["delete old", "create new"] : ["create new", "delete old after all creates"];
}

/**
 * The order deletes run in: a resource only after everything that depends on it (its
 * dependencies, its provider, its parent) is gone, as the engine deletes in reverse dependency
 * order. Returns waves; each wave's resources can go at once.
 */
export function deleteWaves(entries: readonly StateEntry[]): StateEntry[][] {
  const left = new Map(entries.map((e) => [e.urn, e]));
  const providerUrn = (ref: string) => ref.split("::").slice(0, -1).join("::");
  const dependsOn = (e: StateEntry) => [...e.dependencies, e.parent, providerUrn(e.provider)].filter(Boolean);
  const waves: StateEntry[][] = [];
  while (left.size > 0) {
    const wave = [...left.values()].filter((e) => ![...left.values()].some((o) => o !== e && dependsOn(o).includes(e.urn)));
    if (wave.length === 0) throw new Error(`dependency cycle among ${[...left.keys()].join(", ")}`);
    for (const e of wave) left.delete(e.urn);
    waves.push(wave);
  }
  return waves;
}

// ---------------------------------------------------------------------------------------------
// the engine

export interface EngineOptions {
  /** Where the state JSON and the ssh key files go. */
  readonly workdir: string;
  /** The key the Docker provider's ssh uses (the provider takes it from the ssh agent). */
  readonly keyPath: string;
}

/** Applies stacks to the test hosts; keeps each stack's state between applies. */
export class Engine {
  private readonly stacks = new Map<string, StackState>();
  private applies = 0;

  constructor(readonly opts: EngineOptions) {}

  /** The state of a stack (empty before its first apply). */
  stateOf(stack: string): StackState {
    let s = this.stacks.get(stack);
    if (!s) {
      s = { resources: [], outputs: {}, secretOutputNames: [] };
      this.stacks.set(stack, s);
    }
    return s;
  }

  /** Applies the stack (the program runs once); throws ApplyFailed when a step failed or the apply was killed. */
  async up(opts: ApplyOptions): Promise<ApplyResult> {
    const r = await this.tryUp(opts);
    if (!r.ok) throw new ApplyFailed(r);
    return r;
  }

  /** Like `up`, but returns a failed apply's result instead of throwing. */
  async tryUp(opts: ApplyOptions): Promise<ApplyResult> {
    const d = new Deployment(this, opts, this.stateOf(opts.stack));
    const run = await runStack({ stack: opts.stack, config: opts.config, secrets: opts.secrets, preview: false, hook: d });
    await d.finish(run);
    const result = d.result(run);
    this.applies++;
    fs.writeFileSync(path.join(this.opts.workdir, `engine-apply.${this.applies}.${opts.stack}.json`), JSON.stringify(result.steps, null, 2) + "\n");
    return result;
  }

  /** Writes a stack's state as JSON into the workdir (for debugging a failed suite). */
  save(stack: string): void {
    const file = path.join(this.opts.workdir, `engine-state.${stack}.json`);
    fs.writeFileSync(file, JSON.stringify(this.stateOf(stack), null, 2) + "\n", { mode: 0o600 });
  }

  /** @internal the outputs a StackReference reads, by `organization/<project>/<stack>`. */
  referenced(name: string): StackState | undefined {
    return this.stacks.get(name.split("/").pop()!);
  }
}

class Deployment implements RegistrationHook {
  private readonly t0 = Date.now();
  private readonly steps: Step[] = [];
  private readonly scheduler = new Scheduler();
  private readonly procs = new Processes();
  private readonly registered = new Set<string>();
  /** Old resources a create-before-delete replacement left for the delete phase. */
  private readonly replaced: StateEntry[] = [];
  private readonly apis = new Map<string, DockerApi>();
  private killed = false;
  /** A step failed and the apply does not continue on error: nothing new starts. */
  private halted = false;

  private watcher?: NodeJS.Timeout;

  constructor(
    private readonly engine: Engine,
    private readonly opts: ApplyOptions,
    private readonly state: StackState,
  ) {
    const when = opts.killWhen;
    if (when) {
      let asking = false;
      this.watcher = setInterval(() => {
        if (asking || this.killed) return;
        asking = true;
        when()
          .then((yes) => {
            if (yes) this.kill();
          })
          .finally(() => (asking = false));
      }, 250);
    }
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private entry(urn: string): StateEntry | undefined {
    return this.state.resources.find((r) => r.urn === urn);
  }

  private put(e: StateEntry): void {
    this.state.resources = [...this.state.resources.filter((r) => r.urn !== e.urn), e];
    this.engine.save(this.opts.stack);
  }

  private drop(urn: string): void {
    this.state.resources = this.state.resources.filter((r) => r.urn !== urn);
    this.engine.save(this.opts.stack);
  }

  private begin(reg: { urn: string; name: string; type: string }, op: Op, detail?: string): Step {
    const step: Step = { urn: reg.urn, name: reg.name, type: reg.type, op, status: "ok", start: this.now(), end: -1, ...(detail ? { detail } : {}) };
    this.steps.push(step);
    this.opts.onStepStart?.(step);
    if (this.opts.kill?.step === reg.name) setTimeout(() => this.kill(), this.opts.kill.afterMs ?? 0);
    return step;
  }

  private finishStep(step: Step, error?: unknown): boolean {
    step.end = this.now();
    if (this.killed && step.status === "ok" && error !== undefined) step.status = "killed";
    else if (error !== undefined) step.status = "error";
    if (error !== undefined && !this.opts.continueOnError) this.halted = true;
    if (error !== undefined) step.error = error instanceof Error ? error.message : String(error);
    return error === undefined;
  }

  /** Ctrl-C twice: running ssh processes die, nothing new starts; the state keeps what completed. */
  kill(): void {
    this.killed = true;
    this.procs.killAll();
  }

  // ------------------------------------------------------------------ RegistrationHook

  async read(read: Read & { inputs: Record<string, unknown> }): Promise<HookResult | undefined> {
    if (this.killed) return undefined;
    const step = this.begin(read, "read");
    if (read.type !== STACK_REFERENCE) {
      this.finishStep(step, new Error(`the e2e engine reads only StackReferences, not ${read.type}`));
      return undefined;
    }
    const ref = this.engine.referenced(read.id);
    if (!ref) {
      this.finishStep(step, new Error(`unknown stack ${read.id}: apply it first in this suite`));
      return undefined;
    }
    this.finishStep(step);
    return { id: read.id, outputs: { name: read.id, outputs: ref.outputs, secretOutputNames: ref.secretOutputNames } };
  }

  async register(reg: Registration): Promise<HookResult | undefined> {
    this.registered.add(reg.urn);
    const providerUrn = reg.provider ? reg.provider.split("::").slice(0, -1).join("::") : "";
    let result: HookResult | undefined;
    const outcome = await this.scheduler.submit(reg.urn, [...reg.dependsOn, ...(providerUrn ? [providerUrn] : [])], async () => {
      if (this.killed || this.halted) return false;
      result = await this.apply(reg);
      return result !== undefined;
    });
    if (outcome === "skipped") {
      const s = this.begin(reg, "create", "a dependency failed");
      s.status = "skipped";
      s.end = s.start;
    }
    return outcome === "ok" ? result : undefined;
  }

  // ------------------------------------------------------------------ steps

  private async apply(reg: Registration): Promise<HookResult | undefined> {
    const old = this.entry(reg.urn);
    const forced = old && this.opts.replace?.includes(reg.name);
    const plan: Plan = forced ? planFor(old, { ...reg, inputs: reg.inputs, forceReplace: true }) : planFor(old, reg);
    const step = this.begin(reg, plan.op, plan.diff?.changed.length ? `changed: ${plan.diff.changed.join(", ")}` : undefined);
    if (plan.refused) {
      this.finishStep(step, new Error(plan.refused));
      return undefined;
    }
    try {
      const done = await this.execute(reg, old, plan);
      this.finishStep(step);
      return done;
    } catch (e) {
      this.finishStep(step, e);
      return undefined;
    }
  }

  private record(reg: Registration, id: string, outputs: Record<string, unknown>): StateEntry {
    const e: StateEntry = {
      urn: reg.urn,
      type: reg.type,
      name: reg.name,
      custom: reg.custom,
      id,
      parent: reg.parent,
      inputs: reg.inputs,
      outputs,
      dependencies: reg.dependsOn,
      provider: reg.provider,
      protect: reg.protect,
      retainOnDelete: reg.retainOnDelete,
      deleteBeforeReplace: reg.deleteBeforeReplace,
    };
    this.put(e);
    return e;
  }

  private async execute(reg: Registration, old: StateEntry | undefined, plan: Plan): Promise<HookResult> {
    if (plan.op === "same") {
      // nothing runs; the state keeps the old outputs, with the program's current flags
      const e = this.record(reg, old!.id, old!.outputs);
      return { id: e.id, outputs: e.outputs };
    }
    if (plan.op === "replace") {
      if (replaceOrder(reg)[0] === "delete old") {
        await this.deleteResource(old!);
        this.drop(old!.urn);
      } else {
        // create-then-delete: the old one goes in the delete phase, after every create
        this.replaced.push(old!);
      }
      return this.create(reg);
    }
    if (plan.op === "update") return this.update(reg, old!, plan.diff!);
    return this.create(reg);
  }

  private docker(reg: Pick<Registration, "provider" | "name">): DockerApi {
    const ref = reg.provider;
    let api = this.apis.get(ref);
    if (!api) {
      const provider = this.entry(ref.split("::").slice(0, -1).join("::"));
      if (!provider) throw new Error(`${reg.name}: its provider ${ref} is not in the state`);
      api = DockerApi.fromProvider(this.procs, provider.inputs, this.engine.opts.keyPath, this.engine.opts.workdir);
      this.apis.set(ref, api);
    }
    return api;
  }

  private async create(reg: Registration): Promise<HookResult> {
    switch (reg.type) {
      case COMMAND: {
        checkCommandInputs(reg.inputs);
        // commandController.go lines 31-60: the id is made first; without `create` nothing runs
        const id = `${reg.name}-${Math.random().toString(16).slice(2, 10)}`;
        const i = reg.inputs as { create?: string; stdin?: string; connection: Connection };
        const outputs: Record<string, unknown> = { ...reg.inputs, stdout: "", stderr: "" };
        if (i.create !== undefined) {
          const r = await runRemoteCommand(this.procs, this.engine.opts.workdir, i.connection, i.create, i.stdin);
          // a failed create returns the error: nothing is recorded, the next apply creates again
          if (!r.ok) throw new Error(r.error);
          Object.assign(outputs, { stdout: r.stdout, stderr: r.stderr });
        }
        this.record(reg, id, outputs);
        return { id, outputs };
      }
      case CONTAINER:
        return this.createContainer(reg);
      case VOLUME: {
        checkVolumeInputs(reg.inputs);
        const i = reg.inputs as { name: string; driver?: string; driverOpts?: Record<string, string>; labels?: { label: string; value: string }[] };
        const api = this.docker(reg);
        // resourceDockerVolumeCreate (resource_docker_volume.go lines 166-286): VolumeCreate, id =
        // name, then Read. The daemon answers an existing volume of that name and driver as it is,
        // options and labels unchanged (moby volume/service/store.go, VolumeStore.create: "there
        // is an existing volume, if we already have this stored locally, return it. TODO: there
        // could be some inconsistent details such as labels here"); so the state is what the
        // volume really has, and the next diff compares the declaration with it.
        const c = await api.call("POST", "/volumes/create", {
          Name: i.name,
          Driver: i.driver ?? "",
          DriverOpts: i.driverOpts ?? {},
          Labels: Object.fromEntries((i.labels ?? []).map((l) => [l.label, l.value])),
        });
        if (c.status !== 201 && c.status !== 200) throw new Error(`Unable to create volume: ${c.text.trim()}`);
        const name = (c.json as { Name: string }).Name;
        const inspect = await api.call("GET", `/volumes/${name}`);
        const outputs = { ...reg.inputs, ...volumeState(inspect.json as Parameters<typeof volumeState>[0]) };
        this.record(reg, name, outputs);
        return { id: name, outputs };
      }
      case NETWORK: {
        checkNetworkInputs(reg.inputs);
        const i = reg.inputs as {
          name: string;
          driver?: string;
          attachable?: boolean;
          internal?: boolean;
          options?: Record<string, string>;
          labels?: { label: string; value: string }[];
        };
        const api = this.docker(reg);
        // resourceDockerNetworkCreate (resource_docker_network_funcs.go lines 26-82). A taken name
        // fails: the provider's client (docker/docker v28.5.2, client/network_create.go) sets
        // CheckDuplicate for API < 1.44, and daemons of API 1.44 and later always refuse a
        // duplicate name.
        const version = await api.apiVersion();
        const c = await api.call("POST", "/networks/create", {
          Name: i.name,
          ...(i.driver ? { Driver: i.driver } : {}),
          ...(i.options ? { Options: i.options } : {}),
          ...(i.internal ? { Internal: true } : {}),
          ...(i.attachable ? { Attachable: true } : {}),
          ...(i.labels?.length ? { Labels: Object.fromEntries(i.labels.map((l) => [l.label, l.value])) } : {}),
          ...(apiLessThan(version, "1.44") ? { CheckDuplicate: true } : {}),
        });
        if (c.status !== 201) throw new Error(`Unable to create network: ${c.text.trim()}`);
        const id = (c.json as { Id: string }).Id;
        // the read waits for an overlay network's options (funcs.go lines 185-191)
        let inspect = await api.call("GET", `/networks/${id}`);
        for (
          let n = 0;
          n < 30 &&
          (inspect.json as { Scope: string; Options: object | null }).Scope === "swarm" &&
          Object.keys((inspect.json as { Options: object | null }).Options ?? {}).length === 0;
          n++
        ) {
          await sleep(1000);
          inspect = await api.call("GET", `/networks/${id}`);
        }
        const outputs = { ...reg.inputs, ...networkState(inspect.json as Parameters<typeof networkState>[0]) };
        this.record(reg, id, outputs);
        return { id, outputs };
      }
      case REMOTE_IMAGE: {
        // nothing can be pulled here: the image must already be on the host
        const api = this.docker(reg);
        const name = String(reg.inputs.name);
        const r = await api.call("GET", `/images/${encodeURIComponent(name)}/json`);
        if (r.status !== 200) throw new Error(`image ${name} is not on the host, and the test hosts cannot pull (no registry is reachable): load it first`);
        const imageId = (r.json as { Id: string }).Id;
        const outputs = { ...reg.inputs, imageId, repoDigest: "" };
        this.record(reg, `${imageId}${name}`, outputs);
        return { id: `${imageId}${name}`, outputs };
      }
      default: {
        if (reg.custom && reg.type !== DOCKER_PROVIDER) throw new Error(`the e2e engine has no provider for ${reg.type}`);
        // a component, or the docker provider: recorded; a provider's id is what children's
        // provider references carry
        const id = reg.type === DOCKER_PROVIDER ? (this.entry(reg.urn)?.id ?? `${reg.name}-provider`) : "";
        this.record(reg, id, reg.inputs);
        return { id, outputs: reg.inputs };
      }
    }
  }

  private async createContainer(reg: Registration): Promise<HookResult> {
    const req = containerCreateRequest(reg.inputs);
    const api = this.docker(reg);
    // findImage (funcs.go line 51) would pull a missing image; nothing can be pulled here
    const img = await api.call("GET", `/images/${encodeURIComponent(String(reg.inputs.image))}/json`);
    if (img.status !== 200)
      throw new Error(`Unable to create container with image ${String(reg.inputs.image)}: not on the host, and the test hosts cannot pull`);
    // ContainerCreate with the name (funcs.go line 456): Docker answers 409 Conflict for a taken
    // name, and the step fails with nothing recorded
    const c = await api.call("POST", `/containers/create?name=${encodeURIComponent(req.name)}`, req.body);
    if (c.status !== 201) throw new Error(`Unable to create container: ${c.status} ${c.text.trim()}`);
    const id = (c.json as { Id: string }).Id;
    // d.SetId (line 460): from here a failure leaves the container in place and, as the bridge
    // records a create that set an id and then failed, in the state with its id
    const outputs: Record<string, unknown> = { ...reg.inputs, id };
    try {
      if (req.networks.length > 0) {
        const dis = await api.call("POST", "/networks/bridge/disconnect", { Container: id, Force: false });
        if (dis.status !== 200 && !/is not connected to the network bridge/.test(dis.text))
          throw new Error(`Unable to disconnect the default network: ${dis.text.trim()}`);
        for (const n of req.networks) {
          const con = await api.call("POST", `/networks/${encodeURIComponent(n.name)}/connect`, {
            Container: id,
            EndpointConfig: { Aliases: n.aliases, IPAMConfig: {} },
          });
          if (con.status !== 200) throw new Error(`Unable to connect to network '${n.name}': ${con.text.trim()}`);
        }
      }
      // funcs.go line 584: only with start (default true) is the container started and waited for
      const start = req.start ? await api.call("POST", `/containers/${id}/start`) : { status: 204, text: "" };
      if (start.status !== 204 && start.status !== 304) throw new Error(`Unable to start container: ${start.text.trim()}`);
      if (req.start && req.wait) {
        // funcs.go lines 590-624: inspect every second until healthy; no health check is an
        // error; past wait_timeout "container failed to be in healthy state"
        const deadline = Date.now() + req.waitTimeout * 1000;
        for (;;) {
          const ins = await api.call("GET", `/containers/${id}/json`);
          const health = (ins.json as { State?: { Health?: { Status: string } } }).State?.Health;
          if (!health) throw new Error("you have supplied a 'wait' argument, but the container does not have a healthcheck defined");
          if (health.Status === "healthy") break;
          if (Date.now() >= deadline) throw new Error("container failed to be in healthy state");
          await sleep(1000);
        }
      }
    } catch (e) {
      this.record(reg, id, outputs);
      throw e;
    }
    this.record(reg, id, outputs);
    return { id, outputs };
  }

  private async update(reg: Registration, old: StateEntry, diff: Diff): Promise<HookResult> {
    switch (reg.type) {
      case COMMAND: {
        checkCommandInputs(reg.inputs);
        // commandController.go lines 63-83: `update`, else `create` again; a failure returns the
        // error and the old state stays (the engine keeps the old state on a failed update)
        const i = reg.inputs as { create?: string; update?: string; stdin?: string; connection: Connection };
        const cmd = i.update ?? i.create;
        const outputs: Record<string, unknown> = { ...reg.inputs, stdout: old.outputs.stdout ?? "", stderr: old.outputs.stderr ?? "" };
        if (cmd !== undefined) {
          const r = await runRemoteCommand(this.procs, this.engine.opts.workdir, i.connection, cmd, i.stdin);
          if (!r.ok) throw new Error(r.error);
          Object.assign(outputs, { stdout: r.stdout, stderr: r.stderr });
        }
        this.record(reg, old.id, outputs);
        return { id: old.id, outputs };
      }
      case CONTAINER: {
        containerCreateRequest(reg.inputs); // the unknown-input guard
        if (containerUpdateCallsApi(diff)) {
          // resourceDockerContainerUpdate (funcs.go lines 1015-1072): ContainerUpdate with the
          // restart policy and the resources
          const r = await this.docker(reg).call("POST", `/containers/${old.id}/update`, {
            RestartPolicy: { Name: String(reg.inputs.restart ?? "no"), MaximumRetryCount: 0 },
          });
          if (r.status !== 200) throw new Error(`Unable to update a container: ${r.text.trim()}`);
        }
        // must_run false -> true with start: ContainerStart (funcs.go lines 997-1013)
        if (diff.changed.includes("mustRun") && reg.inputs.mustRun !== false && reg.inputs.start !== false && old.inputs.mustRun === false) {
          const r = await this.docker(reg).call("POST", `/containers/${old.id}/start`);
          if (r.status !== 204 && r.status !== 304) throw new Error(`Unable to start container: ${r.text.trim()}`);
        }
        // start, wait, wait_timeout, destroy_grace_seconds, healthcheck: only the state changes
        const outputs = { ...reg.inputs, id: old.id };
        this.record(reg, old.id, outputs);
        return { id: old.id, outputs };
      }
      default: {
        const e = this.record(reg, old.id, { ...old.outputs, ...reg.inputs });
        return { id: e.id, outputs: e.outputs };
      }
    }
  }

  /** A provider's delete of one resource (retainOnDelete is handled by the caller). */
  private async deleteResource(e: StateEntry): Promise<void> {
    if (deleteAction(e) === "forget") return; // dropped from the state, left on the host
    switch (e.type) {
      case COMMAND: {
        // commandController.go lines 86-92: the old state's `delete`, if any
        const i = e.inputs as { delete?: string; stdin?: string; connection: Connection };
        if (i.delete === undefined) return;
        const r = await runRemoteCommand(this.procs, this.engine.opts.workdir, i.connection, i.delete, i.stdin);
        if (!r.ok) throw new Error(r.error);
        return;
      }
      case CONTAINER: {
        const api = this.docker(e);
        // resourceDockerContainerDelete (funcs.go lines 1079-1131): stop with
        // destroy_grace_seconds as the timeout, 0 when unset: Docker sends SIGTERM and kills at
        // once, so a service gets no time to shut down cleanly (a database may need recovery on
        // its next start); then remove with force (and anonymous volumes: remove_volumes defaults
        // to true), then wait for not-running; "No such container" is ignored throughout
        const grace = Number(e.inputs.destroyGraceSeconds ?? 0);
        const stop = await api.call("POST", `/containers/${e.id}/stop?t=${grace > 0 ? grace : 0}`);
        if (![204, 304, 404].includes(stop.status)) throw new Error(`Error stopping container ${e.id}: ${stop.text.trim()}`);
        const rm = await api.call("DELETE", `/containers/${e.id}?v=true&force=true`);
        if (![204, 404].includes(rm.status) && !/is already in progress/.test(rm.text)) throw new Error(`Error deleting container ${e.id}: ${rm.text.trim()}`);
        const wait = await api.call("POST", `/containers/${e.id}/wait?condition=not-running`);
        if (![200, 404].includes(wait.status)) throw new Error(`Error waiting for container removal '${e.id}': ${wait.text.trim()}`);
        return;
      }
      case VOLUME:
      case NETWORK: {
        // resourceDockerVolumeDelete / resourceDockerNetworkDelete: remove, retried while in use
        const api = this.docker(e);
        const what = e.type === VOLUME ? "volumes" : "networks";
        for (let n = 0; ; n++) {
          const r = await api.call("DELETE", `/${what}/${e.id}`);
          if ([204, 200, 404].includes(r.status)) return;
          if (n >= 30) throw new Error(`Unable to remove ${what} ${e.id}: ${r.text.trim()}`);
          await sleep(1000);
        }
      }
      default:
        return; // images kept locally, components, providers: nothing on the host
    }
  }

  /** After the program: resources gone from it are deleted, in reverse dependency order. */
  async finish(run: StackRun): Promise<void> {
    if (this.watcher) clearInterval(this.watcher);
    const failed = this.killed || this.steps.some((s) => s.status !== "ok") || run.unanswered.size > 0;
    const gone = this.state.resources.filter((r) => !this.registered.has(r.urn) && !run.reads.some((x) => x.urn === r.urn));
    // a program that did not complete (a failed step, a kill) leaves unregistered resources alone:
    // they may only not have been reached
    const toDelete = failed ? [] : gone;
    for (const e of failed ? gone : []) {
      const s = this.begin(e, "delete", "the apply failed before the program completed");
      s.status = "skipped";
      s.end = s.start;
    }
    for (const wave of deleteWaves([...toDelete, ...this.replaced])) {
      await Promise.all(
        wave.map(async (e) => {
          if (this.killed) return;
          const isReplaced = this.replaced.includes(e);
          const s = this.begin(e, "delete", isReplaced ? "replaced" : undefined);
          if (e.protect && !isReplaced) {
            this.finishStep(s, new Error(`unable to delete resource "${e.urn}" as it is currently marked for protection`));
            return;
          }
          try {
            await this.deleteResource(e);
            if (!isReplaced) this.drop(e.urn);
            this.finishStep(s);
          } catch (err) {
            this.finishStep(s, err);
          }
        }),
      );
    }
    if (!failed && !this.killed) {
      this.state.outputs = run.exports;
      const secret: string[] = [];
      for (const [k, v] of Object.entries(run.rawExports)) {
        // only exports that resolved: their isSecret has settled too
        if (k in run.exports && pulumi.Output.isInstance(v) && (await (v as unknown as { isSecret: Promise<boolean> }).isSecret)) secret.push(k);
      }
      this.state.secretOutputNames = secret;
    }
    this.engine.save(this.opts.stack);
  }

  result(run: StackRun): ApplyResult {
    const steps = this.steps;
    const state = this.state;
    return {
      stack: this.opts.stack,
      steps,
      ok: !this.killed && steps.every((s) => s.status === "ok"),
      killed: this.killed,
      run,
      step(name) {
        const s = steps.find((x) => x.name === name);
        if (!s) throw new Error(`no step for ${name}; have: ${steps.map((x) => x.name).join(", ")}`);
        return s;
      },
      stdout(name) {
        return String(state.resources.find((r) => r.name === name)?.outputs.stdout ?? "");
      },
      stderr(name) {
        return String(state.resources.find((r) => r.name === name)?.outputs.stderr ?? "");
      },
      state(name) {
        return state.resources.find((r) => r.name === name);
      },
      names(op) {
        return steps
          .filter((s) => s.op === op && s.status === "ok")
          .sort((a, b) => a.start - b.start)
          .map((s) => s.name);
      },
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
