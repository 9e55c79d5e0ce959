#!/usr/bin/env bash
# Move a service's data directory to a new place with little downtime, verified, resumable, and
# never losing a byte.
#
#   migrate.sh run      <name> <container|-> <source> <destination> <mount|-> <margin%> <health-timeout-s> <snapshot>
#     snapshot: none, or borg:<host>:<repository name>:<repository path> (the backup component's)
#   migrate.sh finalize <name> <container|-> <source> <destination> <health-timeout-s>
#
# run (before Pulumi replaces the container with one that mounts <destination>):
#   1. pre-flight, nothing changed yet: absolute paths, neither inside the other, the source
#      readable, the container known, the destination on <mount> with room for the source plus
#      <margin>%, and empty or holding a partial run of this same migration;
#   2. a borg archive of the source, its SQLite databases copied consistently (snapshot=borg:...),
#      or nothing (snapshot=none);
#   3. pass 1 while the service runs: rsync -aHAX --numeric-ids --sparse;
#   4. verification of pass 1 while the service still runs: every entry with a ctime older than
#      pass 1's start is identical in both trees (the rest changed since and goes in step 6);
#   5. stop the container, make sure no process still has a file open under the source;
#   6. the final pass and its verification, the downtime: only entries whose ctime is newer than
#      pass 1's start are copied (deletions inside the destination only), and each is compared
#      (metadata, directory listing, content byte for byte, ACLs, xattrs). SQLite -wal/-journal files
#      go together with their database, because the writer is stopped;
#   7. a trial container, cloned from the stopped one with <destination> in place of <source>,
#      must become healthy (or stay up for 10 s when it has no health check);
#   8. record "verified" and leave the old container stopped: Pulumi replaces it next.
#   Any failure after the stop (step 5) starts the old container again on the untouched source.
# finalize (after the new container exists): it must run from <destination> and be healthy;
#   then the source is made read-only (a read-only bind mount, kept across reboots by a systemd
#   mount unit) and the migration is recorded "complete" with the downtime.
# A migration recorded "verified" or "complete" never copies again: a later `pulumi up`, a
# changed connection or a replaced command cannot copy stale source data over newer data.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}"
case "$mode" in
run) [[ $# -eq 9 ]] || die "usage: migrate.sh run <name> <container|-> <source> <destination> <mount|-> <margin%> <health-timeout-s> <none|borg>" ;;
finalize) [[ $# -eq 6 ]] || die "usage: migrate.sh finalize <name> <container|-> <source> <destination> <health-timeout-s>" ;;
*) die "usage: migrate.sh run ... | finalize ..." ;;
esac
name="$2" container="$3" src="$4" dst="$5"
[[ "$name" =~ ^[a-z][a-z0-9-]*$ ]] || die "the migration name must be lower-case letters, digits and '-', got '$name'"
for p in "$src" "$dst"; do
	[[ "$p" == /* ]] || die "'$p' is not an absolute path; nothing was touched"
	[[ "$p" != */ && "$p" != *//* && "$p" != */./* && "$p" != */../* && "$p" != */. && "$p" != */.. ]] ||
		die "'$p' is not a normalised path; nothing was touched"
done
[[ "$src" != "$dst" ]] || die "source and destination are the same path ($src); nothing was touched"
[[ "$dst/" != "$src/"* ]] || die "the destination $dst is inside the source $src; nothing was touched"
[[ "$src/" != "$dst/"* ]] || die "the source $src is inside the destination $dst; nothing was touched"
S="${ROOT}${src}" D="${ROOT}${dst}"
state_dir="${STATE_DIR}/migrations"
marker="${state_dir}/${name}.json"
require_cmd rsync python3

# marker_get KEY : a field of the marker, empty when absent
marker_get() {
	[[ -f "$marker" ]] || return 0
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$marker" "$1"
}
# marker_set KEY=VALUE... : update fields (values are strings)
marker_set() {
	mkdir -p "$state_dir"
	chmod 0700 "$STATE_DIR" "$state_dir"
	python3 - "$marker" "$@" <<'PY'
import json, os, sys
path = sys.argv[1]
m = json.load(open(path)) if os.path.exists(path) else {}
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    m[k] = v
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(m, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(tmp, path)
PY
}
now() { date +%s.%N; }
# elapsed START [END] : seconds from START to END (default: now), one decimal
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "${2:-$(now)}"; }
human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

has_container() { [[ "$container" != - ]]; }
container_running() { [[ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" == true ]]; }

# wait_healthy CONTAINER TIMEOUT : healthy (or running for 10 s without a health check)
wait_healthy() {
	local c="$1" timeout="$2" deadline health up_since=""
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		[[ "$(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" == true ]] || return 1
		health="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")"
		case "$health" in
		healthy) return 0 ;;
		unhealthy) return 1 ;;
		none)
			up_since="${up_since:-$SECONDS}"
			((SECONDS - up_since >= 10)) && return 0
			;;
		esac
		sleep 1
	done
	return 1
}

if [[ "$mode" == finalize ]]; then
	health_timeout="$6"
	state="$(marker_get state)"
	case "$state" in
	complete)
		log "migration $name completed on $(marker_get completed_at); nothing to do"
		exit 0
		;;
	verified) ;;
	*) die "migration $name is not verified yet (state '${state:-none}'); the run step must succeed first" ;;
	esac
	if has_container; then
		require_cmd docker
		# here-strings, not `docker inspect | grep -q`: under pipefail a grep -q that exits at its
		# first match can fail the pipeline through SIGPIPE
		grep -qxF "$dst" <<<"$(docker inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$container" 2>/dev/null)" ||
			die "container $container does not mount $dst; it must be replaced with the destination mount before finalize"
		wait_healthy "$container" "$health_timeout" ||
			die "container $container is not healthy on $dst. The source $src is untouched: to go back, remove the migration from the stack config (the service then mounts the source again) and pulumi up"
	fi
	healthy_at="$(now)"
	# the source read-only, also after a reboot: a read-only bind mount of itself
	if [[ -z "$ROOT" ]] && command -v systemctl >/dev/null 2>&1; then
		unit="$(systemd-escape --path --suffix=mount "$src")"
		printf '%s\n' "$MANAGED_HEADER" "[Unit]" "Description=Read-only source of the completed migration $name ($src -> $dst)" \
			"" "[Mount]" "What=$src" "Where=$src" "Type=none" "Options=bind,ro" "" "[Install]" "WantedBy=local-fs.target" |
			install_content "/etc/systemd/system/$unit" 0644 >/dev/null
		systemctl daemon-reload
		systemctl enable --now "$unit" >/dev/null 2>&1 || die "could not mount $src read-only ($unit): $(systemctl status "$unit" --no-pager 2>&1 | tail -3)"
		log "source $src is now read-only ($unit); retire it on purpose when you no longer need it"
	else
		log "(no systemd) would make $src read-only"
	fi
	stopped_at="$(marker_get stopped_at)"
	downtime="$(elapsed "${stopped_at:-$healthy_at}" "$healthy_at")"
	marker_set state=complete completed_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" downtime_s="$downtime"
	log "migration $name complete: $(marker_get bytes_copied) bytes copied, $(marker_get files_verified) files verified, downtime ${downtime} s (service stopped to healthy on $dst)"
	exit 0
