#!/usr/bin/env bash
# The observability files of a host: node_exporter's static textfile on every host; on the
# manager Prometheus's config, its rules, Alertmanager's config and the storage console page.
#
#   observability-config.sh textfile <file> <content>
#   observability-config.sh apply <prometheus.yml> <rules.yml> <alertmanager.yml> <console.html> <webhook file>
#   observability-config.sh remove
#
# textfile: writes <file> (under node_exporter's textfile directory) atomically when it differs,
#   and enables node_exporter.
# apply: each text is written to a staging directory beside the live files and checked there
#   (`promtool check rules`, `promtool check config --syntax-only`, `amtool check-config`); one
#   that does not pass fails the command and no live file is touched, so the host keeps its last
#   good config. The Alertmanager text holds a placeholder for the webhook URL, replaced here by
#   the URL read from <webhook file> (root-only, written from a secret on stdin): the URL is never
#   in argv. alertmanager.yml is written 0640 root:prometheus. Files are replaced (rename) only
#   when they differ; then Prometheus and Alertmanager are reloaded (SIGHUP), so a second run
#   changes nothing. The three services are enabled and started.
# remove: deletes the managed files (Debian's own prometheus.yml and alertmanager.yml are not
#   restored; the services keep running on what they loaded).
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

PLACEHOLDER="__DGX_ALERT_WEBHOOK_URL__"
TEXTFILE_DIR="$DGX_TEXTFILE_DIR"
PROM_YML="/etc/prometheus/prometheus.yml"
RULES="/etc/prometheus/rules/dgx-storage.rules.yml"
AM_YML="/etc/prometheus/alertmanager.yml"
CONSOLE="/etc/prometheus/consoles/dgx-storage.html"
# Alertmanager on loopback only (Prometheus on this host is its one client) and its HA gossip
# off: an empty --cluster.listen-address disables HA mode (prometheus-alertmanager --help);
# Debian's unit runs `prometheus-alertmanager $ARGS` from this file. The address is
# ALERTMANAGER_ADDRESS in components/render/observability.ts (a test holds them equal).
AM_DEFAULTS="/etc/default/prometheus-alertmanager"
AM_ARGS="--web.listen-address=127.0.0.1:9093 --cluster.listen-address="

mode="${1:-}"
usage="usage: observability-config.sh textfile <file> <content> | apply <prometheus.yml> <rules.yml> <alertmanager.yml> <console.html> <webhook file> | remove"

# put <text> <dest> <mode> [<group>] : atomic replace when the content, mode or group differs; prints "changed" or nothing
put() {
	local text="$1" dest="${ROOT}$2" m="$3" group="${4:-root}" tmp
	[[ -z "$ROOT" ]] || group="$(id -gn)" # a test tree: files keep the caller's group
	if [[ -f "$dest" && "$(cat "$dest")" == "${text%$'\n'}" && "$(stat -c '%a %G' "$dest")" == "${m#0} $group" ]]; then
		return 0
	fi
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would write $2"
		echo changed
		return 0
	fi
	mkdir -p "$(dirname "$dest")"
	tmp="$(mktemp "$(dirname "$dest")/.dgx-tmp.XXXXXX")"
	printf '%s' "$text" >"$tmp"
	chmod "$m" "$tmp"
	[[ -n "$ROOT" ]] || chgrp "$group" "$tmp"
	mv -f "$tmp" "$dest"
	log "$2 written"
	echo changed
}

# systemd: enable and start; in a ROOT test tree nothing runs
ensure_running() {
	[[ -z "$ROOT" && "$DRY_RUN" != 1 ]] || return 0
	systemctl enable --now --quiet "$@"
}

