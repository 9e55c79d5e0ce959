"""The tree work of migrate.sh: which entries changed, deletions inside the destination, and the
comparison of both trees. Names are bytes throughout (any byte but NUL and '/' may be in a name or
a link target); lists are NUL-separated relative paths, the source root itself being ".".

  migrate-tree.py walk-verify SRC DST SINCE_NS WORK
      after pass 1: every entry whose ctime is older than SINCE_NS must be equal in both trees
      (type, mode, owner, size, mtime to the nanosecond, link count, link target, device number);
      the others, and any that differ, go in WORK/list. Entries only the destination has are
      removed. WORK/inodes gets the source's hard-link groups.
  migrate-tree.py delta SRC DST WORK WATCHER_PID MARK [--stopped PID]
      the entries named in WORK/record (inotifywait's) since the last mark, up to a new mark made
      now, in WORK/list; exit 3 when the record cannot be trusted (the reason in WORK/untrusted)
  migrate-tree.py scan SRC DST WORK SINCE_NS [--stopped PID]
      the full walk instead of the record: the entries whose ctime is newer than SINCE_NS
      --stopped PID: the service is stopped; first exit 4, printing their pids, when processes
      other than PID and its children still hold a file, cwd, root or mapping under SRC
  migrate-tree.py serve
      the commands above, one after the other, in this one process (migrate.sh starts it before
      pass 1, so that no interpreter starts inside the downtime): a request on stdin is the
      argument count and the arguments, each NUL-terminated; each reply one line on stdout, the
      exit status, a space and what the command printed (newlines as spaces). The first line is
      "ready <pid>"; end of input ends it.
  migrate-tree.py verify SRC DST WORK live|final
      compares every entry of the copy lists (WORK/list, holes, sparse, top): metadata, xattrs
      (ACLs are system.posix_acl_*), content byte for byte (holes skipped where both files have
      them), directory listings, hard-link groups. live: the entries that differ go in
      WORK/carry for the next delta; final: exit 1 naming them.

delta, scan, walk-verify print "<entries listed> <entries deleted in DST>"; verify prints
"<entries> <data bytes of the regular files, holes left out>".
"""
import contextlib
import io
import os
import shutil
import stat
import sys
import threading
import time
import traceback

LIST, HOLES, SPARSE, TOP, CARRY, INODES, CURSOR, UNTRUSTED, RECORD = b"list", b"holes", b"sparse", b"top", b"carry", b"inodes", b"cursor", b"untrusted", b"record"
SPARSE_MIN = 64 << 20  # below this, rsync's reading of the holes costs less than a second
PREFETCH_MAX = 64 << 20  # of each changed file, read ahead before rsync copies it
# inotifywait cuts an event's text at about 4000 characters (inotifywait(1), --format): a path
# that long may have been cut, so the record is not trusted with it
MAX_EVENT_PATH = 3900


def join(root, rel):
    return root if rel == b"." else root + b"/" + rel


def parent(rel):
    i = rel.rfind(b"/")
    return b"." if i < 0 else rel[:i]


def show(rel):
    return rel.decode(errors="backslashreplace")


def read_list(path):
    try:
        with open(path, "rb") as f:
            return [p for p in f.read().split(b"\0") if p]
    except FileNotFoundError:
        return []


def write_list(path, rels):
    with open(path, "wb") as f:
        f.write(b"".join(r + b"\0" for r in rels))


def lstat(path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def walk(root, top=b"."):
    """(rel, lstat) of top and everything under it. Directories are opened relative to their
    parent's descriptor without following symlinks (os.fwalk), so a directory swapped for a symlink
    while the walk runs never leads it out of the tree; what vanishes meanwhile is left out."""
    st = lstat(join(root, top))
    if st is None:
        return
    yield top, st
    if not stat.S_ISDIR(st.st_mode):
        return
    base = join(root, top)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(base, follow_symlinks=False):
        rel_dir = top if dirpath == base else (dirpath[len(base) + 1 :] if top == b"." else top + b"/" + dirpath[len(base) + 1 :])
        for name in dirnames + filenames:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield (name if rel_dir == b"." else rel_dir + b"/" + name), st


def meta(st, path):
    """What must be equal; a directory's size and link count depend on the filesystem."""
    mode = st.st_mode
    isdir = stat.S_ISDIR(mode)
    return (
        stat.S_IFMT(mode),
        stat.S_IMODE(mode),
        st.st_uid,
        st.st_gid,
        None if isdir else st.st_size,
        st.st_mtime_ns,
        None if isdir else st.st_nlink,
        st.st_rdev if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None,
        os.readlink(path) if stat.S_ISLNK(mode) else None,
    )


def xattrs(path):
    try:
        return {k: os.getxattr(path, k, follow_symlinks=False) for k in sorted(os.listxattr(path, follow_symlinks=False))}
    except OSError as e:
        return ("unreadable", e.errno)


def data_extents(fd, size):
    """The (start, end) ranges that hold data; the rest of the file is holes (reads as zeros)."""
    out, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole from pos on
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, min(end, size)))
        pos = end
    return out


