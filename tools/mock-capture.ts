/**
 * Runs Pulumi code under the mock runtime and records every resource registration in full:
 * what `MockResourceArgs` leaves out (parent, dependsOn, protect, retainOnDelete,
 * deleteBeforeReplace, additionalSecretOutputs, which inputs are secret) included.
 * Used by the test harness and by `npm run synth`, so both see the same thing.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly parent: string;
  /** Inputs with secrets unwrapped. */
  readonly inputs: Record<string, unknown>;
  /** Dotted paths of inputs that were sent as secrets. */
  readonly secretPaths: readonly string[];
  /** Inputs with every secret replaced by "[secret]": what a plaintext view would show. */
  readonly plainInputs: Record<string, unknown>;
  readonly dependsOn: readonly string[];
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  readonly deleteBeforeReplace: boolean;
  readonly additionalSecretOutputs: readonly string[];
  /** Provider reference (`urn::id`), empty for the default provider. */
  readonly provider: string;
}

export interface CaptureOptions {
  readonly stack: string;
  /** Config values without the project prefix; objects are JSON-encoded as Pulumi does. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Secret config values (plaintext here, marked secret for the program). */
  readonly secrets: Readonly<Record<string, string>>;
  readonly preview: boolean;
  /** Outputs returned by StackReferences, by referenced stack name. */
  readonly stackOutputs?: Readonly<Record<string, Record<string, unknown>>>;
  /** Which of those outputs the referenced stack holds as secrets. @default [] */
  readonly secretOutputNames?: readonly string[];
  /** What a remote command prints, by resource name (an `up`, not a preview, reads it). @default "" */
  readonly commandStdout?: (name: string) => string | undefined;
  /**
   * Applies each registration for real (test/e2e/engine.ts): when set, it answers every
   * registration and read instead of the mocks above, and what it resolves with is what the
   * program sees (a command's stdout, a container's id), as the engine's RegisterResource
   * response is in `pulumi up`. @default none: the mocks above answer at once
   */
  readonly hook?: RegistrationHook;
}

/** What a hook answers for one registration or read. */
export interface HookResult {
  readonly id: string;
  /** The resource's outputs (inputs included), as the provider returned them. */
  readonly outputs: Record<string, unknown>;
}

/**
 * The engine side of the capture. `register` is called with the full registration the moment
 * the SDK sends it: the SDK has already waited for the URNs of the resource's dependencies and
 * of its parent (sdk/nodejs/runtime/resource.ts prepareResource, "Wait for the parent to
 * complete"). It resolves with the outputs, or with `undefined` when the step failed, was
 * skipped or killed: then the registration is never answered, as no response comes back from
 * an engine that stopped, and nothing that waits for it (its dependents, an export) goes on.
 */
export interface RegistrationHook {
  register(registration: Registration): Promise<HookResult | undefined>;
  read(read: Read & { readonly inputs: Record<string, unknown> }): Promise<HookResult | undefined>;
}

/** A resource read rather than registered (a StackReference). */
export interface Read {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  /** What was read: for a StackReference, the stack's name. */
  readonly id: string;
  readonly parent: string;
}

export interface Capture {
  readonly registrations: Registration[];
  /** Registrations (or reads) the hook left unanswered (failed, skipped or killed), by URN. */
  readonly unanswered: Set<string>;
  readonly reads: Read[];
  /** Resolves when no registration has been in flight for a few turns of the event loop. */
  settled(): Promise<void>;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VAL = "1b47061264138c4ac30d75fd1eb44270";

function unwrap(v: unknown, at: string, secrets: string[], mask: boolean): unknown {
  if (Array.isArray(v)) return v.map((x, i) => unwrap(x, `${at}[${i}]`, secrets, mask));
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === SECRET_VAL) {
      if (!mask) secrets.push(at);
      return mask ? "[secret]" : unwrap(o.value, at, [], false);
    }
    if (SECRET_SIG in o) return unwrap(o.value, at, secrets, mask); // resource references, assets
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x, at ? `${at}.${k}` : k, secrets, mask)]));
  }
  return v;
}

