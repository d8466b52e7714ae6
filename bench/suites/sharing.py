#!/usr/bin/env python3
"""Suite 5, sharing: memory with many guests.

A. Page cache: a 200 MiB file read from 1, 2 and 10 guests.  Ten guests hold
   the same file; the page cache ("Cached" in /proc/meminfo, after dropping
   caches) is sampled after the 1st, 2nd and 10th guest's read.  Variants:
   separate copies on ext4 (not unified), the unified pool on ext4, and the
   unified pool through cowfs (FUSE passthrough, its default), cowfs -o
   passthrough=off, kernel overlayfs, rofiles-fuse and libfuse's
   passthrough_hp (passthrough on).  "Cached" counts every page cache page,
   the FUSE inodes' and the backing ext4 files' alike.
B. One program (perl with POSIX loaded, sleeping) started at once from N
   guest roots (chroot), N = 1, 10, 25, 50 copies of bookworm-min1 (apt lists
   left out): sum of RSS, sum of PSS (smaps_rollup) and the growth of used
   memory (MemTotal - MemFree, page cache included) from a dropped-cache
   start.  Not unified vs unified, on ext4 and through the mounts.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402
import mounts as M  # noqa: E402

FILE_MB = 200
NS = [int(x) for x in os.environ.get("SHARING_NS", "1,10,25,50").split(",")]
PROGRAM = ["/usr/bin/perl", "-MPOSIX", "-e", "sleep 600"]
VIEWS = ["overlayfs", "cowfs", "rofiles-fuse"]
# Page cache (A) also through these: one shared ext4 inode either way, but
# without passthrough each FUSE inode holds pages of its own.
VIEWS_A = ["overlayfs", "cowfs", "cowfs-nopt", "passthrough_hp", "rofiles-fuse"]


def meminfo():
    m = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            m[k] = int(v.split()[0])
    return m


def cached_mib():
    return meminfo()["Cached"] / 1024.0


def page_cache(src, sep, scratch, status, copies):
    rows = []

    def measure(name, paths):
        samples = {1: [], 2: [], 10: []}
        for _ in range(B.RUNS):
            B.drop_caches()
            c0 = cached_mib()
            for i, p in enumerate(paths, 1):
                B.sh("cat '%s' > /dev/null" % p)
                if i in samples:
                    samples[i].append(cached_mib() - c0)
        copies[name] = [B.stats(samples[k])["median"] / FILE_MB for k in (1, 2, 10)]
        rows.append([name] + ["%.0f (%.0f–%.0f)" % (s["median"], s["min"], s["max"]) +
                              " = %.2f copies" % (s["median"] / FILE_MB)
                              for s in (B.stats(samples[k]) for k in (1, 2, 10))])
        B.log("sharing: page cache %s %s" % (name, rows[-1][1:]))

    measure("separate copies (ext4)", [os.path.join(sep, "s%02d" % i, "big") for i in range(1, 11)])
    measure("unified, ext4", [os.path.join(src, "g%02d" % i, "big") for i in range(1, 11)])
    for tool in VIEWS_A:
        if status.get(tool):
            rows.append([tool, status[tool], "", ""])
            continue
        try:
            p, um = M.mount(tool, src, scratch)
        except Exception as e:  # noqa: BLE001
            rows.append([tool, "failed to mount: %s" % e, "", ""])
            continue
        try:
            measure(tool + " (unified pool)", [os.path.join(p, "g%02d" % i, "big") for i in range(1, 11)])
        finally:
            um()
    return {"title": "A. Page cache growth (MiB) reading one %d MiB file from 1, 2, 10 guests" % FILE_MB,
            "columns": ["variant", "1 guest", "2 guests", "10 guests"], "rows": rows}


def smaps(pid):
    r = {"Rss": 0, "Pss": 0}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k = line.split(":")[0]
                if k in r:
                    r[k] = int(line.split()[1])
    except OSError:
        pass
    return r


def start_many(root, n):
    """Start PROGRAM chrooted in n guest roots under root; returns figures."""
    B.drop_caches()
    used0 = meminfo()
    procs = []
    for i in range(1, n + 1):
        g = os.path.join(root, "m%02d" % i)
        procs.append(subprocess.Popen(["chroot", g] + PROGRAM, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    time.sleep(1.0 + 0.05 * n)
    alive = sum(1 for p in procs if p.poll() is None)
    rss = pss = 0
    for p in procs:
        s = smaps(p.pid)
        rss += s["Rss"]
        pss += s["Pss"]
    m = meminfo()
    used = ((m["MemTotal"] - m["MemFree"]) - (used0["MemTotal"] - used0["MemFree"])) / 1024.0
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    return {"alive": alive, "rss_mib": rss / 1024.0, "pss_mib": pss / 1024.0, "used_mib": used}


def programs(mpool, scratch, status, unified):
    rows = []
    views = ["ext4"] + (VIEWS if unified else [])
    for view in views:
        if view != "ext4" and status.get(view):
            rows.append(["unified" if unified else "not unified", view, status[view]] + [""] * (len(NS) - 1))
            continue
        if view == "ext4":
            root, um = mpool, (lambda: None)
        else:
            try:
                root, um = M.mount(view, mpool, scratch)
            except Exception as e:  # noqa: BLE001
                rows.append(["unified", view, "failed to mount: %s" % e] + [""] * (len(NS) - 1))
                continue
        cells = []
        try:
            for n in NS:
                r = start_many(root, n)
                cells.append("%d alive: RSS %.0f, PSS %.0f, used +%.0f" % (r["alive"], r["rss_mib"],
                                                                           r["pss_mib"], r["used_mib"]))
                B.log("sharing: %s %s N=%d %s" % ("unified" if unified else "copies", view, n, r))
        finally:
            um()
        rows.append(["unified" if unified else "not unified", view] + cells)
    return rows


def main():
    B.need_ext4(B.WORK)
    src = os.path.join(B.WORK, "sharing-src")
    sep = os.path.join(B.WORK, "sharing-sep")
    mpool = os.path.join(B.WORK, "sharing-many")
    scratch = os.path.join(B.WORK, "sharing-mnt")
    status = {t: M.available(t) for t in VIEWS_A}
    # A: ten guests holding one 200 MiB file, unified; and ten separate copies.
    for d in (src, sep):
        B.rm_tree(d)
        os.makedirs(d)
    big = os.path.join(B.WORK, "sharing-big")
    with open(big, "wb") as f:
        rnd = random.Random(200)
        for _ in range(FILE_MB):
            f.write(rnd.randbytes(1 << 20))
    for i in range(1, 11):
        for d, pre in ((src, "g"), (sep, "s")):
            os.makedirs(os.path.join(d, "%s%02d" % (pre, i)))
            B.sh("cp -a %s %s" % (big, os.path.join(d, "%s%02d" % (pre, i), "big")))
    os.unlink(big)
    B.sh("%s unify -q %s" % (B.VUNIFY, src))
    copies = {}
    tables = [page_cache(src, sep, scratch, status, copies)]
    B.rm_tree(src)
    B.rm_tree(sep)
    # B: N guest roots.
    tmpl = os.path.join(B.WORK, "sharing-template")
    B.rm_tree(tmpl)
    B.sh("cp -a %s %s" % (os.path.join(B.GUESTS, "bookworm-min1"), tmpl))
    B.sh("rm -rf %s/var/lib/apt/lists/* %s/var/cache/apt/*.bin" % (tmpl, tmpl))
    B.rm_tree(mpool)
    os.makedirs(mpool)
    nmax = max(NS)
    for i in range(1, nmax + 1, 2):
        ps = [subprocess.Popen(["cp", "-a", tmpl, os.path.join(mpool, "m%02d" % j)])
              for j in (i, i + 1) if j <= nmax]
        for p in ps:
            p.wait()
    B.rm_tree(tmpl)
    B.log("sharing: %d guest roots made" % nmax)
    rows = programs(mpool, scratch, status, unified=False)
    B.sh("%s unify -q %s" % (B.VUNIFY, mpool))
    rows += programs(mpool, scratch, status, unified=True)
    B.rm_tree(scratch)
    B.rm_tree(mpool)
    tables.append({"title": "B. `%s` started from N guest roots at once (MiB)" % " ".join(PROGRAM),
                   "columns": ["pool", "served by"] + ["N = %d" % n for n in NS], "rows": rows})
    B.write_results("sharing", {
        "cowfs": B.binary_info(B.COWFS), "vunify": B.binary_info(B.VUNIFY),
        "copies": copies, "tables": tables, "status": {t: s for t, s in status.items() if s},
        "note": "Page cache is `Cached` of /proc/meminfo after `drop_caches`; \"copies\" is "
                "the growth divided by the file size (1 = the file is in memory once). In B, "
                "*used* is the growth of MemTotal − MemFree (processes and page cache) from a "
                "dropped-cache start; PSS divides each shared page among the processes mapping "
                "it, so PSS ≪ RSS means the guests' programs share their pages."})


if __name__ == "__main__":
    main()