fi

# ---- run ---------------------------------------------------------------------------------------
mount_point="$6" margin="$7" health_timeout="$8" snapshot="$9"
[[ "$margin" =~ ^[0-9]+$ ]] || die "the margin must be a whole percentage, got '$margin'"
[[ "$snapshot" == none || "$snapshot" =~ ^borg:[a-z][a-z0-9-]*:[a-z][a-z0-9-]*:/ ]] ||
	die "snapshot must be none or borg:<host>:<repository name>:<repository path>, got '$snapshot'"
state="$(marker_get state)"
if [[ "$state" == complete ]]; then
	log "migration $name completed on $(marker_get completed_at); nothing to do (the source is never copied again)"
	exit 0
fi
if [[ "$state" == verified ]]; then
	# verified, waiting for Pulumi to replace the container; the destination must be as verified
	[[ "$(marker_get source)" == "$src" && "$(marker_get destination)" == "$dst" ]] ||
		die "migration $name was verified for $(marker_get source) -> $(marker_get destination), not $src -> $dst"
	changes="$(rsync -aHAX --numeric-ids --modify-window=-1 -n -i --delete "$S/" "$D/" | head -20 || true)"
	if [[ -n "$changes" ]]; then
		# The service runs on the destination from the trial on, so it may well differ from the
		# source now; whatever the reason, the source is never copied over it again.
		warn "the destination $dst changed after migration $name was verified; not copying over it. Differences (first 20):
