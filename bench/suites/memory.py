#!/usr/bin/env python3
"""Suite 6, memory: what a FUSE daemon holds while serving a large pool, and
whether it gives it back when the kernel forgets (issue #11, "daemon memory
is bounded").

The pool: MEMORY_GUESTS guests (default 100), alternately `cp -a` copies of
bookworm-min1 and bookworm-full (apt lists and apt's binary caches left out,
as `apt-get clean` images ship), each with the packing suite's small
per-guest changes (hostname, a user, a dpkg stanza, a private "package" of
five files, one of ten shared 1 MiB "packages").  Copies are made in batches
of ten outside the pool and unified into it with `vunify unify POOL g...`
after each batch, so the disk never holds more than ten plain copies.
Every regular file then is a CoW link shared by the guests of its template;
directories, symlinks, devices and empty files stay private to each guest.

Each tool serves the pool at one mountpoint and, with its daemon's VmRSS,
VmHWM (/proc/PID/status) and open fds (/proc/PID/fd) sampled every
SAMPLE_S seconds:
  walk1    `find` over every guest, one stat per entry (caches dropped first)
  walk2    the same walk again
  forget1  `sync; echo 2 > /proc/sys/vm/drop_caches`: the kernel drops its
           unused dentries and inodes and sends FORGETs for them; we wait
           until the daemon's RSS and fd count stop moving
  walk3    the walk once more (does memory come back to the same peak, or
           grow: a leak would show here)
  forget2  forget again (MEMORY_REWALKS: how many walk + forget cycles
           follow forget1, default 3)
At each checkpoint also: how many drop_caches other jobs ran meanwhile
(vmstat drop_slab; each makes the kernel forget inodes mid-step), the
kernel's FUSE inodes (active `fuse_inode` slab objects, machine-wide, minus
what there was before the mount) and, for
cowfs, its own count of the inodes and fds it holds and of the heap bytes
malloc has handed out (`kill -USR1`, one "stats:" line on its stderr).
Environment: MEMORY_GUESTS (100), MEMORY_TOOLS (cowfs,passthrough_ll,
fuse-overlayfs,bindfs), MEMORY_KEEP_POOL=1 keeps the pool for another run,
MEMORY_TRIM_DIAG=0 skips the last step for cowfs: after forget2, gdb makes
the daemon call malloc_trim(0), to tell free heap that glibc keeps from
memory the daemon still uses (needs gdb).
"""
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import mounts as M  # noqa: E402
from packing import customise  # noqa: E402

N_GUESTS = int(os.environ.get("MEMORY_GUESTS", "100"))
TOOLS = os.environ.get("MEMORY_TOOLS", "cowfs,passthrough_ll,fuse-overlayfs,bindfs").split(",")
TEMPLATES = ["bookworm-min1", "bookworm-full"]
BATCH = 10
SAMPLE_S = 0.5
WALK_TIMEOUT = int(os.environ.get("MEMORY_WALK_TIMEOUT", "3600"))
TRIM_DIAG = os.environ.get("MEMORY_TRIM_DIAG", "1") == "1" and bool(shutil.which("gdb"))
REWALKS = int(os.environ.get("MEMORY_REWALKS", "3"))
PHASES = ["mounted", "walk1", "walk2", "forget1"]
for _i in range(REWALKS):
    PHASES += ["walk%d" % (_i + 3), "forget%d" % (_i + 2)]


def guest_name(n):
    return "g%03d" % n


# ---------------------------------------------------------------- the pool

def make_templates(work):
    out = []
    for t in TEMPLATES:
        d = os.path.join(work, "memory-template-" + t)
        B.rm_tree(d)
        B.sh("cp -a %s %s" % (os.path.join(B.GUESTS, t), d))
        B.sh("rm -rf %s/var/lib/apt/lists/* %s/var/cache/apt/*.bin" % (d, d))
        out.append(d)
    return out


def build_pool(pool, staging, templates):
    B.rm_tree(pool)
    B.rm_tree(staging)
    os.makedirs(pool)
    os.makedirs(staging)
    unify_s = []
    for start in range(1, N_GUESTS + 1, BATCH):
        names = []
        procs = []
        for n in range(start, min(start + BATCH, N_GUESTS + 1)):
            dst = os.path.join(staging, guest_name(n))
            procs.append((n, dst, subprocess.Popen(["cp", "-a", templates[(n - 1) % len(templates)],
                                                    dst])))
            if len(procs) % 2 == 0:             # two cp at a time
                for _, _, p in procs[-2:]:
                    p.wait()
        for n, dst, p in procs:
            if p.wait() != 0:
                raise RuntimeError("cp -a failed")
            customise(dst, n)
            os.rename(dst, os.path.join(pool, guest_name(n)))
            names.append(guest_name(n))
        t = B.timed([B.VUNIFY, "unify", "-q", pool] + names)
        if t["rc"] != 0:
            raise RuntimeError("vunify unify failed (rc %d)" % t["rc"])
        unify_s.append(t["wall"])
        B.log("memory: pool has %d guests (unify of the batch %.1fs)" % (names and int(names[-1][1:]),
                                                                         t["wall"]))
    B.rm_tree(staging)
    return unify_s


