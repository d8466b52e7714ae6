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
   left out): sum of PSS (smaps_rollup), sum of RSS and the growth of used
   memory (MemTotal - MemFree, page cache included) from a dropped-cache
   start, taken once every program has said it is ready.  Not unified vs
   unified; unified on ext4 (the guests' files are hard links of the pool's
   objects: the baseline, "plain hard links on ext4") and through the
   mounts: one mount of the pool (cowfs with and without passthrough,
   overlayfs, rofiles-fuse) and one cowfs per guest in guest mode (cowfs
   POOL/mNN MOUNTPOINT), with and without passthrough.  BENCH_RUNS
   repetitions, every view in turn in each; the summed PSS of each view is
   divided by the unified ext4 one of the same repetition.

SHARING_TABLES (default A,B) runs some tables only; the others are kept from
the results file as they are.
"""
import os
import json
import random
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402
import mounts as M  # noqa: E402

FILE_MB = 200
NS = [int(x) for x in os.environ.get("SHARING_NS", "1,10,25,50").split(",")]
# The program says when it has loaded (and mapped) everything it needs.
PROGRAM = ["/usr/bin/perl", "-MPOSIX", "-e", "$| = 1; print qq(ready\\n); sleep 600"]
READY_TIMEOUT = 120
# B, unified: the views of the pool, (key, label, tool, one mount per guest?).
# "ext4" is the baseline: the pool read directly, CoW links as plain hard links.
VIEWS = [("ext4", "ext4 (plain hard links)", None, False),
         ("overlayfs", "overlayfs (pool mount)", "overlayfs", False),
         ("cowfs", "cowfs (pool mount)", "cowfs", False),
         ("cowfs-nopt", "cowfs -o passthrough=off (pool mount)", "cowfs-nopt", False),
         ("cowfs-guests", "cowfs, one mount per guest", "cowfs", True),
         ("cowfs-nopt-guests", "cowfs -o passthrough=off, one mount per guest", "cowfs-nopt", True),
         ("rofiles-fuse", "rofiles-fuse (pool mount)", "rofiles-fuse", False)]
PSS_TARGET = 1.02
TABLES = [t.strip().upper() for t in os.environ.get("SHARING_TABLES", "A,B").split(",") if t.strip()]
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


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_ready(procs, timeout):
    """Read each program's "ready" line; returns how many said it in time."""
    deadline = time.monotonic() + timeout
    ready = 0
    for p in procs:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            continue
        if p.stdout.readline().strip() == b"ready":
            ready += 1
    return ready


def start_many(root, n, daemons=()):
    """Start PROGRAM chrooted in n guest roots under root; once all say they
    are ready, sum their RSS and PSS (and the daemons' PSS); returns figures."""
    B.drop_caches()
    used0 = meminfo()
    load = loadavg()
    procs = []
    t0 = time.monotonic()
    try:
        for i in range(1, n + 1):
            g = os.path.join(root, "m%02d" % i)
            procs.append(subprocess.Popen(["chroot", g] + PROGRAM, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL))
        ready = wait_ready(procs, READY_TIMEOUT)
        start_s = time.monotonic() - t0
        time.sleep(0.2)
        alive = sum(1 for p in procs if p.poll() is None)
        rss = pss = 0
        for p in procs:
            s = smaps(p.pid)
            rss += s["Rss"]
            pss += s["Pss"]
        dpss = sum(smaps(d.pid)["Pss"] for d in daemons if d)
        m = meminfo()
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
            p.stdout.close()
    used = ((m["MemTotal"] - m["MemFree"]) - (used0["MemTotal"] - used0["MemFree"])) / 1024.0
    return {"ready": ready, "alive": alive, "rss_mib": rss / 1024.0, "pss_mib": pss / 1024.0,
            "used_mib": used, "daemons_pss_mib": dpss / 1024.0, "start_s": start_s,
            "load1": load}


def serve(view, mpool, scratch):
    """(root, unmount, daemons) for a view of the unified pool."""
    _, _, tool, per_guest = view
    if tool is None:
        return mpool, (lambda: None), []
    if per_guest:
        guests = ["m%02d" % i for i in range(1, max(NS) + 1)]
        root, um = M.mount_guests(tool, mpool, guests, scratch)
        return root, um, um.procs
    root, um = M.mount(tool, mpool, scratch)
    return root, um, [um.proc]


