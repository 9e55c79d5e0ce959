#!/usr/bin/env bash
# Move a service's data directory to a new place with little downtime, verified, resumable, and
# never losing a byte. docs/migration.md explains each step and the benchmark.
#
#   migrate.sh run      <name> <new container|-> <source> <destination> <mount|-> <margin%> <health-timeout-s> <snapshot>
#     new container: the service's container as Pulumi created it, stopped, <destination> mounted
#     snapshot: none, or borg:<host>:<repository name>:<repository path> (the backup component's)
#   migrate.sh finalize <name> <container|-> <source> <destination> <health-timeout-s>
#
# The writers are the containers that bind-mount <source> (the service's old container, whatever
# its name: container-adopt.sh may have renamed it), found from Docker, not from a name.
#
# run (the new container exists, created stopped):
#   1. pre-flight, nothing changed yet: absolute paths; resolved through every symlink, neither
#      inside the other; one run per source at a time (a lock on the source directory); the
#      source readable, the new container this project's and mounting <destination>, the
#      destination on <mount> with room for the source plus <margin>%, and empty or holding a
#      partial run of this same migration;
#   2. a borg archive of the source (snapshot=borg:...), or nothing (snapshot=none);
#   3. the change record: inotifywait watches the source from here on (migrate-tree.py delta);
#   4. pass 1 while the service runs: cp -a into the empty destination, or rsync -aHAX
#      --numeric-ids --sparse --checksum when an earlier run left a partial copy (its content is
#      not trusted on size and mtime); then synced to the disk;
#   5. verification of pass 1 while the service runs (migrate-tree.py walk-verify): every entry
#      whose ctime predates pass 1 is equal in both trees; the rest goes to the live passes;
#   6. live passes while the service runs: the entries the record names are copied (rsync -I, by
#      content, never skipped on size and mtime) and compared, until a pass takes under a second;
#   7. stop the writers (restart policy `no` first, so no dockerd restart or reboot starts them
#      beside the new one); no process may still hold a file or mapping under the source;
#   8. the final pass and its verification, the downtime: the entries the record names since the
#      last live pass (the whole source's ctimes when the record cannot be trusted: it overflowed,
#      its watcher failed, inotifywait is missing), copied and compared byte for byte;
#   9. the cut-over: the new container starts on <destination> and must become healthy (or stay
#      up for 10 s when it has no health check) within <health-timeout-s>;
#  10. record "verified": the service runs from <destination>; the writers stay stopped.
#   Any failure after the stop stops the new container and starts the writers again on the
#   untouched source, their restart policies as they were; so does the next run when an earlier
#   one was killed while the service was stopped. A failed run fails the step, and `pulumi up`
#   runs it again next time: it resumes.
# It runs in a transient systemd unit (dgx-migrate-<name>, lib.sh run_detached): a killed
# `pulumi up` or a dropped SSH connection does not stop it half-way.
# finalize (after the service's switch): the new container must run from <destination>, healthy;
#   then the source is made read-only (a read-only bind mount, kept across reboots by a systemd
#   mount unit) and the migration is recorded "complete" with the downtime.
# A migration recorded "verified" or "complete" never copies again: a later `pulumi up`, a
# changed connection or a replaced command cannot copy stale source data over newer data.
# Files: migrate-lib.sh (the arguments, the paths, the lock, the marker), migrate-run.sh and
# migrate-finalize.sh (one function each, migrate_<subcommand>). The bundle that a host runs
# (components/render/command.ts, CARRIED_FILES) carries them all in one string.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
if ! declare -F migrate_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/migrate-lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/migrate-lib.sh"
fi

migrate_args "$@"
if [[ "$mode" == run ]] && should_detach; then
	run_detached "dgx-migrate-${name}" "$@"
	exit $?
fi
migrate_paths
# each subcommand is a file of its own, migrate-<subcommand>.sh, defining migrate_<subcommand> (in a
# bundle the function is already defined)
if ! declare -F "migrate_${mode}" >/dev/null; then
	# shellcheck source=/dev/null
	. "$(dirname "${BASH_SOURCE[0]}")/migrate-${mode}.sh"
fi
"migrate_${mode}" "${@:6}"