$changes
Expected once the service has run on $dst. If it has not, inspect $dst; delete ${marker#"$ROOT"} only to start the migration over from the source"
		exit 0
	fi
	log "migration $name is verified and the destination is unchanged; nothing to do until the container is replaced"
	exit 0
fi

# 1. pre-flight
[[ -d "$S" ]] || die "the source $src does not exist or is not a directory; nothing was touched"
[[ -r "$S" && -x "$S" ]] || die "the source $src is not readable; nothing was touched"
if has_container; then
	require_cmd docker
	docker inspect "$container" >/dev/null 2>&1 || die "there is no container '$container' on $(hostname); nothing was touched"
	grep -qxF "$src" <<<"$(docker inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$container")" ||
		die "container $container does not mount $src; nothing was touched"
fi
parent="$D"
while [[ ! -e "$parent" ]]; do parent="$(dirname "$parent")"; done
if [[ "$mount_point" != - ]]; then
	on="$(findmnt -n -o TARGET --target "$parent")"
	[[ "$on" == "${ROOT}${mount_point}" || ( -z "$ROOT" && "$on" == "$mount_point" ) ]] ||
		die "the destination $dst is on the filesystem mounted at $on, not on $mount_point; nothing was touched"
fi
if [[ -d "$D" ]] && [[ -n "$(ls -A "$D")" ]]; then
	if [[ "$state" != copying || "$(marker_get source)" != "$src" || "$(marker_get destination)" != "$dst" ]]; then
		die "the destination $dst is not empty and holds no earlier run of migration $name; nothing was touched"
	fi
	log "resuming migration $name: $dst holds a partial copy from an earlier run"
fi
need=$(du -s --block-size=1 "$S" | cut -f1)
have_partial=0
[[ -d "$D" ]] && have_partial=$(du -s --block-size=1 "$D" | cut -f1)
avail=$(df -B1 --output=avail "$parent" | tail -1 | tr -d ' ')
want=$((need + need * margin / 100 - have_partial))
((avail >= want)) ||
	die "not enough room for $dst: the source takes $(human "$need"), with the ${margin}% margin $(human "$want") more are needed, $(human "$avail") are free; nothing was touched"
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: pre-flight passed ($(human "$need") to copy, $(human "$avail") free)"
	exit 0
fi

# 2. snapshot: an archive in the backup component's repository, with its pass file and state,
# taken while the service runs, so SQLite databases go in through borg-run.sh's consistent copies
if [[ "$snapshot" == borg:* ]]; then
	IFS=: read -r _ borg_host borg_name borg_repo <<<"$snapshot"
	runner="${ROOT}/usr/local/lib/dgx-storage/borg-run.sh"
	[[ -f "$runner" ]] || die "snapshot=borg but ${runner#"$ROOT"} is not installed (apply the backup component first); nothing was touched"
	sqlite=()
	while IFS= read -r -d '' db; do sqlite+=(--sqlite "${db#"$ROOT"}"); done < <(find "$S" -maxdepth 3 -type f \( -name '*.sqlite3' -o -name '*.sqlite' \) -print0)
	log "borg archive of $src before migrating (repository $borg_repo)"
	# borg's state: borg-run.sh's default, the backup units' BORG_BASE_DIR (${STATE_DIR}/borg)
	BORG_PASSCOMMAND="cat ${ROOT}/etc/dgx-storage/borg/${borg_name}.pass" \
		bash "$runner" --repo "$borg_repo" --host "$borg_host" create "migration-$name" "${sqlite[@]}" "$src" ||
		die "the borg archive of $src failed (a repository locked out counts as a failure); nothing was copied and the service was not stopped"