def pool_figures(pool, guests):
    """What the guests hold: paths by type, distinct inodes, CoW links."""
    paths = {"dir": 0, "file": 0, "symlink": 0, "other": 0}
    inodes = {}
    for g in guests:
        for _, st in B.walk_files(os.path.join(pool, g)):
            fmt = st.st_mode & 0o170000
            kind = {0o040000: "dir", 0o100000: "file", 0o120000: "symlink"}.get(fmt, "other")
            paths[kind] += 1
            k = st.st_ino
            if k in inodes:
                inodes[k][1] += 1
            else:
                inodes[k] = [kind, 1, st.st_nlink]
    by_kind = {}
    cow = 0
    for kind, seen, nlink in inodes.values():
        by_kind[kind] = by_kind.get(kind, 0) + 1
        if kind == "file" and nlink > seen:     # the pool's object holds the other link
            cow += 1
    paths["dir"] += len(guests)                 # the guests' roots
    by_kind["dir"] = by_kind.get("dir", 0) + len(guests)
    return {"guests": len(guests), "paths": sum(paths.values()), "paths_by_type": paths,
            "inodes": sum(by_kind.values()), "inodes_by_type": by_kind, "cow_link_inodes": cow,
            "pool_kib": B.du_kib([pool])[0]}


# ---------------------------------------------------------------- watching a daemon

def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, ValueError):
        return None
    return {"rss_kib": out.get("VmRSS"), "hwm_kib": out.get("VmHWM"),
            "threads": out.get("Threads"), "fds": out.get("fds")}


def drop_slab_count():
    """How often anyone on the machine ran `echo 2|3 > drop_caches` (vmstat)."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("drop_slab "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fuse_slab():
    """Active fuse_inode slab objects: the kernel's FUSE inodes, all mounts."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("fuse_inode "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.t0 = time.monotonic()
        self.phase = "mounted"
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            s = proc_status(self.pid)
            if s:
                s["t"] = round(time.monotonic() - self.t0, 2)
                s["phase"] = self.phase
                self.samples.append(s)
            self.stop.wait(SAMPLE_S)


def cowfs_stats(proc, log):
    """Ask cowfs for its stats line (SIGUSR1) and parse it."""
    def lines():
        with open(log, errors="replace") as f:
            return [ln for ln in f if "stats:" in ln]
    before = len(lines())
    proc.send_signal(signal.SIGUSR1)
    for _ in range(100):
        ls = lines()
        if len(ls) > before:
            return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", ls[-1].split("stats:", 1)[1])}
        time.sleep(0.05)
    return None


def settle(pid, max_s=120):
    """Wait until RSS and fds stop moving (4 equal samples 0.5 s apart)."""
    last, same, t0 = None, 0, time.monotonic()
    while time.monotonic() - t0 < max_s:
        s = proc_status(pid)
        cur = s and (s["rss_kib"], s["fds"])
        same = same + 1 if cur == last else 0
        if same >= 4:
            break
        last = cur
        time.sleep(0.5)
    return round(time.monotonic() - t0, 1)


