#!/usr/bin/env python3
"""Suite 2, unify: wall time, CPU and peak RSS of vunify against its peers on
the four-guest corpus, with the physical limits measured beside them.

Per repetition and per tool (tools interleaved, so all see the same machine):
  cold_first  fresh `cp -a` pool, caches dropped, first run
  rerun       the same command again at once, nothing changed (the nightly case)
  fifth       a fifth guest (bookworm-extra) copied in, the command run again
  warm_first  another fresh pool, every file read once beforehand, first run
Limits, on that second fresh pool before the tool runs:
  stat walk cold/warm  `find POOL -printf '%s\\n'` (one lstat per entry)
  read cold/warm       every regular file read once (find | xargs cat)
  xxh3 warm            `xxhsum -H2` (XXH3-128) over every regular file
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

LIMITS = {
    "stat_walk": "find {pool} -printf '%s\\n' > /dev/null",
    "read_all": "find {pool} -type f -print0 | xargs -0 -r cat > /dev/null",
    "xxh3_all": "find {pool} -type f -print0 | xargs -0 -r xxhsum -H2 > /dev/null",
}


def tools(pool):
    def guests():
        return sorted(os.path.join(pool, g) for g in os.listdir(pool) if not g.startswith("."))
    return [
        ("vunify", lambda: [B.VUNIFY, "unify", "-q", pool]),
        ("hardlink -X", lambda: ["hardlink", "-q", "-X"] + guests()),
        ("hardlink", lambda: ["hardlink", "-q"] + guests()),
        ("jdupes -rL", lambda: ["jdupes", "-rLq"] + guests()),
        ("rdfind", lambda: ["rdfind", "-makehardlinks", "true", "-outputname",
                            os.path.join(B.WORK, "rdfind-results.txt")] + guests()),
    ]


def main():
    B.need_ext4(B.WORK)
    pool = os.path.join(B.WORK, "unify")
    res = {}      # tool -> case -> metric -> [samples]
    lim = {}      # limit -> [samples]

    def rec(tool, case, t):
        d = res.setdefault(tool, {}).setdefault(case, {"wall": [], "cpu": [], "rss_kib": [], "rc": []})
        d["wall"].append(t["wall"])
        d["cpu"].append(round((t["user"] or 0) + (t["sys"] or 0), 3))
        d["rss_kib"].append(t["rss_kib"])
        d["rc"].append(t["rc"])

    def limit(name, cold):
        if cold:
            B.drop_caches()
        t = B.timed_sh(LIMITS[name].format(pool=pool))
        lim.setdefault(name + ("_cold" if cold else "_warm"), []).append(t["wall"])

    for rep in range(B.RUNS):
        for name, argv in tools(pool):
            B.log("unify: rep %d/%d %s" % (rep + 1, B.RUNS, name))
            B.fresh_pool(pool, B.CORPUS)
            B.drop_caches()
            rec(name, "cold_first", B.timed(argv()))
            rec(name, "rerun", B.timed(argv()))
            B.sh("cp -a %s %s" % (os.path.join(B.GUESTS, B.FIFTH), os.path.join(pool, B.FIFTH)))
            os.sync()       # time the tool, not the writeback of the copy
            rec(name, "fifth", B.timed(argv()))
            B.fresh_pool(pool, B.CORPUS)
            os.sync()
            if name == "vunify":     # limits once per repetition, same state as the tools
                limit("stat_walk", True)
                limit("stat_walk", False)
                limit("read_all", True)
                limit("xxh3_all", False)
            limit("read_all", False)          # also the warm-up of warm_first
            rec(name, "warm_first", B.timed(argv()))
    B.rm_tree(pool)
    B.rm_tree(os.path.join(B.WORK, "rdfind-results.txt"))

    out = {"tools": {}, "limits": {k: B.stats(v) for k, v in lim.items()}}
    for tool, cases in res.items():
        out["tools"][tool] = {case: {m: (B.stats(v) if m != "rc" else v) for m, v in d.items()}
                              for case, d in cases.items()}
    corpus_kib = sum(B.du_kib([os.path.join(B.GUESTS, g)])[0] for g in B.CORPUS)
    B.write_results("unify", {
        "guests": B.CORPUS, "fifth": B.FIFTH, "corpus_kib": corpus_kib,
        "limit_commands": LIMITS, **out,
        "versions": {"util-linux": B.pkg_version("util-linux"), "jdupes": B.pkg_version("jdupes"),
                     "rdfind": B.pkg_version("rdfind"), "xxhash": B.pkg_version("xxhash")}})


if __name__ == "__main__":
    main()
