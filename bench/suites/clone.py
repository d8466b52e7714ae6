#!/usr/bin/env python3
"""Suite 7, clone: provisioning a guest from a template.

The template is bookworm-min1 (a debootstrap minbase, ~206 MiB) in a pool
where it is already unified (as the nightly run leaves it).  Each
repetition, warm cache, from the same state:
  vunify clone       `vunify clone POOL tmpl new`
  cp -a + unify      `cp -a tmpl new`, then `vunify unify POOL new`
  cp -a              the copy alone
  the same clone of a template unified with --hardlinks (its own hard-linked
                     files, Debian's perl/perl5.36.0, are CoW links too)
  cp -al             `cp -al` of a template that is NOT unified (linking a
                     CoW link fails: it is immutable), in a pool of its own
Disk added by NEW: `du -s tmpl new`'s second line (du counts an inode once,
at its first path), plus what .hashdb grew.  The floor is NEW's directory
blocks (what any tree of NEW's shape costs; symlinks are inline).  All
vunify runs use the shipped configuration (vunify/vunify.conf), so its
excluded paths (logs, ...) stay private copies and its secrets are left out.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

TEMPLATE = "bookworm-min1"
CONF = os.path.join(B.REPO_DIR, "vunify", "vunify.conf")


def dir_kib(root):
    out = B.sh("find '%s' -type d -printf '%%b\\n' | awk '{s += $1} END {print s / 2}'" % root).stdout
    return float(out.strip() or 0)


def added_kib(pool, new):
    """KiB that NEW adds to the pool beyond the template (and .hashdb)."""
    kib = B.du_kib([os.path.join(pool, "tmpl"), os.path.join(pool, ".hashdb"),
                    os.path.join(pool, new)])
    return kib[2]


def remove(pool, name):
    B.sh("'%s' remove -q -c '%s' --no-gc '%s' '%s'" % (B.VUNIFY, CONF, pool, name))


def clone_run(pool, tool, R):
    t = B.timed([B.VUNIFY, "clone", "-q", "-c", CONF, pool, "tmpl", "new"])
    assert t["rc"] == 0, "vunify clone failed"
    R[tool]["wall"].append(t["wall"])
    R[tool]["added"].append(added_kib(pool, "new"))
    R[tool]["dirs"].append(dir_kib(os.path.join(pool, "new")))
    remove(pool, "new")


def one_run(upool, hpool, ppool, R):
    vu = [B.VUNIFY]
    clone_run(upool, "vunify clone", R)
    clone_run(hpool, "vunify clone, template unified --hardlinks", R)

    t = B.timed(["cp", "-a", os.path.join(upool, "tmpl"), os.path.join(upool, "new")])
    assert t["rc"] == 0, "cp -a failed"
    R["cp -a"]["wall"].append(t["wall"])
    R["cp -a"]["added"].append(added_kib(upool, "new"))
    u = B.timed(vu + ["unify", "-q", "-c", CONF, upool, "new"])
    assert u["rc"] == 0, "vunify unify failed"
    R["cp -a + unify"]["wall"].append(t["wall"] + u["wall"])
    R["cp -a + unify"]["added"].append(added_kib(upool, "new"))
    remove(upool, "new")

    t = B.timed(["cp", "-al", os.path.join(ppool, "tmpl"), os.path.join(ppool, "new")])
    assert t["rc"] == 0, "cp -al failed"
    R["cp -al"]["wall"].append(t["wall"])
    R["cp -al"]["added"].append(B.du_kib([os.path.join(ppool, "tmpl"),
                                          os.path.join(ppool, "new")])[1])
    B.rm_tree(os.path.join(ppool, "new"))


def main():
    B.need_ext4(B.WORK)
    upool = B.fresh_pool(os.path.join(B.WORK, "clone-pool"), [TEMPLATE], ["tmpl"])
    hpool = B.fresh_pool(os.path.join(B.WORK, "clone-hardlinks"), [TEMPLATE], ["tmpl"])
    ppool = B.fresh_pool(os.path.join(B.WORK, "clone-plain"), [TEMPLATE], ["tmpl"])
    B.sh("'%s' unify -q -c '%s' '%s'" % (B.VUNIFY, CONF, upool))
    B.sh("'%s' unify -q --hardlinks -c '%s' '%s'" % (B.VUNIFY, CONF, hpool))
    tools = ["vunify clone", "vunify clone, template unified --hardlinks", "cp -a + unify",
             "cp -a", "cp -al"]
    R = {t: {"wall": [], "added": [], "dirs": []} for t in tools}
    for i in range(B.RUNS):
        B.log("clone: repetition %d/%d" % (i + 1, B.RUNS))
        os.sync()
        one_run(upool, hpool, ppool, R)
    out = {"template": TEMPLATE, "template_kib": B.du_kib([os.path.join(upool, "tmpl")])[0],
           "tools": {t: {"wall": B.stats(R[t]["wall"]), "added_kib": B.stats(R[t]["added"])}
                     for t in tools},
           "new_dir_kib": B.stats(R["vunify clone"]["dirs"])}
    B.write_results("clone", out)
    for p in (upool, hpool, ppool):
        B.rm_tree(p)


main()