def walk(mp, guests):
    t0 = time.monotonic()
    p = subprocess.run(["find"] + [os.path.join(mp, g) for g in guests] + ["-printf", "%s\\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=WALK_TIMEOUT)
    seen = p.stdout.count(b"\n")
    errs = p.stderr.decode(errors="replace").splitlines()
    kinds = {}
    for e in errs:
        m = re.search(r": ([^:]+)$", e)
        k = m.group(1) if m else e
        kinds[k] = kinds.get(k, 0) + 1
    return {"wall": round(time.monotonic() - t0, 2), "rc": p.returncode, "entries": seen,
            "errors": len(errs), "error_kinds": kinds}


def forget():
    t0 = time.monotonic()
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")
    return round(time.monotonic() - t0, 2)


def run_tool(tool, pool, scratch, guests):
    B.drop_caches()                 # every tool starts from the same cold caches
    slab0 = fuse_slab()
    mp, umount = M.mount(tool, pool, scratch)
    proc = umount.proc
    res = {"checkpoints": {}, "walks": {}}
    sampler = Sampler(proc.pid)
    sampler.start()

    drops = [drop_slab_count()]

    def checkpoint(name, own_drops=0, **extra):
        time.sleep(SAMPLE_S)
        # Another job's drop_caches during this step makes the kernel forget
        # inodes mid-walk (the suites of this repository run it before every
        # cold measurement); say so rather than report a smaller peak silently.
        d = drop_slab_count()
        if d is not None and drops[-1] is not None:
            extra["foreign_drop_caches"] = d - drops[-1] - own_drops
        drops.append(d)
        s = proc_status(proc.pid) or {}
        k = fuse_slab()
        s["kernel_fuse_inodes"] = k - slab0 if k is not None and slab0 is not None else None
        if tool == "cowfs":
            s["daemon"] = cowfs_stats(proc, umount.log)
        s.update(extra)
        res["checkpoints"][name] = s
        B.log("memory: %s %s: %s" % (tool, name, s))

    try:
        checkpoint("mounted")
        for ph in PHASES[1:]:
            sampler.phase = ph
            if ph.startswith("walk"):
                w = walk(mp, guests)
                res["walks"][ph] = w
                checkpoint(ph, walk_s=w["wall"], walk_entries=w["entries"], walk_errors=w["errors"])
            else:
                t = forget()
                waited = settle(proc.pid)
                checkpoint(ph, own_drops=1, drop_caches_s=t, settled_after_s=waited)
            if proc.poll() is not None:
                res["died"] = "exited with %s during %s" % (proc.returncode, ph)
                break
        if tool == "cowfs" and TRIM_DIAG and proc.poll() is None:
            # Diagnosis, not a phase: what of the RSS left after the forgets
            # is free heap that malloc keeps (gdb calls malloc_trim(0) in it)
            r = B.sh("gdb -p %d -batch -nx -ex 'call (int) malloc_trim(0)'" % proc.pid,
                     check=False)
            m = re.search(r"\$1 = (\d+)", r.stdout)
            checkpoint("malloc_trim", malloc_trim_rc=int(m.group(1)) if m else None)
    finally:
        sampler.stop.set()
        sampler.join()
        umount()
    smp = sampler.samples
    res["peak"] = {"hwm_kib": max((s["hwm_kib"] or 0) for s in smp) if smp else None,
                   "rss_kib": max((s["rss_kib"] or 0) for s in smp) if smp else None,
                   "fds": max((s["fds"] or 0) for s in smp) if smp else None,
                   "threads": max((s["threads"] or 0) for s in smp) if smp else None}
    res["samples"] = [[s["t"], PHASES.index(s["phase"]), s["rss_kib"], s["fds"]] for s in smp]
    with open(umount.log, errors="replace") as f:
        tail = [ln.rstrip() for ln in f if "stats:" not in ln][-5:]
    if tail:
        res["daemon_log_tail"] = tail
    return res


def main():
    B.need_ext4(B.WORK)
    for t in TOOLS:
        if t not in M.TOOLS or t in ("native", "overlayfs"):
            sys.exit("bench: memory: unknown FUSE tool %s" % t)
    pool = os.path.join(B.WORK, "memory-pool")
    staging = os.path.join(B.WORK, "memory-staging")
    scratch = os.path.join(B.WORK, "memory-mnt")
    guests = [guest_name(n) for n in range(1, N_GUESTS + 1)]
    keep = os.environ.get("MEMORY_KEEP_POOL") == "1"
    templates = []

    def cleanup(*_):
        B.rm_tree(scratch)          # unmounts first (umount -l) if a daemon is still there
        for d in [staging] + templates + ([] if keep else [pool]):
            B.rm_tree(d)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

    try:
        if keep and all(os.path.isdir(os.path.join(pool, g)) for g in guests) and \
                not os.path.exists(os.path.join(pool, guest_name(N_GUESTS + 1))):
            B.log("memory: reusing the pool at %s (MEMORY_KEEP_POOL=1)" % pool)
            unify_s = None
        else:
            free_kib = os.statvfs(B.WORK).f_bavail * os.statvfs(B.WORK).f_frsize // 1024
            if free_kib < (BATCH + 4) * 300 * 1024 + N_GUESTS * 10 * 1024:
                sys.exit("bench: memory: not enough free space on %s" % B.WORK)
            templates = make_templates(B.WORK)
            t0 = time.monotonic()
            unify_s = build_pool(pool, staging, templates)
            B.log("memory: pool of %d guests built in %.0fs" % (N_GUESTS, time.monotonic() - t0))
            for d in templates:
                B.rm_tree(d)
        figures = pool_figures(pool, guests)
        B.log("memory: pool %s" % figures)
        status = {t: M.available(t) for t in TOOLS}
        results = {}
        for tool in TOOLS:
            if status[tool]:
                continue
            B.log("memory: %s" % tool)
            try:
                results[tool] = run_tool(tool, pool, scratch, guests)
            except Exception as e:  # noqa: BLE001 - a peer failing must not stop the suite
                status[tool] = "failed: %s" % e
                B.log("memory: %s failed: %s" % (tool, e))
        B.write_results("memory", {
            "runs": 1, "tools": [t for t in TOOLS if t in results], "pool": figures,
            "templates": TEMPLATES, "unify_batches_s": unify_s, "sample_s": SAMPLE_S,
            "phases": PHASES, "results": results,
            "status": {t: s for t, s in status.items() if s},
            "nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "cowfs": B.binary_info(B.COWFS),
            "versions": {p: B.pkg_version(p) for p in ("bindfs", "fuse-overlayfs", "libfuse3-dev")}})
    finally:
        cleanup()


if __name__ == "__main__":
    main()