case "$mode" in
textfile)
	[[ $# -eq 3 ]] || die "$usage"
	[[ "$2" =~ ^${TEXTFILE_DIR}/[A-Za-z0-9_]+\.prom$ ]] || die "'$2' is not a .prom file in $TEXTFILE_DIR"
	put "$3" "$2" 0644 >/dev/null
	ensure_running prometheus-node-exporter.service
	log "$2 up to date; node_exporter enabled"
	;;
apply)
	[[ $# -eq 6 ]] || die "$usage"
	require_cmd promtool amtool
	prom="$2" rules="$3" am="$4" console="$5" webhook_file="$6"
	[[ "$webhook_file" == "$DGX_ETC_DIR"/* && "${webhook_file#"$DGX_ETC_DIR"/}" =~ ^[A-Za-z0-9_.-]+$ ]] || die "'$webhook_file' is not a file under $DGX_ETC_DIR/"
	if [[ "$am" == *"$PLACEHOLDER"* ]]; then
		[[ -s "${ROOT}$webhook_file" ]] || die "Alertmanager's config names a webhook, but $webhook_file is missing or empty"
		url="$(head -n1 "${ROOT}$webhook_file")"
		# the form the stack's secret check allows: nothing YAML or the shell would read specially
		[[ "$url" =~ ^https?://[^[:space:]\'\"\\\`\$]+$ ]] || die "$webhook_file does not hold an http(s) URL on one line"
		am="${am//"$PLACEHOLDER"/\"$url\"}"
	fi
	mkdir -p "${ROOT}/etc/prometheus/rules"
	stage="$(mktemp -d "${ROOT}/etc/prometheus/.dgx-stage.XXXXXX")"
	trap 'rm -rf "$stage"' EXIT
	printf '%s' "$prom" >"$stage/prometheus.yml"
	printf '%s' "$rules" >"$stage/rules.yml"
	(
		umask 077
		printf '%s' "$am" >"$stage/alertmanager.yml"
	)
	# the checks, before anything live changes (their output names the file and line)
	promtool check rules "$stage/rules.yml" >&2 || die "the rules do not pass promtool check rules; the live config is unchanged"
	promtool check config --syntax-only "$stage/prometheus.yml" >&2 || die "prometheus.yml does not pass promtool check config; the live config is unchanged"
	# (pipefail: the pipeline fails when amtool does; sed only drops the staging path)
	amtool check-config "$stage/alertmanager.yml" 2>&1 | sed "s|$stage/||" >&2 ||
		die "alertmanager.yml does not pass amtool check-config; the live config is unchanged"
	changed_prom="$(put "$prom" "$PROM_YML" 0644)$(put "$rules" "$RULES" 0644)"
	changed_am="$(put "$am" "$AM_YML" 0640 prometheus)"
	changed_console="$(put "$console" "$CONSOLE" 0644)"
	printf -v am_defaults '# Managed by dgx-storage (observability-config.sh): loopback only, no HA gossip\nARGS="%s"\n' "$AM_ARGS"
	changed_listen="$(put "$am_defaults" "$AM_DEFAULTS" 0644)"
	# a listen address is read at start only: a restart (which loads the config too)
	am_action=""
	[[ -z "$changed_am" ]] || am_action=reload
	[[ -z "$changed_listen" ]] || am_action=restart
	ensure_running prometheus-node-exporter.service prometheus.service prometheus-alertmanager.service
	if [[ -z "$ROOT" && "$DRY_RUN" != 1 ]]; then
		[[ -z "$changed_prom" ]] || systemctl reload prometheus.service
		[[ -z "$am_action" ]] || systemctl "$am_action" prometheus-alertmanager.service
	fi
	if [[ -z "$changed_prom$changed_am$changed_console$changed_listen" ]]; then
		log "Prometheus and Alertmanager configs unchanged"
	else
		log "Prometheus and Alertmanager configs checked and installed${changed_prom:+; prometheus reloaded}${am_action:+; alertmanager ${am_action}ed}"
	fi
	;;
remove)
	for f in "$RULES" "$CONSOLE" "$TEXTFILE_DIR/dgx_static.prom"; do
		if [[ "$DRY_RUN" == 1 ]]; then log "dry run: would delete $f"; else rm -f -- "${ROOT}$f"; fi
	done
	log "removed the managed rules, console page and static metrics"
	;;
*) die "$usage" ;;
esac
