#!/usr/bin/env python3
"""Suite 4, cowfs: one unified pool (bookworm-min1 + bookworm-full, plus
bench files) served by native ext4 (the limit), kernel overlayfs, cowfs
(default: FUSE passthrough), cowfs -o passthrough=off ("cowfs-nopt"), cowfs
-o io_uring ("cowfs-uring", passthrough on), libfuse's passthrough_hp example
(passthrough on, its default) with and without -o io_uring, and the other
FUSE peers (bindfs, fuse-overlayfs, unionfs-fuse -o cow, rofiles-fuse
--copyup, libfuse's passthrough_ll example).  Per repetition each tool gets a
fresh mount and runs every workload; tools are interleaved.  The kernel's
fuse.enable_uring is put back as it was found.
Workloads (time, lower is better):
  walk_warm / walk_cold  find over both guests, one stat per entry; walk_warm
                         is the walk right after a first (warm-up) walk
  walk_steady_warm       the walk after that: through FUSE the second walk
                         still pays one GETATTR per directory (the kernel
                         invalidates a directory's atime after an uncached
                         READDIR), the third needs no request at all
  tar_cold               tar of both guests piped to cat
  seq2g_cold / _warm     dd of a 2 GiB file, 1 MiB blocks: cold, then the
  / _warm2               first and the second warm re-read
  extract_sync           untar ~10k small files (two guests' usr/share) + sync
  rand4k_warm            fio 4k random reads (psync) on a 256 MiB file: µs/IO
  first_write_1m/_100m   open a shared 1 MB / 100 MB file for writing, write
                         one byte, close: ms.  The file is a CoW link for
                         cowfs, fuse-overlayfs and unionfs-fuse, a plain
                         hard link for kernel overlayfs (its copy-up of an
                         immutable file fails with EPERM) and rofiles-fuse
                         (it cannot rename over an immutable file);
                         "native" is the durable floor of a copy-up:
                         copy_file_range of the file (with its mode,
                         owner and times) into a new temporary name in
                         the same directory, rename over the old name,
                         then the write.  No fsync, like cowfs's copy-up:
                         ext4's auto_da_alloc starts the data's writeback
                         at a rename over an existing name, so after a
                         power cut the name holds the old or the complete
                         new content.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402
import mounts as M  # noqa: E402

GUESTS = ["bookworm-min1", "bookworm-full"]
# COWFS_SKIP: tools to leave out of a run (native, the limit, always runs).
TOOLS = [t for t in ["native", "overlayfs", "cowfs"] + M.COWFS_VARIANTS + M.HP_PEERS + M.FUSE_PEERS
         if t == "native" or t not in os.environ.get("COWFS_SKIP", "").split(",")]
FIO_SECONDS = int(os.environ.get("FIO_SECONDS", "4"))
# Tools that cannot copy up an immutable CoW link (seen here: kernel overlayfs
# fails the open with EPERM, rofiles-fuse cannot rename over it); they are
# given a plain hard link instead.
PLAIN_LINK = ["overlayfs", "rofiles-fuse"]
UNITS = {"rand4k_warm": "µs/IO", "first_write_1m": "ms", "first_write_100m": "ms"}


def prepare(src, tarball):
    B.log("cowfs: preparing %s" % src)
    B.fresh_pool(src, GUESTS)
    b = os.path.join(src, "bench")
    b2 = os.path.join(src, "bench2")
    os.makedirs(b)
    os.makedirs(b2)
    B.sh("dd if=/dev/zero of=%s/big2g bs=1M count=2048 status=none" % b)
    B.sh("head -c 256M /dev/urandom > %s/fio.dat" % b)
    for name, mb in (("cow1m", 1), ("cow100m", 100)):
        B.sh("head -c %dM /dev/urandom > %s/%s && cp -a %s/%s %s/%s" % (mb, b, name, b, name, b2, name))
    B.sh("%s unify -q %s" % (B.VUNIFY, src))
    reset_links(src)
    if not os.path.exists(tarball):
        B.sh("tar cf %s -C %s bookworm-full/usr/share -C %s bullseye-min/usr/share"
             % (tarball, B.GUESTS, B.GUESTS))
    os.sync()


def reset_links(src):
    """Put the shared files back after a copy-up changed them."""
    b = os.path.join(src, "bench")
    b2 = os.path.join(src, "bench2")
    for name in ("cow1m", "cow100m"):
        hl = os.path.join(b, "hl" + name[3:])
        for p in (hl, hl + ".link"):
            if os.path.exists(p):
                os.unlink(p)
        shutil.copyfile(os.path.join(b2, name), hl)
        os.link(hl, hl + ".link")
        p = os.path.join(b, name)
        if os.path.exists(p) and os.stat(p).st_nlink == 1:     # copied up: unify again
            os.unlink(p)
            B.sh("cp -a %s %s" % (os.path.join(b2, name), p))
    B.sh("%s unify -q %s" % (B.VUNIFY, src))


def first_write(path):
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, b"x", 0)
    os.close(fd)
    return (time.perf_counter() - t0) * 1000.0


def durable_floor(src_file, scratch):
    """What a crash-safe private copy costs on native ext4 (ms): copy the
    file into a temporary name beside the old one, rename over it, write
    the byte.  The old name exists (empty: making a full copy would warm
    the source's cache, which the tools read cold)."""
    os.makedirs(scratch, exist_ok=True)
    old = os.path.join(scratch, "floor")
    tmp = os.path.join(scratch, ".floor.tmp")
    open(old, "w").close()
    t0 = time.perf_counter()
    sfd = os.open(src_file, os.O_RDONLY)
    dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    st = os.fstat(sfd)
    while os.copy_file_range(sfd, dfd, 1 << 30):
        pass
    os.fchown(dfd, st.st_uid, st.st_gid)
    os.fchmod(dfd, st.st_mode & 0o7777)
    os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.close(dfd)
    os.close(sfd)
    os.rename(tmp, old)
    fd = os.open(old, os.O_WRONLY)
    os.pwrite(fd, b"x", 0)
    os.close(fd)
    ms = (time.perf_counter() - t0) * 1000.0
    os.unlink(old)
    return ms


def fio_us(path):
    r = B.sh("fio --name=r --filename=%s --rw=randread --bs=4k --size=256M --ioengine=psync --invalidate=0 "
             "--runtime=%d --time_based --output-format=json" % (path, FIO_SECONDS),
             timeout=FIO_SECONDS + 120)
    iops = json.loads(r.stdout)["jobs"][0]["read"]["iops"]
    return 1e6 / iops if iops else None


def run_tool(tool, p, src, scratch, tarball, done=lambda key: None):
    """All workloads on served path p; returns {workload: value}.  done(key)
    is called after each workload (bench/cowfs-requests counts the requests
    of each from the daemon's -d log)."""
    out = {}
    guests = " ".join(os.path.join(p, g) for g in GUESTS)

    def t(cmd, key, cold=False):
        if cold:
            B.drop_caches()
        r = B.timed_sh(cmd)
        out[key] = r["wall"] if r["rc"] == 0 else "failed (rc %d)" % r["rc"]
        done(key)

    B.timed_sh("find %s -printf '%%s\\n' > /dev/null" % guests)          # warm-up
    done("walk_first")
    t("find %s -printf '%%s\\n' > /dev/null" % guests, "walk_warm")
    t("find %s -printf '%%s\\n' > /dev/null" % guests, "walk_steady_warm")
    t("find %s -printf '%%s\\n' > /dev/null" % guests, "walk_cold", cold=True)
    t("tar cf - -C %s %s | cat > /dev/null" % (p, " ".join(GUESTS)), "tar_cold", cold=True)
    t("dd if=%s/bench/big2g of=/dev/null bs=1M status=none" % p, "seq2g_cold", cold=True)
    t("dd if=%s/bench/big2g of=/dev/null bs=1M status=none" % p, "seq2g_warm")
    t("dd if=%s/bench/big2g of=/dev/null bs=1M status=none" % p, "seq2g_warm2")
    x = os.path.join(p, "bench", "x")
    os.makedirs(x, exist_ok=True)
    t("tar xf %s -C %s && sync" % (tarball, x), "extract_sync")
    B.sh("rm -rf %s" % x, check=False)
    done("extract_cleanup")
    B.sh("cat %s/bench/fio.dat > /dev/null" % p)
    done("fio_warmup")
    try:
        out["rand4k_warm"] = fio_us(os.path.join(p, "bench", "fio.dat"))
    except Exception as e:  # noqa: BLE001 - a peer failing must not stop the suite
        out["rand4k_warm"] = "failed (%s)" % type(e).__name__
    done("rand4k_warm")
    for name, key in (("1m", "first_write_1m"), ("100m", "first_write_100m")):
        try:
            if tool == "native":
                out[key] = durable_floor(os.path.join(src, "bench", "cow" + name), scratch)
            elif tool not in M.COPYUP:
                out[key] = "no copy-up"
            else:
                f = ("hl" if tool in PLAIN_LINK else "cow") + name
                out[key] = first_write(os.path.join(p, "bench", f))
        except OSError as e:
            out[key] = "failed (%s)" % (os.strerror(e.errno) if e.errno else e)
        done(key)
    return out


def main():
    B.need_ext4(B.WORK)
    src = os.path.join(B.WORK, "cowfs-src")
    scratch = os.path.join(B.WORK, "cowfs-mnt")
    tarball = os.path.join(B.WORK, "small-files.tar")
    prepare(src, tarball)
    status = {t: M.available(t) for t in TOOLS}
    uring = M.uring_param()
    try:
        samples, notes = measure(src, scratch, tarball, status)
    finally:
        if uring is not None and M.uring_param() != uring:
            M.set_uring_param(uring)
    report(src, scratch, status, samples, notes)


def measure(src, scratch, tarball, status):
    samples = {}
    notes = {}
    for rep in range(B.RUNS):
        for tool in TOOLS:
            if status[tool]:
                continue
            B.log("cowfs: rep %d/%d %s" % (rep + 1, B.RUNS, tool))
            reset_links(src)
            try:
                p, umount = M.mount(tool, src, scratch)
            except Exception as e:  # noqa: BLE001
                status[tool] = "failed to mount: %s" % e
                continue
            try:
                res = run_tool(tool, p, src, scratch, tarball)
            finally:
                umount()
            for wl, v in res.items():
                if isinstance(v, str):
                    notes.setdefault(wl, {})[tool] = v
                else:
                    samples.setdefault(wl, {}).setdefault(tool, []).append(v)
            B.log("cowfs: %s %s" % (tool, {k: (round(v, 3) if not isinstance(v, str) else v)
                                           for k, v in res.items()}))
    return samples, notes


def report(src, scratch, status, samples, notes):
    wls = ["walk_warm", "walk_steady_warm", "walk_cold", "tar_cold", "seq2g_cold", "seq2g_warm", "seq2g_warm2",
           "extract_sync",
           "rand4k_warm", "first_write_1m", "first_write_100m"]
    table = {}
    for wl in wls:
        row = {}
        for tool in TOOLS:
            if status[tool]:
                row[tool] = status[tool]
            elif tool in samples.get(wl, {}):
                row[tool] = B.stats(samples[wl][tool])
            else:
                row[tool] = notes.get(wl, {}).get(tool, "–")
        table[wl] = row
    entries = int(B.sh("find %s | wc -l" % " ".join(os.path.join(src, g) for g in GUESTS)).stdout)
    B.rm_tree(scratch)
    if os.environ.get("COWFS_KEEP_SRC") != "1":      # bench/cowfs-requests reuses it
        B.rm_tree(src)
    # COWFS_RESULTS: another results name for a side run (e.g. cowfs-haltpoll)
    B.write_results(os.environ.get("COWFS_RESULTS", "cowfs"), {
        "tools": TOOLS, "workloads": table, "units": UNITS,
        "status": {t: s for t, s in status.items() if s},
        "cowfs": B.binary_info(B.COWFS), "vunify": B.binary_info(B.VUNIFY),
        "tree_entries": entries,
        "note": "Tree: %s (%d entries). first_write: the native column is the durable floor of "
                "a copy-up (copy_file_range into a temporary name beside the old one, rename "
                "over it, then the write; no fsync: like cowfs's copy-up it relies on ext4's "
                "auto_da_alloc flush at a rename over an existing name); bindfs, passthrough_ll "
                "and passthrough_hp write in place; "
                "kernel overlayfs and rofiles-fuse are given a plain hard link, since they "
                "fail on an immutable CoW link (EPERM)."
                % (" + ".join(GUESTS), entries),
        "guest_halt_poll_ns": read_param(HALTPOLL),
        "versions": {p: B.pkg_version(p) for p in ("bindfs", "fuse-overlayfs", "unionfs-fuse",
                                                   "ostree", "libfuse3-dev", "fio")}})


HALTPOLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"


def read_param(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


if __name__ == "__main__":
    main()