def programs(mpool, scratch, views, samples, failed):
    """One repetition: every view in turn, N = NS each; appends to samples."""
    for view in views:
        key = view[0]
        if key in failed:
            continue
        try:
            root, um, daemons = serve(view, mpool, scratch)
        except Exception as e:  # noqa: BLE001
            failed[key] = "failed to mount: %s" % e
            B.log("sharing: %s %s" % (key, failed[key]))
            continue
        try:
            for n in NS:
                r = start_many(root, n, daemons)
                samples.setdefault(key, {}).setdefault(str(n), []).append(r)
                B.log("sharing: %s N=%d %s" % (key, n, {k: round(v, 2) for k, v in r.items()}))
        finally:
            um()


def med(xs, fmt="%.0f"):
    s = B.stats(xs)
    if not s:
        return "–"
    if s["n"] == 1 or fmt % s["min"] == fmt % s["max"]:
        return fmt % s["median"]
    return (fmt + " (" + fmt + "–" + fmt + ")") % (s["median"], s["min"], s["max"])


def pss_ratios(samples, key, n):
    """Summed PSS of a view over the unified ext4 one, per repetition."""
    base = samples.get("unified|ext4", {}).get(str(n), [])
    mine = samples.get(key, {}).get(str(n), [])
    return [a["pss_mib"] / b["pss_mib"] for a, b in zip(mine, base) if b["pss_mib"]]


def programs_tables(samples, failed, views):
    rows = []
    for pool, key, label in [("not unified", "copies|ext4", "ext4")] + \
            [("unified", "unified|" + v[0], v[1]) for v in views]:
        why = failed.get(key.split("|")[1]) if pool == "unified" else None
        if why:
            rows.append([pool, label, why] + [""] * (len(NS) - 1))
            continue
        cells = []
        for n in NS:
            xs = samples.get(key, {}).get(str(n), [])
            if not xs:
                cells.append("–")
                continue
            bad = [x["ready"] for x in xs if x["ready"] < n]
            cells.append("PSS %s · RSS %s · used %s%s" % (
                med([x["pss_mib"] for x in xs]), med([x["rss_mib"] for x in xs]),
                med([x["used_mib"] for x in xs], "%+.0f"),
                (" (only %s of %d ready)" % ("/".join(map(str, bad)), n)) if bad else ""))
        rows.append([pool, label] + cells)
    nmax = str(max(NS))
    ratio_rows = []
    for v in views[1:]:
        key = "unified|" + v[0]
        if v[0] in failed:
            ratio_rows.append([v[1]] + ["–"] * (len(NS) + 3))
            continue
        rs = {n: pss_ratios(samples, key, n) for n in NS}
        top = B.stats(rs[max(NS)])
        xs = samples.get(key, {}).get(nmax, [])
        target = "–"
        if top and v[0].startswith("cowfs"):
            target = "met" if top["median"] <= PSS_TARGET else "**missed**"
        ratio_rows.append([v[1]] + [med(rs[n], "%.3f") for n in NS] +
                          [target, med([x["daemons_pss_mib"] for x in xs], "%.1f"),
                           med([x["start_s"] for x in xs], "%.2f")])
    return rows, ratio_rows


def make_pool(mpool):
    """max(NS) copies of bookworm-min1 without apt lists, not unified yet."""
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
            if p.wait() != 0:
                raise RuntimeError("cp -a failed")
    B.rm_tree(tmpl)
    B.log("sharing: %d guest roots made" % nmax)