fi

mkdir -p "$D"
marker_set state=copying source="$src" destination="$dst" container="$container" started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# --modify-window=-1: times must match to the nanosecond. rsync otherwise compares whole seconds:
# it leaves a directory, symlink or FIFO made in the same second as the copy with the copy's
# time, and skips a same-size file changed within the second it was copied.
RSYNC=(rsync -aHAX --numeric-ids --sparse --modify-window=-1)
started_pass1="$(mktemp)"
# entries whose ctime is newer than this are copied again in the final pass; a second of slack
# covers filesystems that store whole-second times
touch -d "@$(($(date +%s) - 2))" "$started_pass1"
stopped=0
cleanup() {
	local rc=$?
	rm -f "$started_pass1"
	[[ -n "${trial:-}" ]] && docker rm -f "$trial" >/dev/null 2>&1
	if ((rc != 0 && stopped)) && has_container && ! container_running; then
		warn "bringing $container back on the untouched source $src"
		docker start "$container" >/dev/null && warn "$container runs on $src again"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# 3. pass 1, service running
log "pass 1 (service running): $src -> $dst ($(human "$need"))"
t0="$(now)"
# progress (bytes, %, rate, files) every 5%; the process substitution keeps rsync's exit status
"${RSYNC[@]}" --info=progress2 "$S/" "$D/" > >(tr '\r' '\n' | awk '/(to|ir)-chk/ { p = $2 + 0; if (p >= last + 5 || p == 100) { print "  " $0; last = p } }')
pass1_bytes="$(du -s --block-size=1 "$D" | cut -f1)"
log "pass 1 done in $(elapsed "$t0") s"
# Benchmarks and tests only (the program never sets it; sshd would not pass it): a command run
# between pass 1 and the stop, e.g. to change 1% of the files as a running service would.
if [[ -n "${MIGRATE_AFTER_PASS1:-}" ]]; then bash -c "$MIGRATE_AFTER_PASS1"; fi

# 4. verification of pass 1, while the service still runs (so it costs no downtime): every
# source entry whose ctime is older than pass 1's start was copied by pass 1 and untouched since,
# so it must already be identical in the destination (type, mode, owner, size, mtime to the
# nanosecond, link count, link target; rsync checksummed its content while copying); entries the
# destination has and the source has not are removed. What changed since pass 1 began has a newer
# ctime (ctime moves with every change of content, xattrs, ACLs, owner, mode or links, and a
# deletion moves the parent directory's), and the final pass copies and verifies exactly that.
work="$(mktemp -d)"
log "verifying pass 1 (service running)"
(cd "$S" && find . -printf '%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%n\t%l\t%C@\0' >"$work/src") &
(cd "$D" && find . -printf '%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%n\t%l\t%C@\0' >"$work/dst") &
wait
files="$(python3 - "$work/src" "$work/dst" "$D" "$(stat -c %Y "$started_pass1")" <<'PY'
import os, shutil, sys
src_m, dst_m, D, ref = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def load(p):
    out = {}
    for rec in open(p, "rb").read().split(b"\0"):
        if rec:
            f = rec.split(b"\t")
            if f[1] == b"d":
                f[5] = f[7] = b"-"  # a directory's size and link count depend on the filesystem
            out[f[0]] = (f[1:9], float(f[9]))
    return out
src, dst = load(src_m), load(dst_m)
bad = [p for p, (meta, ctime) in src.items() if ctime <= ref and p and dst.get(p, (None,))[0] != meta]
if bad:
    for p in bad[:50]:
        print("migrate: differs after pass 1:", p.decode(errors="replace"), file=sys.stderr)
    sys.exit(1)
for p in sorted((p for p in dst if p not in src), key=lambda p: -p.count(b"/")):
    victim = os.path.join(D.encode(), p)
    if os.path.isdir(victim) and not os.path.islink(victim):
        shutil.rmtree(victim, ignore_errors=True)
    elif os.path.lexists(victim):
        os.unlink(victim)
print(len(src))
PY
)" || die "pass 1 left the destination different from the source (see above); the service still runs on $src"

