#!/usr/bin/env bash
# Backup jobs made by hand that run borg against a repository this stack manages: reported, and
# with `disable` switched off (a copy of everything changed is kept), so that the host never runs
# two schedules on one repository without the operator knowing.
#
#   borg-schedules.sh report|disable <repository path>
#
# Looked at: the crontabs (/etc/crontab, /etc/cron.d/*, /var/spool/cron/crontabs/*), the scripts
# of /etc/cron.{hourly,daily,weekly,monthly}, and the timers in /etc/systemd/system whose service
# runs borg. A job matches when its command line, or the script file it runs, names `borg` and the
# repository path. This project's own units (dgx-backup-*) never match. A script that sets
# BORG_PASSPHRASE to a literal is named too: the passphrase is in clear on the host.
#
# disable: a crontab line is commented out (`# disabled by dgx-storage <date>: <line>`), a
# cron.<period> script loses its execute bit (run-parts skips it), a timer is stopped and
# disabled; each file is copied to $DGX_VAR_DIR/backups first. Nothing is deleted.
# stdout: one line per job found, `<where>: <what>`; nothing when there is none.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 2 && ("$1" == report || "$1" == disable) ]] || die "usage: borg-schedules.sh report|disable <repository path>"
mode="$1" repo="$2"
[[ "$repo" == /* ]] || die "the repository must be an absolute path, got '$repo'"
stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
found=0

# runs_borg TEXT : TEXT, or the script file it starts, runs borg on the repository.
runs_borg() {
	local text="$1" word words
	[[ "$text" == *borg* && "$text" == *"$repo"* ]] && return 0
	read -r -a words <<<"$text"
	for word in "${words[@]}"; do
		[[ "$word" == /* && -f "${ROOT}${word}" && -r "${ROOT}${word}" ]] || continue
		[[ "$(stat -c %s "${ROOT}${word}")" -le 1048576 ]] || continue
		grep -q borg "${ROOT}${word}" && grep -qF -- "$repo" "${ROOT}${word}" && return 0
	done
	return 1
}

# clear_passphrase TEXT : the file TEXT starts (or TEXT itself) sets BORG_PASSPHRASE to a literal.
clear_passphrase() {
	local word words
	read -r -a words <<<"$1"
	for word in "${words[@]}"; do
		[[ "$word" == /* && -f "${ROOT}${word}" ]] || continue
		grep -Eq "BORG_PASSPHRASE=['\"]?[^'\"\$[:space:]]" "${ROOT}${word}" && {
			echo "$word"
			return 0
		}
	done
	[[ "$1" =~ BORG_PASSPHRASE=[\'\"]?[^\'\"\$[:space:]] ]] && echo "its command line"
	return 0
}

report() {
	local where="$1" what="$2" clear
	found=$((found + 1))
	clear="$(clear_passphrase "$what")"
	printf '%s: %s%s\n' "$where" "$what" "${clear:+ (the borg passphrase is in clear in $clear)}"
}

# crontab_file FILE SYSTEM(0|1) : the matching lines of a crontab (SYSTEM: a user field comes first).
crontab_file() {
	local file="$1" system="$2" n=0 line cmd changed=0 out="" words skip
	[[ -f "${ROOT}${file}" ]] || return 0
	while IFS= read -r line || [[ -n "$line" ]]; do
		n=$((n + 1))
		cmd=""
		if [[ "$line" =~ ^[[:space:]]*(#|$) || "$line" =~ ^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*= ]]; then
			:
		elif [[ "$line" =~ ^[[:space:]]*@[a-z]+[[:space:]]+(.*)$ ]]; then
			cmd="${BASH_REMATCH[1]}"
		else
			# the time fields (and the user of a system crontab) come first; read -a does not glob "*"
			read -r -a words <<<"$line"
			skip=$((system ? 6 : 5))
			cmd="${words[*]:skip}"
		fi
		if [[ -n "$cmd" ]] && runs_borg "$cmd"; then
			report "$file line $n" "$line"
			if [[ "$mode" == disable ]]; then
				line="# disabled by dgx-storage $stamp (it ran borg on $repo beside the stack's units): $line"
				changed=1
			fi
		fi
		out+="$line"$'\n'
	done <"${ROOT}${file}"
	if ((changed)) && [[ "$DRY_RUN" != 1 ]]; then
		backup_file "${ROOT}${file}" >/dev/null
		printf '%s' "$out" | install_content "${ROOT}${file}" "$(stat -c %a "${ROOT}${file}")" >/dev/null
		log "disabled the borg job(s) in $file (a copy is in ${DGX_VAR_DIR}/backups)" >&2
	fi
}

crontab_file /etc/crontab 1
for f in "${ROOT}"/etc/cron.d/* "${ROOT}"/var/spool/cron/crontabs/*; do
	[[ -f "$f" ]] && crontab_file "${f#"$ROOT"}" "$([[ $f == */cron.d/* ]] && echo 1 || echo 0)"
done

for f in "${ROOT}"/etc/cron.{hourly,daily,weekly,monthly}/*; do
	[[ -f "$f" && -x "$f" ]] || continue
	runs_borg "${f#"$ROOT"}" || continue
	report "${f#"$ROOT"}" "run by run-parts ($(basename "$(dirname "$f")"))"
	if [[ "$mode" == disable && "$DRY_RUN" != 1 ]]; then
		chmod a-x "$f"
		log "disabled ${f#"$ROOT"} (execute bit removed; the file stays)" >&2
	fi
done

for t in "${ROOT}"/etc/systemd/system/*.timer; do
	[[ -f "$t" ]] || continue
	unit="$(basename "$t" .timer)"
	[[ "$unit" == dgx-backup-* ]] && continue
	svc="$(sed -n 's/^Unit=//p' "$t" | head -1)"
	svc="${ROOT}/etc/systemd/system/${svc:-$unit.service}"
	[[ -f "$svc" ]] || continue
	exec_line="$(sed -n 's/^ExecStart=[-@!+:]*//p' "$svc" | head -1)"
	runs_borg "$exec_line" || continue
	report "${t#"$ROOT"}" "ExecStart=$exec_line"
	if [[ "$mode" == disable && "$DRY_RUN" != 1 && -z "$ROOT" ]]; then
		systemctl disable --now "$unit.timer" >/dev/null 2>&1
		log "stopped and disabled $unit.timer (its files stay)" >&2
	fi
done

if ((found > 0)) && [[ "$mode" == report ]]; then
	warn "$found backup job(s) made by hand run borg on $repo beside this stack's units (listed on stdout); set backup.existingJobs: disable to switch them off on the next apply, or remove them by hand"
fi