def same_content(a, b, size):
    """Byte for byte, reading only where either file has data: a hole equals zeros."""
    fa, fb = os.open(a, os.O_RDONLY | os.O_NOFOLLOW), os.open(b, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        spans = sorted(data_extents(fa, size) + data_extents(fb, size))
        merged = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        for s, e in merged:
            pos = s
            while pos < e:
                n = min(1 << 20, e - pos)
                if os.pread(fa, n, pos) != os.pread(fb, n, pos):
                    return False
                pos += n
        return True
    finally:
        os.close(fa)
        os.close(fb)


def data_bytes(st):
    return min(st.st_size, st.st_blocks * 512)


class RealDirs:
    """Whether every directory on the way to a path is a real directory (no symlink), cached: a
    path from the record may run through a name that is now a symlink, and neither a deletion
    nor a comparison may follow it out of the tree."""

    def __init__(self, root):
        self.root, self.known = root, {b".": True}

    def ok(self, rel):
        p = parent(rel)
        if p not in self.known:
            st = lstat(join(self.root, p))
            self.known[p] = self.ok(p) and st is not None and stat.S_ISDIR(st.st_mode)
        return self.known[p]


def remove(path):
    st = lstat(path)
    if st is None:
        return 0
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # never follows a symlink inside (os.fwalk-like, fd based)
    else:
        os.unlink(path)
    return 1


def load_inodes(work):
    groups = {}
    raw = read_list(work + b"/" + INODES)
    for ino, rel in zip(raw[::2], raw[1::2]):
        groups.setdefault(int(ino), set()).add(rel)
    return groups


def save_inodes(work, groups):
    write_list(work + b"/" + INODES, [x for ino, rels in groups.items() for rel in rels for x in (b"%d" % ino, rel)])


def prepare(S, D, work, rels, newdirs, groups):
    """From the changed entries to WORK/list: their parent directories (a name that comes or goes
    changes its directory), everything in the new directories, the other names of a changed hard
    link; what the source no longer has is removed from the destination here, and so is an
    entry whose type changed."""
    entries = set(rels) | set(read_list(work + b"/" + CARRY))
    entries |= {parent(r) for r in entries if r != b"."}
    # inotifywait watches a new directory only after reporting it, so what was made in it in
    # between has no event of its own (inotifywait.cpp, the IN_CREATE branch): take all of it
    for d in newdirs:
        entries.update(r for r, _ in walk(S, d))
    src_dirs, dst_dirs = RealDirs(S), RealDirs(D)
    listed, retry, deleted = set(), [], 0
    for rel in sorted(entries, key=lambda r: r.count(b"/")):
        # a directory on the way became a symlink or vanished: that name is the change
        while not src_dirs.ok(rel):
            rel = parent(rel)
        try:
            deleted += prepare_one(S, D, rel, src_dirs, dst_dirs, groups, listed)
        except (FileNotFoundError, NotADirectoryError):
            retry.append(rel)  # changed while looked at (the service runs): next time
    save_inodes(work, groups)
    # rsync reads a file's holes as zeros (13 s for 2 GiB of holes here): a large sparse file's
    # data is copied here, extent by extent; rsync then only sets its attributes (no -I list).
    # Other files with holes go to rsync --sparse (WORK/holes); the rest, most files, to an rsync
    # without it, which costs less than half as much in place (--sparse truncates each file three times).
    sparse, holes = set(), set()
    for rel in listed:
        st = lstat(join(S, rel))
        if not st or not stat.S_ISREG(st.st_mode) or data_bytes(st) >= st.st_size:
            continue
        if st.st_nlink == 1 and st.st_size >= SPARSE_MIN and data_bytes(st) < st.st_size // 2:
            try:
                copy_sparse(join(S, rel), join(D, rel), st)
                sparse.add(rel)
                continue
            except (FileNotFoundError, NotADirectoryError):
                retry.append(rel)
        holes.add(rel)  # every name of a hard-linked inode alike: rsync -H links them in one run
    prefetch(S, listed - sparse)
    # rsync takes "." in a file list as the directory and everything in it (rsync(1), --dirs):
    # with -I it would copy every file at the top again. Its attributes go on their own (WORK/top).
    top = listed & {b"."}
    write_list(work + b"/" + LIST, sorted(listed - sparse - holes - top))
    write_list(work + b"/" + HOLES, sorted(holes))
    write_list(work + b"/" + SPARSE, sorted(sparse))
    write_list(work + b"/" + TOP, sorted(top))
    write_list(work + b"/" + CARRY, retry)
    print(len(listed), deleted)


def prefetch(S, rels):
    """Asks the kernel to read the listed files ahead, all at once (POSIX_FADV_WILLNEED): rsync
    then reads them from memory, instead of waiting on the disk for one file after the other."""
    for rel in rels:
        st = lstat(join(S, rel))
        if st is None or not stat.S_ISREG(st.st_mode):
            continue  # never opens a device or a FIFO
        try:
            fd = os.open(join(S, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, PREFETCH_MAX, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)


def copy_sparse(src, dst, st):
    """The data extents of src into a new file beside dst (copy_file_range, as cp does), holes
    left as holes, then renamed over dst with src's size and mtime."""
    tmp = dst.rsplit(b"/", 1)
    tmp = tmp[0] + b"/.migrate-sparse." + tmp[1] if len(tmp) == 2 else b".migrate-sparse." + dst
    fs = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            for start, end in data_extents(fs, st.st_size):
                pos = start
                while pos < end:
                    n = os.copy_file_range(fs, fd, end - pos, pos, pos)
                    if n == 0:
                        raise FileNotFoundError(src)  # shrank meanwhile: next time
                    pos += n
            os.ftruncate(fd, st.st_size)
        finally:
            os.close(fd)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        os.rename(tmp, dst)
    finally:
        os.close(fs)


def prepare_one(S, D, rel, src_dirs, dst_dirs, groups, listed):
    """One entry of prepare(); returns how many entries it removed from the destination."""
    deleted = 0
    s = lstat(join(S, rel))
    d = lstat(join(D, rel)) if dst_dirs.ok(rel) else None
    if s is None:
        if d is not None:
            deleted += remove(join(D, rel))
        return deleted
    if d is not None and stat.S_IFMT(d.st_mode) != stat.S_IFMT(s.st_mode):
        deleted += remove(join(D, rel))
        d = None
    # rsync writes listed files in place (--inplace: no temporary file and rename in the downtime),
    # and in place a hard-linked name would hand its new content to the other names of its inode:
    # such a name goes first, and rsync -H links it again if the source still does
    if stat.S_ISREG(s.st_mode) and d is not None and stat.S_ISREG(d.st_mode) and d.st_nlink > 1:
        os.unlink(join(D, rel))
        d = None
    if stat.S_ISDIR(s.st_mode) and d is not None:
        gone = set(os.listdir(join(D, rel))) - set(os.listdir(join(S, rel)))
        for name in gone:
            deleted += remove(join(D, rel) + b"/" + name)
    if stat.S_ISREG(s.st_mode) and s.st_nlink > 1:
        group = groups.setdefault(s.st_ino, set())
        group.add(rel)
        for other in list(group):
            o = lstat(join(S, other)) if src_dirs.ok(other) else None
            if o is not None and o.st_ino == s.st_ino:
                listed.add(other)
            else:
                group.discard(other)
    listed.add(rel)
    return deleted


def walk_verify(S, D, since_ns, work):
    trees = {}

    def load(key, root):
        trees[key] = {rel: st for rel, st in walk(root)}

    threads = [threading.Thread(target=load, args=(k, r)) for k, r in (("src", S), ("dst", D))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    src, dst = trees["src"], trees["dst"]
    changed, differ, groups, links = [], [], {}, {}
    for rel, st in src.items():
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            groups.setdefault(st.st_ino, set()).add(rel)
        if st.st_ctime_ns > since_ns:
            changed.append(rel)
            continue
        d = dst.get(rel)
        try:
            same = d is not None and meta(st, join(S, rel)) == meta(d, join(D, rel))
        except FileNotFoundError:
            same = False
        if same and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            same = links.setdefault(st.st_ino, d.st_ino) == d.st_ino
        if not same:
            differ.append(rel)
    deleted = 0
    for rel in sorted((r for r in dst if r not in src), key=lambda r: r.count(b"/")):
        if lstat(join(D, parent(rel))) is not None:  # not already gone with its directory
            deleted += remove(join(D, rel))
    for rel in differ[:20]:
        print("migrate: differs after pass 1, copied again:", show(rel), file=sys.stderr)
    write_list(work + b"/" + CARRY, changed + differ)
    save_inodes(work, groups)
    write_list(work + b"/" + LIST, [])
    write_list(work + b"/" + TOP, [])
    regular = {st.st_ino: st for st in src.values() if stat.S_ISREG(st.st_mode)}
    print(len(src), deleted, sum(data_bytes(st) for st in regular.values()), sum(st.st_size for st in regular.values()))


def untrusted(work, why):
    with open(work + b"/" + UNTRUSTED, "w") as f:
        f.write(why + "\n")
    sys.exit(3)


def watcher_ok(work, watcher_pid):
    """The reason the record cannot be trusted, or None: its watcher stopped or reported a failure
    (a directory it could not watch, inotify's watch limit)."""
    try:
        with open(b"/proc/%d/cmdline" % watcher_pid, "rb") as f:
            alive = f.read().split(b"\0")[0].endswith(b"inotifywait")
    except (FileNotFoundError, ProcessLookupError):
        alive = False
    with open(work + b"/watcher.err", "rb") as f:
        for line in f.read().split(b"\n"):
            if line and not line.startswith((b"Setting up watches.", b"Watches established.", b"Watching new directory ")):
                return "the change record's watcher reported: " + show(line)
    return None if alive else "the change record's watcher (inotifywait) stopped"


def delta(S, D, work, watcher_pid, mark):
    if os.path.exists(work + b"/" + UNTRUSTED):
        sys.exit(3)
    why = watcher_ok(work, watcher_pid)
    if why:
        untrusted(work, why)
    sentinel = work + b"/sentinel/" + mark
    # the mark: an event on a watched directory outside the source. One inotify queue delivers
    # in order, so once it is in the record, every change made before it is there too.
    os.close(os.open(sentinel, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        with open(work + b"/" + CURSOR, "rb") as f:
            cursor = int(f.read())
    except FileNotFoundError:
        cursor = 0
    needle, deadline, data = b"\0" + sentinel + b"\0", time.monotonic() + 60, b""
    with open(work + b"/" + RECORD, "rb") as f:
        while True:
            f.seek(cursor)
            data = f.read()
            end = data.find(needle)
            if end >= 0:
                data = data[: end + len(needle)]
                break
            why = watcher_ok(work, watcher_pid) or (time.monotonic() > deadline and "the change record did not show its mark within 60 s")
            if why:
                untrusted(work, why)
            time.sleep(0.002)
    why = watcher_ok(work, watcher_pid)
    if why:
        untrusted(work, why)
    fields = data.split(b"\0")[:-1]
    if len(fields) % 2:
        untrusted(work, "the change record is malformed")
    prefix = S + b"/"
    rels, newdirs = set(), set()
    for events, path in zip(fields[::2], fields[1::2]):
        kinds = set(events.split(b","))
        if path.startswith(work + b"/sentinel/"):
            continue
        if b"Q_OVERFLOW" in kinds:
            untrusted(work, "the change record overflowed (inotify's queue, fs.inotify.max_queued_events)")
        if b"UNMOUNT" in kinds or len(path) >= MAX_EVENT_PATH or not path.startswith(prefix):
            untrusted(work, "the change record has an event it cannot place: " + show(events) + " " + show(path))
        rel = path[len(prefix) :].rstrip(b"/") or b"."
        if rel == b"." and kinds & {b"DELETE_SELF", b"MOVE_SELF"}:
            untrusted(work, "the source directory itself was moved or deleted")
        if b"ISDIR" in kinds and kinds & {b"CREATE", b"MOVED_TO"}:
            newdirs.add(rel)
        rels.add(rel)
    with open(work + b"/" + CURSOR, "wb") as f:
        f.write(b"%d" % (cursor + len(data)))
    prepare(S, D, work, rels, newdirs, load_inodes(work))


def scan(S, D, work, since_ns):
    rels, groups = set(), {}
    for rel, st in walk(S):
        if st.st_ctime_ns > since_ns:
            rels.add(rel)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            groups.setdefault(st.st_ino, set()).add(rel)
    prepare(S, D, work, rels, (), groups)


def verify(S, D, work, mode):
    rels = read_list(work + b"/" + LIST) + read_list(work + b"/" + HOLES) + read_list(work + b"/" + SPARSE) + read_list(work + b"/" + TOP)
    src_dirs, dst_dirs = RealDirs(S), RealDirs(D)
    bad, links, regular = [], {}, {}
    for rel in rels:
        s, d = join(S, rel), join(D, rel)
        ss = lstat(s) if src_dirs.ok(rel) else None
        ds = lstat(d) if dst_dirs.ok(rel) else None
        try:
            if ss is None:
                if ds is not None:
                    bad.append((rel, "exists only in the destination"))
            elif ds is None:
                bad.append((rel, "missing in the destination"))
            elif meta(ss, s) != meta(ds, d):
                bad.append((rel, "metadata"))
            elif xattrs(s) != xattrs(d):
                bad.append((rel, "xattrs or ACLs"))
            elif stat.S_ISREG(ss.st_mode) and not same_content(s, d, ss.st_size):
                bad.append((rel, "content"))
            elif stat.S_ISDIR(ss.st_mode) and set(os.listdir(s)) != set(os.listdir(d)):
                bad.append((rel, "directory entries"))
            elif stat.S_ISREG(ss.st_mode) and ss.st_nlink > 1 and links.setdefault(ss.st_ino, ds.st_ino) != ds.st_ino:
                bad.append((rel, "hard links"))
        except (FileNotFoundError, NotADirectoryError):
            bad.append((rel, "changed while compared"))
        if ss is not None and stat.S_ISREG(ss.st_mode):
            regular[ss.st_ino] = ss
    data = sum(data_bytes(st) for st in regular.values())
    if mode == "live":
        write_list(work + b"/" + CARRY, [rel for rel, _ in bad])
        print(len(rels), data)
        return
    for rel, why in bad[:50]:
        print(f"migrate: differs ({why}):", show(rel), file=sys.stderr)
    if bad:
        sys.exit(1)
    print(len(rels), data)


def holders(S, exclude):
    """The pids, other than ours and `exclude`, with a file, working directory, root or memory
    mapping under S."""
    own = {os.getpid(), os.getppid(), *exclude}
    found = set()
    for pid in os.listdir(b"/proc"):
        if not pid.isdigit() or int(pid) in own:
            continue
        base = b"/proc/" + pid
        links = [base + b"/cwd", base + b"/root"]
        for sub in (b"/fd", b"/map_files"):
            try:
                links += [base + sub + b"/" + n for n in os.listdir(base + sub)]
            except OSError:
                pass
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target == S or target.startswith(S + b"/"):
                found.add(int(pid))
                break
    return sorted(found)


def check_holders(S, argv):
    """With --stopped PID (the final pass): stop, exit 4 and print them, when any process still
    holds something under S; nothing may change the source while the final pass copies it."""
    if len(argv) == 2 and argv[0] == b"--stopped":
        found = holders(S, [int(argv[1])])
        if found:
            print(" ".join(str(p) for p in found))
            sys.exit(4)


def read_field(stream):
    """One NUL-terminated field, or None at the end of input."""
    field = bytearray()
    while True:
        c = stream.read(1)
        if not c:
            return None
        if c == b"\0":
            return bytes(field)
        field += c


def serve():
    out = sys.stdout
    out.write("ready %d\n" % os.getpid())
    out.flush()
    while True:
        count = read_field(sys.stdin.buffer)
        args = [read_field(sys.stdin.buffer) for _ in range(int(count))] if count else []
        if count is None or None in args:
            return
        printed, rc = io.StringIO(), 0
        with contextlib.redirect_stdout(printed):
            try:
                main([os.fsdecode(a) for a in args])
            except SystemExit as e:
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:  # reported, and the run stops with its own message
                traceback.print_exc()
                rc = 1
        sys.stderr.flush()
        out.write("%d %s\n" % (rc, " ".join(printed.getvalue().split("\n")).strip()))
        out.flush()


def main(argv):
    args = [os.fsencode(a) for a in argv]
    cmd = argv[0] if argv else ""
    if cmd == "serve" and len(args) == 1:
        serve()
    elif cmd == "walk-verify" and len(args) == 5:
        walk_verify(args[1], args[2], int(args[3]), args[4])
    elif cmd == "delta" and len(args) in (6, 8):
        check_holders(args[1], args[6:])
        delta(args[1], args[2], args[3], int(args[4]), args[5])
    elif cmd == "scan" and len(args) in (5, 7):
        check_holders(args[1], args[5:])
        scan(args[1], args[2], args[3], int(args[4]))
    elif cmd == "verify" and len(args) == 5 and argv[4] in ("live", "final"):
        verify(args[1], args[2], args[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