# the stop
stopped_at="$(now)"
if has_container && container_running; then
	log "stopping $container"
	stopped=1
	docker stop -t 60 "$container" >/dev/null
fi
holders="$(find /proc/[0-9]*/fd /proc/[0-9]*/cwd -maxdepth 1 \( -lname "$S/*" -o -lname "$S" \) 2>/dev/null | cut -d/ -f3 | sort -u | tr '\n' ' ' || true)"
[[ -z "$holders" ]] || die "processes still hold files open under $src (pids: $holders); not copying the final state"

# 5. final pass: only the entries whose ctime is newer than pass 1's start (the step before
# proved every other entry identical), then deletions inside the destination only
log "final pass (service stopped)"
t_final="$(now)"
(cd "$S" && find . -cnewer "$started_pass1" -printf '%P\0' | sed -z 's/^$/./') >"$work/changed"
verdict="$(python3 - "$S" "$D" "$work/changed" <<'PY'
import os, shutil, sys
S, D, changed = sys.argv[1:4]
paths = [p for p in open(changed, "rb").read().split(b"\0") if p]
deleted = 0
# a deletion in the source moved its parent directory's ctime: the parents listed are all the
# directories whose entries may have gone
for rel in paths:
    s, d = os.path.join(S.encode(), rel), os.path.join(D.encode(), rel)
    if os.path.isdir(s) and not os.path.islink(s) and os.path.isdir(d) and not os.path.islink(d):
        for name in set(os.listdir(d)) - set(os.listdir(s)):
            victim = os.path.join(d, name)
            if os.path.isdir(victim) and not os.path.islink(victim):
                shutil.rmtree(victim)
            else:
                os.unlink(victim)
            deleted += 1
print(f"{len(paths)} {deleted}")
PY
)"
final_bytes=0
if [[ -s "$work/changed" ]]; then
	final_stats="$("${RSYNC[@]}" --force --from0 --files-from="$work/changed" --stats "$S/" "$D/")"
	final_bytes="$(awk -F': ' '/Total transferred file size/ {gsub(/[^0-9]/, "", $2); print $2}' <<<"$final_stats")"
fi
log "final pass: ${verdict% *} changed entries copied, ${verdict#* } deleted, in $(elapsed "$t_final") s"

# 6. verification of the final pass, in one walk of the changed entries: each is equal in both
# trees (type, mode, owner, size, mtime to the nanosecond, link count, link target), with the same
# content (compared byte for byte), the same xattrs (POSIX ACLs are the system.posix_acl_* ones),
# and each changed directory lists the same entries
log "verifying the final pass"
python3 - "$S" "$D" "$work/changed" <<'PY' || die "the trees differ after the final pass; see above"
import os, stat, sys
S, D, lst = sys.argv[1:4]
bad = []
def meta(p):
    st = os.lstat(p)
    isdir = stat.S_ISDIR(st.st_mode)
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
            None if isdir else st.st_size, st.st_mtime_ns, None if isdir else st.st_nlink,
            os.readlink(p) if stat.S_ISLNK(st.st_mode) else None)
def xattrs(p):
    try:
        return {k: os.getxattr(p, k, follow_symlinks=False) for k in sorted(os.listxattr(p, follow_symlinks=False))}
    except OSError:
        return None
def same_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True
for rel in open(lst, "rb").read().split(b"\0"):
    if not rel:
        continue
    s, d = os.path.join(S.encode(), rel), os.path.join(D.encode(), rel)
    if not os.path.lexists(s):
        if os.path.lexists(d):
            bad.append((rel, "exists only in the destination"))
        continue
    if not os.path.lexists(d):
        bad.append((rel, "missing in the destination"))
        continue
    ms = meta(s)
    if ms != meta(d):
        bad.append((rel, "metadata"))
    elif xattrs(s) != xattrs(d):
        bad.append((rel, "xattrs or ACLs"))
    elif stat.S_ISREG(ms[0]) and not same_content(s, d):
        bad.append((rel, "content"))
    elif stat.S_ISDIR(ms[0]) and set(os.listdir(s)) != set(os.listdir(d)):
        bad.append((rel, "directory entries"))
for rel, why in bad[:50]:
    print(f"migrate: differs ({why}):", rel.decode(errors="replace"), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
rm -rf "$work"
log "final pass and verification took $(elapsed "$t_final") s"
marker_set bytes_copied="$((pass1_bytes + ${final_bytes:-0}))" files_verified="$files" stopped_at="$stopped_at"

# 7. trial run on the destination
if has_container; then
	trial="${container}-migration-trial"
	docker rm -f "$trial" >/dev/null 2>&1 || true
	args_file="$(mktemp)"
	env_file="$(mktemp)"
	chmod 0600 "$env_file"
	inspect_file="$(mktemp)"
	docker inspect "$container" >"$inspect_file"
	python3 - "$inspect_file" "$src" "$dst" "$trial" "$args_file" "$env_file" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))[0]
src, dst, trial, args_path, env_path = sys.argv[2:7]
cfg, host = c["Config"], c["HostConfig"]
args = ["--name", trial, "--label", "dgx-storage.migration-trial=1"]
with open(env_path, "w") as f:  # env on a file, not in argv
    for e in cfg.get("Env") or []:
        f.write(e + "\n")
args += ["--env-file", env_path]
if cfg.get("User"):
    args += ["--user", cfg["User"]]
if cfg.get("WorkingDir"):
    args += ["--workdir", cfg["WorkingDir"]]
for m in c.get("Mounts") or []:
    source = dst if m["Source"] == src else m["Source"]
    if m["Type"] == "volume":
        source = m["Name"]
    ro = "" if m.get("RW", True) else ",readonly"
    args += ["--mount", f"type={m['Type']},source={source},target={m['Destination']}{ro}"]
hc = cfg.get("Healthcheck")
if hc and hc.get("Test") and hc["Test"][0] != "NONE":
    test = hc["Test"]
    cmd = test[1] if test[0] == "CMD-SHELL" else " ".join(json.dumps(t) for t in test[1:])
    args += ["--health-cmd", cmd, "--health-interval", "2s", "--health-retries", str(hc.get("Retries") or 3)]
    if hc.get("Timeout"):
        args += ["--health-timeout", f"{hc['Timeout'] // 1_000_000}ms"]
    if hc.get("StartPeriod"):
        args += ["--health-start-period", f"{hc['StartPeriod'] // 1_000_000}ms"]
if host.get("Init"):
    args.append("--init")
if host.get("ShmSize"):
    args += ["--shm-size", str(host["ShmSize"])]
for r in host.get("DeviceRequests") or []:
    if r.get("DeviceIDs"):
        args += ["--gpus", "device=" + ",".join(r["DeviceIDs"])]
    elif r.get("Count"):
        args += ["--gpus", str(r["Count"]) if r["Count"] > 0 else "all"]
if cfg.get("Entrypoint"):
    args += ["--entrypoint", cfg["Entrypoint"][0]]
args.append(cfg["Image"])
args += (cfg.get("Entrypoint") or [])[1:] + (cfg.get("Cmd") or [])
with open(args_path, "w") as f:
    f.write("\0".join(args))
PY
	mapfile -d '' -t trial_args <"$args_file"
	rm -f "$args_file" "$inspect_file"
	log "trial run of $container on $dst"
	docker run -d "${trial_args[@]}" >/dev/null
	rm -f "$env_file"
	if ! wait_healthy "$trial" "$health_timeout"; then
		logs="$(docker logs --tail 10 "$trial" 2>&1 || true)"
		die "the service did not become healthy on $dst within ${health_timeout}s (trial container); last log lines:
$logs"
	fi
	docker rm -f "$trial" >/dev/null
	trial=""
	log "the service is healthy on $dst"
fi

# 8. hand over to Pulumi
marker_set state=verified verified_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" handover_at="$(now)"
stopped=0 # from here on, the old container stays stopped: Pulumi replaces it
log "migration $name verified: $(marker_get bytes_copied) bytes copied, $files files verified; $container stays stopped until Pulumi replaces it with one on $dst"