/** Sets up the mock runtime with the stack's config and starts recording. */
export async function startCapture(opts: CaptureOptions): Promise<Capture> {
  const registrations: Registration[] = [];
  const reads: Read[] = [];
  const unanswered = new Set<string>();
  let pending = 0;
  // the hook's answer for the registration being passed to the mock monitor right now (it calls
  // newResource synchronously, before its first await: node_modules/@pulumi/pulumi/runtime/mocks.js)
  let answer: HookResult | undefined;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        if (opts.hook) {
          const a = answer;
          answer = undefined;
          if (!a) throw new Error(`no engine answer for ${args.type} ${args.name}`);
          return { id: a.id, state: a.outputs };
        }
        if (args.type === "pulumi:pulumi:StackReference") {
          const ref = String(args.inputs.name);
          const outputs = opts.stackOutputs?.[ref];
          if (!outputs) throw new Error(`no mocked outputs for stack reference ${ref}`);
          const secret = (opts.secretOutputNames ?? []).filter((k) => k in outputs);
          return { id: ref, state: { name: ref, outputs, secretOutputNames: secret } };
        }
        if (args.type === "command:remote:Command" && !opts.preview) {
          return { id: `${args.name}-id`, state: { ...args.inputs, stdout: opts.commandStdout?.(args.name) ?? "", stderr: "" } };
        }
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call(args) {
        return args.inputs;
      },
    },
    "dgx-storage",
    opts.stack,
    opts.preview,
  );
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.config)) all[`dgx-storage:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(opts.secrets)) all[`dgx-storage:${k}`] = v;
  pulumi.runtime.setAllConfig(
    all,
    Object.keys(opts.secrets).map((k) => `dgx-storage:${k}`),
  );

  type Callback = (err: unknown, res: { getUrn(): string } | undefined) => void;
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: Callback): void;
    readResource(req: ReadRequest, cb: Callback): void;
    newUrn(parent: string, type: string, name: string): string;
  };
  /** Asks the hook first; passes its answer to the mock monitor, or leaves the request unanswered. */
  const viaHook = (urn: string, ask: () => Promise<HookResult | undefined>, forward: () => void): void => {
    ask().then(
      (a) => {
        if (a === undefined) {
          unanswered.add(urn);
          pending--;
          return;
        }
        answer = a;
        forward();
      },
      (e: unknown) => {
        // a bug in the engine, not a failed step: fail the registration loudly
        unanswered.add(urn);
        pending--;
        console.error(`engine hook failed for ${urn}:`, e);
      },
    );
  };
  // reads (StackReference) are recorded with the id they read and no inputs of note
  const originalRead = monitor.readResource.bind(monitor);
  monitor.readResource = (req, callback) => {
    pending++;
    const forward = () =>
      originalRead(req, (err, res) => {
        if (!err && res) {
          reads.push({ urn: res.getUrn(), type: req.getType(), name: req.getName(), id: req.getId(), parent: req.getParent() });
        }
        pending--;
        callback(err, res);
      });
    if (!opts.hook) return forward();
    const urn = monitor.newUrn(req.getParent(), req.getType(), req.getName());
    const hook = opts.hook;
    const read = {
      urn,
      type: req.getType(),
      name: req.getName(),
      id: req.getId(),
      parent: req.getParent(),
      inputs: unwrap(req.getProperties().toJavaScript(), "", [], false) as Record<string, unknown>,
    };
    viaHook(urn, () => hook.read(read), forward);
  };
  const original = monitor.registerResource.bind(monitor);
  const registrationOf = (req: RegisterRequest, urn: string): Registration => {
    const obj = req.getObject().toJavaScript();
    const secretPaths: string[] = [];
    return {
      urn,
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent(),
      inputs: unwrap(obj, "", secretPaths, false) as Record<string, unknown>,
      secretPaths,
      plainInputs: unwrap(obj, "", [], true) as Record<string, unknown>,
      dependsOn: req.getDependenciesList(),
      protect: req.getProtect() === true,
      retainOnDelete: req.getRetainondelete() === true,
      deleteBeforeReplace: req.getDeletebeforereplace() === true,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      provider: req.getProvider(),
    };
  };
  monitor.registerResource = (req, callback) => {
    pending++;
    const forward = () =>
      original(req, (err, res) => {
        if (!err && res) registrations.push(registrationOf(req, res.getUrn()));
        pending--;
        callback(err, res);
      });
    if (!opts.hook) return forward();
    const hook = opts.hook;
    const reg = registrationOf(req, monitor.newUrn(req.getParent(), req.getType(), req.getName()));
    viaHook(reg.urn, () => hook.register(reg), forward);
  };
  return {
    registrations,
    unanswered,
    reads,
    async settled() {
      let quiet = 0;
      // with a hook, registrations take as long as their steps on the hosts: wait in real time
      for (let i = 0; (opts.hook || i < 5000) && quiet < 20; i++) {
        await new Promise((r) => setImmediate(r));
        quiet = pending === 0 ? quiet + 1 : 0;
        if (opts.hook && pending !== 0) await new Promise((r) => setTimeout(r, 10));
      }
      if (pending !== 0) throw new Error(`${pending} resource registrations never finished`);
    },
  };
}

/** The parts of the gRPC ReadResourceRequest that are read here. */
interface ReadRequest {
  getProperties(): { toJavaScript(): unknown };
  getType(): string;
  getName(): string;
  getId(): string;
  getParent(): string;
}

/** The parts of the gRPC RegisterResourceRequest that are read here. */
interface RegisterRequest {
  getObject(): { toJavaScript(): unknown };
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean | undefined;
  getAdditionalsecretoutputsList(): string[];
  getProvider(): string;
}
