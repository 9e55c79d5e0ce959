#!/usr/bin/env bash
# One-time set-up of a local borg repository, and of the SSH key for the off-site copy.
#
#   borg-repo.sh apply <repo-name> <repo-path>   < passphrase
#   borg-repo.sh ssh-key <private-key-path>       (prints the public key)
#   borg-repo.sh receive <user> <repo-dir> '<authorized_keys line>'
#
# apply:
#   - writes the passphrase to $DGX_ETC_DIR/borg/<repo-name>.pass (0600, directory 0700)
#     when the file is missing or differs; the services read it through
#     BORG_PASSCOMMAND='cat <that file>', so it is never in argv, a unit file or the journal;
#   - `borg init --encryption=repokey` when <repo-path> is missing or an empty directory; a
#     borg repository there already is a no-op, as long as the passphrase opens it (checked
#     before the pass file is replaced); anything else there is an error, nothing is touched;
#   - exports the repository key (`borg key export`) to $DGX_ETC_DIR/borg/<repo-name>.key
#     (0600) when missing or different. With repokey the key lives inside the repository: if
#     the disk holding it is damaged, the archives can only be decrypted with a copy of this
#     file and the passphrase, so the operator keeps both somewhere else as well.
# ssh-key: creates an ed25519 key pair (no passphrase: a timer uses it) when missing, prints
#   the public key, for the receiving host's authorized_keys (restricted to `borg serve
#   --append-only --restrict-to-path <repo>`). The private key never leaves this host.
# receive (on the host that keeps the other's off-site repository): a system user <user> (shell
#   /bin/sh: sshd runs the forced command through it) whose ~/.ssh/authorized_keys holds exactly
#   the given line, which must force `borg serve --append-only --restrict-to-path <repo-dir>`
#   with `restrict`; <repo-dir> is created, owned by <user>, mode 0700. The sending host creates
#   the repository inside it on its first copy. Under a test ROOT no user is created.
#
# borg's own state (security dir, cache) lives in $DGX_VAR_DIR/borg (BORG_BASE_DIR), the
# same place the backup services use, so they recognise the repository this script created.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}"
case "$mode" in
apply) [[ $# -eq 3 ]] || die "usage: borg-repo.sh apply <repo-name> <repo-path> < passphrase" ;;
ssh-key) [[ $# -eq 2 ]] || die "usage: borg-repo.sh ssh-key <private-key-path>" ;;
receive) [[ $# -eq 4 ]] || die "usage: borg-repo.sh receive <user> <repo-dir> '<authorized_keys line>'" ;;
*) die "usage: borg-repo.sh apply <repo-name> <repo-path> < passphrase | ssh-key <private-key-path> | receive <user> <repo-dir> '<line>'" ;;
esac

if [[ "$mode" == receive ]]; then
	user="$2" rdir="$3" line="$4"
	[[ "$user" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "the user name must be lower-case letters, digits and '-', got '$user'"
	[[ "$rdir" =~ ^/[A-Za-z0-9_./-]+$ && "$rdir" != *..* ]] || die "the repository directory must be an absolute plain path, got '$rdir'"
	want="command=\"borg serve --append-only --restrict-to-path ${rdir}\",restrict "
	[[ "$line" == "$want"* && "$line" != *$'\n'* ]] ||
		die "the authorized_keys line must start with: ${want}(refusing a key that is not confined to an append-only borg serve)"
	[[ "${line#"$want"}" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp[0-9]+)\ [A-Za-z0-9+/=]+(\ [^\"]*)?$ ]] ||
		die "the authorized_keys line does not end with an SSH public key"
	require_cmd borg
	if [[ -z "$ROOT" ]]; then
		if ! getent passwd "$user" >/dev/null; then
			[[ "$DRY_RUN" == 1 ]] && {
				log "dry run: would create the system user $user"
				exit 0
			}
			useradd --system --create-home --home-dir "/var/lib/$user" --shell /bin/sh "$user"
			log "created the system user $user"
		fi
		home="$(getent passwd "$user" | cut -d: -f6)"
	else
		home="/var/lib/$user"
		log "(test root) not creating the user $user"
	fi
	[[ "$DRY_RUN" != 1 ]] || {
		log "dry run: would install the authorized key of $user and create $rdir"
		exit 0
	}
	own() { if [[ -z "$ROOT" ]]; then chown "$user:" "$@"; fi; }
	for d in "${ROOT}${home}/.ssh" "${ROOT}${rdir}"; do
		if [[ ! -d "$d" ]]; then
			mkdir -p "$d"
			chmod 0700 "$d"
			own "$d"
			log "created ${d#"$ROOT"}"
		fi
	done
	verdict="$(printf '%s\n' "$line" | install_content "${ROOT}${home}/.ssh/authorized_keys" 0600)"
	own "${ROOT}${home}/.ssh/authorized_keys"
	[[ "$verdict" == unchanged ]] || log "installed the append-only key of $user for $rdir"
	log "$user receives off-site copies in $rdir"
	exit 0
fi

if [[ "$mode" == ssh-key ]]; then
	key="$2"
	[[ "$key" == /* && "$key" != *..* ]] || die "the key path must be absolute without '..', got '$key'"
	require_cmd ssh-keygen
	if [[ ! -f "${ROOT}${key}" ]]; then
		if [[ "$DRY_RUN" == 1 ]]; then
			log "dry run: would create the SSH key $key"
			exit 0
		fi
		mkdir -p "$(dirname "${ROOT}${key}")"
		chmod 0700 "$(dirname "${ROOT}${key}")"
		ssh-keygen -q -t ed25519 -N '' -C "dgx-backup@$(hostname -s)" -f "${ROOT}${key}" >/dev/null
		log "created the SSH key $key" >&2
	fi
	[[ -f "${ROOT}${key}.pub" ]] || ssh-keygen -y -f "${ROOT}${key}" >"${ROOT}${key}.pub"
	cat "${ROOT}${key}.pub"
	exit 0
fi

name="$2" repo="$3"
[[ "$name" =~ ^[a-z][a-z0-9-]*$ ]] || die "the repository name must be lower-case letters, digits and '-', got '$name'"
[[ "$repo" == /* && "$repo" != *..* ]] || die "the repository path must be absolute without '..', got '$repo'"
require_cmd borg
export BORG_BASE_DIR="${BORG_BASE_DIR:-${STATE_DIR}/borg}"
unset BORG_PASSPHRASE BORG_PASSPHRASE_FD BORG_NEW_PASSPHRASE
dir="${ROOT}${DGX_ETC_DIR}/borg"
pass_file="${dir}/${name}.pass" key_file="${dir}/${name}.key"
repo_dir="${ROOT}${repo}"

IFS= read -r passphrase || true
[[ -n "$passphrase" ]] || die "stdin holds no passphrase (one line expected)"

# What is at the repository path: nothing, an empty directory, a borg repository, or else.
if [[ ! -e "$repo_dir" ]] || { [[ -d "$repo_dir" ]] && [[ -z "$(ls -A "$repo_dir")" ]]; }; then
	state=empty
elif [[ -f "$repo_dir/config" && -d "$repo_dir/data" ]] && grep -q '^\[repository\]' "$repo_dir/config"; then
	state=repo
else
	found="$(find "$repo_dir" -maxdepth 1 -mindepth 1 -printf '%f ' 2>/dev/null | head -c 200 || true)"
	found="${found% }"
	die "$repo holds something that is not a borg repository (${found:-not a directory}); move it away or choose another path, nothing was changed"
fi

if [[ "$DRY_RUN" == 1 ]]; then
	if [[ "$state" == repo ]]; then
		log "dry run: $repo is a borg repository; would check the passphrase and the exported key"
	else
		log "dry run: would initialise a repokey repository at $repo"
	fi
	exit 0
fi

mkdir -p "$dir"
[[ "$(stat -c %a "$dir")" == 700 ]] || chmod 0700 "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# printf is a builtin: the passphrase reaches the file without appearing in any argv
(
	umask 077
	printf '%s\n' "$passphrase" >"$work/pass"
)
export BORG_PASSCOMMAND="cat $work/pass"

if [[ "$state" == repo ]]; then
	# a read that changes nothing on disk: no lock files in the repository (--bypass-lock), and
	# a throw-away cache directory (borg list touches its cache even when it needs none)
	if ! out="$(BORG_CACHE_DIR="$work/cache" borg list --bypass-lock --short --last 1 "$repo_dir" 2>&1 >/dev/null)"; then
		if [[ "$out" == *"passphrase supplied"*"is incorrect"* ]]; then
			die "the passphrase on stdin does not open the existing repository at $repo; the pass file was left as it was"
		fi
		die "borg cannot open the repository at $repo: $out"
	fi
else
	mkdir -p "$repo_dir"
	chmod 0700 "$repo_dir"
	borg init --encryption=repokey "$repo_dir" >/dev/null 2>"$work/init.err" ||
		die "borg init at $repo failed: $(cat "$work/init.err")"
	log "initialised the repokey repository at $repo"
fi

[[ "$(install_content "$pass_file" 0600 <"$work/pass")" == unchanged ]] || log "wrote ${DGX_ETC_DIR}/borg/${name}.pass"
borg key export "$repo_dir" "$work/key" 2>"$work/export.err" || die "borg key export of $repo failed: $(cat "$work/export.err")"
[[ "$(install_content "$key_file" 0600 <"$work/key")" == unchanged ]] || log "exported the repository key to ${DGX_ETC_DIR}/borg/${name}.key (keep a copy off this host)"
log "repository $name at $repo is ready"