def table_programs(scratch, status):
    mpool = os.path.join(B.WORK, "sharing-many")
    views = VIEWS
    status_b = {v[0]: status[v[2]] for v in views if v[2] and status.get(v[2])}
    t0, loads = B.machine()["date"], [loadavg()]
    samples = {}
    # unified views that cannot run here, keyed as in samples
    ufailed = {"unified|" + k: why for k, why in status_b.items()}
    try:
        make_pool(mpool)
        for run in range(B.RUNS):
            B.log("sharing: B, not unified, repetition %d of %d" % (run + 1, B.RUNS))
            programs(mpool, scratch, [("copies|ext4", "ext4", None, False)], samples, {})
        loads.append(loadavg())
        B.sh("%s unify -q %s" % (B.VUNIFY, mpool))
        uviews = [("unified|" + v[0],) + v[1:] for v in views]
        for run in range(B.RUNS):
            B.log("sharing: B, unified, repetition %d of %d" % (run + 1, B.RUNS))
            programs(mpool, scratch, uviews, samples, ufailed)
            loads.append(loadavg())
    finally:
        B.rm_tree(scratch)
        B.rm_tree(mpool)
    failed = {k.split("|", 1)[1]: why for k, why in ufailed.items()}
    rows, ratio_rows = programs_tables(samples, failed, views)
    loads += [x["load1"] for xs in samples.values() for n in xs.values() for x in n]
    measured = {"date": t0, "until": B.machine()["date"], "runs": B.RUNS,
                "load1_min": min(loads), "load1_max": max(loads),
                "cowfs": B.binary_info(B.COWFS).get("commit"),
                "vunify": B.binary_info(B.VUNIFY).get("commit")}
    prog = " ".join(PROGRAM[:3] + ["'%s'" % PROGRAM[3]])
    tb = {"id": "B", "title": "B. `%s` started from N guest roots at once (MiB, summed over the "
                              "N programs)" % prog,
          "columns": ["pool", "served by"] + ["N = %d" % n for n in NS], "rows": rows,
          "measured": measured,
          "note": "Median (min–max) of %d repetitions; in each, every view in turn. The unified "
                  "pool's guests are made of CoW links, which on ext4 are plain hard links of the "
                  "pool's objects: \"ext4 (plain hard links)\" is the baseline. *One mount per "
                  "guest*: %d cowfs daemons in guest mode, `cowfs POOL/mNN MOUNTDIR/mNN`, each "
                  "program chrooted into its own mount. PSS and RSS are summed over the programs "
                  "(smaps_rollup) once every one of them has printed its ready line; the daemons "
                  "are not in them (see the next table). *used* is the growth of MemTotal − "
                  "MemFree from a dropped-cache start: page cache and daemons included, and "
                  "anything else the machine did meanwhile." % (B.RUNS, max(NS))}
    tr = {"id": "B2", "title": "B2. Summed PSS of the programs ÷ the same guests as plain hard links "
                               "on ext4 (unified pool read directly), per repetition",
          "columns": ["served by"] + ["N = %d" % n for n in NS] +
                     ["≤ %.2f× at N = %d" % (PSS_TARGET, max(NS)),
                      "daemons' PSS at N = %d (MiB)" % max(NS),
                      "start of %d programs (s)" % max(NS)],
          "rows": ratio_rows, "measured": measured}
    ratios = {v[0]: pss_ratios(samples, "unified|" + v[0], max(NS)) for v in views[1:]}
    return [tb, tr], {"samples": samples, "pss_ratio_at_max_n": ratios, "target": PSS_TARGET}


def merge(old_tables, new_tables):
    """Replace the tables measured now, keep the others (matched by id, or
    by the letter before the title's first dot in older files)."""
    def tid(t):
        return t.get("id") or t["title"].split(".", 1)[0]
    new_ids = {tid(t) for t in new_tables}
    # B2 belongs to B: rerunning B replaces both.
    if "B" in new_ids:
        new_ids.add("B2")
    kept = [t for t in old_tables if tid(t) not in new_ids]
    return sorted(kept + new_tables, key=tid)


def main():
    # A SIGTERM must unmount too: make it an exception the finally blocks see.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    B.need_ext4(B.WORK)
    scratch = os.path.join(B.WORK, "sharing-mnt")
    tools = set(VIEWS_A) | {v[2] for v in VIEWS if v[2]}
    status = {t: M.available(t) for t in tools}
    data = {"cowfs": B.binary_info(B.COWFS), "vunify": B.binary_info(B.VUNIFY)}
    tables = []
    if "A" in TABLES:
        src = os.path.join(B.WORK, "sharing-src")
        sep = os.path.join(B.WORK, "sharing-sep")
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
        t0, load0 = B.machine()["date"], loadavg()
        try:
            ta = page_cache(src, sep, scratch, status, copies)
        finally:
            B.rm_tree(scratch)
            B.rm_tree(src)
            B.rm_tree(sep)
        loads = [load0, loadavg()]
        ta.update({"id": "A", "measured": {"date": t0, "until": B.machine()["date"],
                                           "runs": B.RUNS, "load1_min": min(loads),
                                           "load1_max": max(loads),
                                           "cowfs": data["cowfs"].get("commit")}})
        tables.append(ta)
        data["copies"] = copies
    if "B" in TABLES:
        tbs, prog = table_programs(scratch, status)
        tables += tbs
        data["programs"] = prog
    old = {}
    path = os.path.join(B.RESULTS, "sharing.json")
    if set(TABLES) != {"A", "B"} and os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        old.pop("machine", None)        # write_results sets this run's
    old.update(data)
    old["tables"] = merge(old.get("tables", []), tables)
    old["status"] = {t: s for t, s in status.items() if s}
    old["runs"] = B.RUNS
    old["note"] = ("Page cache is `Cached` of /proc/meminfo after `drop_caches`; \"copies\" is "
                   "the growth divided by the file size (1 = the file is in memory once). "
                   "PSS divides each shared page among the processes mapping it, so PSS ≪ RSS "
                   "means the guests' programs share their pages. Each table says when it was "
                   "measured; the header's date is the last run of any of them.")
    B.write_results("sharing", old)


if __name__ == "__main__":
    main()
