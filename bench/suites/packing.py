#!/usr/bin/env python3
"""Suite 3, packing: the paper's "phone booth".  Guests are added to one pool
one by one, each a full `cp -a` copy of the bookworm-min1 guest (apt lists and
apt's binary caches left out, as `apt-get clean` images ship) plus a few
package-like changes of its own (hostname, a dpkg status stanza, a user, a
private "package" of five small files, and one of ten shared "packages" of
1 MiB), and `vunify unify POOL gN` runs after each addition.  Per guest N:
  unify_s        wall time of unifying guest N into the pool
  marginal_kib   what guest N adds to the disk: blocks of its inodes that no
                 other guest shares (non-regular inodes, files with nlink 1,
                 CoW links whose only other link is the pool's object)
Every STRIDE guests: du -s of the whole pool, a whole-pool rerun
(`vunify unify POOL`, the nightly case at N guests) and, right after it, a
warm stat walk of the pool (`find -printf`), its limit.
Copies are made ahead in batches of BATCH (two cp at once, outside the pool,
not timed) and renamed into the pool one at a time.
Environment: PACKING_GUESTS (default 300), PACKING_STRIDE (25).
"""
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

N_GUESTS = int(os.environ.get("PACKING_GUESTS", "300"))
STRIDE = int(os.environ.get("PACKING_STRIDE", "25"))
BATCH = 10
BASE = "bookworm-min1"


def customise(g, n):
    rnd = random.Random(n)
    with open(os.path.join(g, "etc/hostname"), "w") as f:
        f.write("guest%d\n" % n)
    with open(os.path.join(g, "etc/passwd"), "a") as f:
        f.write("web%d:x:%d:%d::/home/web%d:/bin/sh\n" % (n, 2000 + n, 2000 + n, n))
    with open(os.path.join(g, "var/lib/dpkg/status"), "a") as f:
        f.write("\nPackage: benchpkg-%d\nStatus: install ok installed\nVersion: 1.%d\n"
                "Architecture: all\nDescription: bench package\n" % (n, n))
    priv = os.path.join(g, "usr/share/benchpkg-%d" % n)
    os.makedirs(priv)
    for i in range(5):
        with open(os.path.join(priv, "file%d" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(4096, 65536)))
    k = n % 10
    shared = os.path.join(g, "usr/lib/benchlib-%d" % k)
    os.makedirs(shared)
    with open(os.path.join(shared, "libbench%d.so" % k), "wb") as f:
        f.write(random.Random(10_000 + k).randbytes(1 << 20))


def marginal_kib(g):
    """Blocks of guest g that no other guest shares: non-regular inodes, and
    regular inodes whose every link is inside g, not counting the pool's
    object link of a CoW link.  Each inode counted once."""
    b = 0
    seen = {}
    for p, st in B.walk_files(g):
        if (st.st_mode & 0o170000) != 0o100000:
            b += st.st_blocks * 512
            continue
        k = st.st_ino
        if k in seen:
            seen[k][0] += 1
        else:
            seen[k] = [1, st.st_nlink, st.st_blocks, p]
    for paths, nlink, blocks, p in seen.values():
        if paths >= nlink:
            b += blocks * 512
        elif paths == nlink - 1:
            try:
                os.getxattr(p, "trusted.cowlink", follow_symlinks=False)
                b += blocks * 512
            except OSError:
                pass
    return b // 1024


def stage(staging, template, ns):
    procs = []
    for n in ns:
        dst = os.path.join(staging, "g%03d" % n)
        B.rm_tree(dst)
        procs.append((n, dst, subprocess.Popen(["cp", "-a", template, dst])))
        if len(procs) % 2 == 0:
            for _, _, p in procs[-2:]:
                p.wait()
    for n, dst, p in procs:
        if p.wait() != 0:
            raise RuntimeError("cp -a failed")
        customise(dst, n)


def main():
    B.need_ext4(B.WORK)
    pool = os.path.join(B.WORK, "packing")
    staging = os.path.join(B.WORK, "packing-staging")
    template = os.path.join(B.WORK, "packing-template")
    B.rm_tree(template)
    B.sh("cp -a %s %s" % (os.path.join(B.GUESTS, BASE), template))
    B.sh("rm -rf %s/var/lib/apt/lists/* %s/var/cache/apt/*.bin" % (template, template))
    base_kib = B.du_kib([template])[0]
    free_kib = shutil.disk_usage(B.WORK).free // 1024
    need = base_kib * (BATCH + 2) + N_GUESTS * 8 * 1024
    if free_kib < need:
        sys.exit("bench: packing needs ~%d MiB free on %s, has %d" % (need // 1024, B.WORK,
                                                                      free_kib // 1024))
    B.rm_tree(pool)
    B.rm_tree(staging)
    os.makedirs(pool)
    os.makedirs(staging)
    per = []
    pool_samples = []
    for start in range(1, N_GUESTS + 1, BATCH):
        batch = list(range(start, min(start + BATCH, N_GUESTS + 1)))
        stage(staging, template, batch)
        for n in batch:
            name = "g%03d" % n
            os.rename(os.path.join(staging, name), os.path.join(pool, name))
            os.sync()       # time unify, not the writeback of the copies
            t = B.timed([B.VUNIFY, "unify", "-q", pool, name])
            row = {"n": n, "unify_s": t["wall"], "cpu_s": round(t["user"] + t["sys"], 3),
                   "rss_kib": t["rss_kib"], "rc": t["rc"],
                   "marginal_kib": marginal_kib(os.path.join(pool, name))}
            per.append(row)
            if n in (1, 2) or n % STRIDE == 0 or n == N_GUESTS:
                r = B.timed([B.VUNIFY, "unify", "-q", pool])
                walk = B.timed_sh("find %s -printf '%%s\\n' > /dev/null" % pool)
                total = B.du_kib([pool])[0]
                pool_samples.append({"n": n, "pool_kib": total, "rerun_s": r["wall"],
                                     "rerun_cpu_s": round(r["user"] + r["sys"], 3),
                                     "rerun_rss_kib": r["rss_kib"], "rc": r["rc"],
                                     "stat_walk_s": walk["wall"]})
                B.log("packing: N=%d unify %.2fs marginal %d KiB pool %d KiB rerun %.2fs "
                      "(stat walk %.2fs)" % (n, row["unify_s"], row["marginal_kib"], total,
                                             r["wall"], walk["wall"]))
    B.write_results("packing", {"base": BASE + " without apt lists and caches", "base_kib": base_kib, "guests": N_GUESTS,
                                "stride": STRIDE, "per_guest": per, "pool": pool_samples})
    B.log("packing: removing the pool")
    B.rm_tree(staging)
    B.rm_tree(pool)
    B.rm_tree(template)


if __name__ == "__main__":
    main()
