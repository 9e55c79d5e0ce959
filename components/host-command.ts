/**
 * The one way this project runs something on a host: a `remote.Command` whose `create` (and
 * `delete`) run a script from components/scripts, with the command hygiene every host command
 * needs applied in one place:
 * - the host key is pinned (`connection.hostKey`);
 * - secrets travel only on stdin, as Pulumi secrets, with logging off and stdout/stderr kept
 *   as secret outputs;
 * - no `environment` input (sshd drops variables it does not AcceptEnv) and no previous output
 *   injected into the environment;
 * - `triggers` are content hashes, so a change of what is installed re-runs the command and
 *   nothing else does;
 * - a command with a `delete` is replaced delete-first. @pulumi/command replaces the resource
 *   when a trigger changes (`replaceOnChanges: ["triggers[*]"]`), and Pulumi's default order is
 *   create the new one, then delete the old: the old `delete` (install-units remove, daemon.json
 *   restore, smartd.conf restore, secret-file remove) would undo on the host what the new
 *   `create` had just applied. Delete-first runs the old undo, then the new apply.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { scriptCommand, sha256, type ScriptName } from "./render/command";
import { renderUnitSet, type UnitSet } from "./render/systemd";

/** How to reach one host; built once per stack by `DgxHost`. */
export interface HostAccess {
  /** SSH connection with the pinned host key and the private key as a secret. */
  readonly connection: command.types.input.remote.ConnectionArgs;
  /** Prefix host commands with `sudo -n`. */
  readonly sudo: boolean;
}

export interface HostCommandArgs {
  readonly access: HostAccess;
  /** Script run on create and on update (when `triggers` or arguments change). */
  readonly script: ScriptName;
  readonly createArgs: readonly pulumi.Input<string>[];
  /** Arguments of the same script on delete; omit for commands that have nothing to undo. */
  readonly deleteArgs?: readonly pulumi.Input<string>[];
  /** Content hashes of what the command installs. */
  readonly triggers: readonly pulumi.Input<string>[];
  /** Secret input, delivered on stdin only. */
  readonly secretStdin?: pulumi.Input<string>;
  /** The script prints a secret on stdout (e.g. a join token): keep it secret, log only stderr. */
  readonly secretStdout?: boolean;
}

function commandString(args: HostCommandArgs, words: readonly pulumi.Input<string>[]): pulumi.Output<string> {
  return pulumi.all([...words]).apply((w) => scriptCommand(args.script, w, { sudo: args.access.sudo }));
}

export function hostCommand(name: string, args: HostCommandArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
  const { access } = args;
  const secretIn = args.secretStdin !== undefined;
  const secretOut = secretIn || args.secretStdout === true;
  return new command.remote.Command(
    name,
    {
      connection: access.connection,
      create: commandString(args, args.createArgs),
      ...(args.deleteArgs ? { delete: commandString(args, args.deleteArgs) } : {}),
      triggers: [...args.triggers],
      addPreviousOutputInEnv: false,
      ...(secretIn ? { stdin: pulumi.secret(args.secretStdin) } : {}),
      // a secret on stdin could be echoed by a tool on either stream; a secret stdout is only there
      ...(secretIn ? { logging: "none" as const } : args.secretStdout ? { logging: "stderr" as const } : {}),
    },
    {
      ...opts,
      ...(args.deleteArgs ? { deleteBeforeReplace: true } : {}),
      ...(secretOut ? { additionalSecretOutputs: ["stdout", "stderr"] } : {}),
    },
  );
}

/**
 * `install-units.sh` for one named set of units: apply on create, re-run when the set's content
 * changes (its manifest's hash), remove on delete (delete-first on replacement, see above).
 */
export function unitSetCommand(name: string, access: HostAccess, set: string, unitSet: UnitSet, opts: pulumi.CustomResourceOptions): command.remote.Command {
  const manifest = renderUnitSet(unitSet);
  return hostCommand(
    name,
    { access, script: "install-units", createArgs: ["apply", set, manifest], deleteArgs: ["remove", set], triggers: [sha256(manifest)] },
    opts,
  );
}
