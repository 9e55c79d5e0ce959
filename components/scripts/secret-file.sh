#!/usr/bin/env bash
# Write a secret that arrives on stdin to a file, or remove that file.
#
#   secret-file.sh apply <path>   < content
#   secret-file.sh remove <path>
#
# apply: the content (stdin, one or more lines; it never appears in argv) goes to <path> with
# mode 0600, owner root, directory created 0755 if missing. Written only when the content or mode
# differs (atomically), so a second run changes nothing. The content is never printed.
# remove: deletes <path> (nothing to do when it is absent).
# Paths are limited to $DGX_ETC_DIR/: the files the project's own units and scripts read
# (the alert webhook URL that storage-alert.sh and borg-run.sh share).
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}" file="${2:-}"
[[ ("$mode" == apply || "$mode" == remove) && $# -eq 2 ]] || die "usage: secret-file.sh apply <path> < content | remove <path>"
[[ "$file" == "$DGX_ETC_DIR"/* && "${file#"$DGX_ETC_DIR"/}" =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$ && "$file" != *..* ]] ||
	die "'$file' is not a file under $DGX_ETC_DIR/"
dest="${ROOT}${file}"

if [[ "$mode" == remove ]]; then
	if [[ ! -e "$dest" ]]; then
		log "$file: absent, nothing to remove"
	elif [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would delete $file"
	else
		rm -f -- "$dest"
		log "$file deleted"
	fi
	exit 0
fi

# the secret is read from stdin into memory; printf is a builtin, so it reaches no argv
content="$(
	cat
	printf x
)"
content="${content%x}"
[[ -n "${content//[[:space:]]/}" ]] || die "stdin is empty: nothing to write to $file"
[[ "$DRY_RUN" == 1 ]] || { mkdir -p "$(dirname "$dest")" && chmod 0755 "$(dirname "$dest")"; }
umask 077
verdict="$(printf '%s' "$content" | install_content "$dest" 0600)"
log "$file ${verdict} (mode 0600, content not shown)"
