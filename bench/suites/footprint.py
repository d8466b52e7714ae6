#!/usr/bin/env python3
"""Suite 1, footprint: the paper's table re-measured on the debootstrap corpus.

For each tool (vunify default, with the shipped vunify.conf (its ignore-mtime-path
rules), --ignore-mtime and --ignore-mtime --hardlinks, util-linux hardlink default
and -X, jdupes -rL, rdfind -makehardlinks true) a fresh pool of `cp -a`
copies is made, a few metadata differences are planted (see PLANTED), the
tool runs once over all guests, and du measures per guest:
  apparent   du --apparent-size of the guest alone
  before     allocated size of the guest alone, before
  marginal   what the guest adds to the pool after, i.e. `du -s g1 g2 g3 g4`
             in that order (du counts an inode once, at its first path)
Sizes are deterministic, so one run per tool; suite 2 times the tools.
A peer "merged differing metadata" when a path's observable metadata (mode,
owner, mtime, xattrs, ACLs, capabilities) changed under it.
"""
import os
import sys
import subprocess

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

# (guest, path, what, shell command run in the guest copy before the tool).
# Each target is a file that is byte-identical in bookworm-min1.
PLANTED = [
    ("bookworm-min2", "usr/bin/tac", "mode", "chmod 0700 {f}"),
    ("bookworm-min2", "usr/bin/tail", "owner", "chown 1000:1000 {f}"),
    ("bookworm-min2", "usr/bin/tee", "capability", "setcap cap_net_raw+ep {f}"),
    ("bookworm-min2", "usr/bin/touch", "acl", "setfacl -m u:1000:rx {f}"),
    ("bookworm-min2", "usr/bin/tr", "xattr", "setfattr -n user.bench -v planted {f}"),
    ("bookworm-min2", "usr/bin/tsort", "mtime", "touch -d 2001-01-01 {f}"),
]


def tools(pool, guests, scratch):
    gp = [os.path.join(pool, g) for g in guests]
    return [
        ("vunify", [B.VUNIFY, "unify", "-q", pool], None),
        # The shipped configuration: mtime kept but for its ignore-mtime-path
        # rules (apt's lists and .debs, debconf's templates), and its excludes.
        ("vunify -c vunify.conf", [B.VUNIFY, "unify", "-q", "-c",
                                   os.path.join(B.REPO_DIR, "vunify", "vunify.conf"), pool], None),
        ("vunify --ignore-mtime", [B.VUNIFY, "unify", "-q", "--ignore-mtime", pool], None),
        ("vunify --ignore-mtime --hardlinks",
         [B.VUNIFY, "unify", "-q", "--ignore-mtime", "--hardlinks", pool], None),
        ("hardlink", ["hardlink", "-q"] + gp, None),
        ("hardlink -X", ["hardlink", "-q", "-X"] + gp, None),
        ("jdupes -rL", ["jdupes", "-rLq"] + gp, None),
        ("rdfind -makehardlinks true", ["rdfind", "-makehardlinks", "true",
                                        "-outputname", os.path.join(scratch, "rdfind.txt")] + gp,
         scratch),
    ]


def meta_of(path, st):
    xa = {}
    try:
        for n in os.listxattr(path, follow_symlinks=False):
            if n == "trusted.cowlink":      # vunify's own marker, hidden by cowfs
                continue
            xa[n] = os.getxattr(path, n, follow_symlinks=False)
    except OSError:
        pass
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, tuple(sorted(xa.items())))


def snapshot(pool, guests):
    snap = {}
    for g in guests:
        for p, st in B.walk_files(os.path.join(pool, g)):
            if (st.st_mode & 0o170000) == 0o100000:
                snap[p] = meta_of(p, st)
    return snap


def changed_meta(before):
    """Paths whose observable metadata changed, by kind of difference."""
    kinds = {"mode": 0, "owner": 0, "mtime": 0, "xattr/acl/caps": 0}
    paths = []
    for p, old in before.items():
        try:
            st = os.lstat(p)
        except OSError:
            continue
        new = meta_of(p, st)
        if new == old:
            continue
        paths.append(p)
        if new[0] != old[0]:
            kinds["mode"] += 1
        if new[1:3] != old[1:3]:
            kinds["owner"] += 1
        if new[3] != old[3]:
            kinds["mtime"] += 1
        if new[4] != old[4]:
            kinds["xattr/acl/caps"] += 1
    return {"paths": len(paths), "by_kind": kinds, "examples": sorted(paths)[:8]}


def public_path(rel):
    """A guest path fit for the repository: apt names its list files after the
    mirror they came from (HOST_debian_dists_...), and no package registry's
    host name goes into the project, so that part is replaced."""
    if rel.startswith("var/lib/apt/lists/") and "_" in rel:
        head, name = rel.rsplit("/", 1)
        return head + "/MIRROR_" + name.split("_", 1)[1]
    return rel


def private_files(guest_dir, top=10):
    """The largest regular files of a guest that share their data with no other
    guest (each inode once), with a hint why."""
    seen = {}
    for p, st in B.walk_files(guest_dir):
        if (st.st_mode & 0o170000) == 0o100000:
            e = seen.setdefault(st.st_ino, [0, st.st_nlink, st.st_blocks, p])
            e[0] += 1
    rows = []
    for paths, nlink, blocks, p in seen.values():
        cow = True
        try:
            os.getxattr(p, "trusted.cowlink", follow_symlinks=False)
        except OSError:
            cow = False
        if paths >= nlink or (cow and paths == nlink - 1):
            hint = ("hard-linked inside the guest (%d links)" % paths if paths > 1 and not cow
                    else "CoW link, no other guest" if cow else "not linked")
            rows.append({"path": public_path(os.path.relpath(p, guest_dir)), "kib": blocks // 2, "why": hint})
    rows.sort(key=lambda r: -r["kib"])
    return rows[:top]


def floor_kib(guest_dir):
    """Blocks a guest cannot share: directories (and any non-regular inode)."""
    b = 0
    for _, st in B.walk_files(guest_dir):
        if (st.st_mode & 0o170000) != 0o100000:
            b += st.st_blocks * 512
    return b // 1024


def main():
    B.need_ext4(B.WORK)
    guests = B.CORPUS
    pool = os.path.join(B.WORK, "footprint")
    scratch = os.path.join(B.WORK, "footprint-scratch")
    os.makedirs(scratch, exist_ok=True)
    rows = []
    before = None
    for name, argv, cwd in tools(pool, guests, scratch):
        B.log("footprint: %s" % name)
        B.fresh_pool(pool, guests)
        for g, rel, _, cmd in PLANTED:
            B.sh(cmd.format(f=os.path.join(pool, g, rel)))
        if before is None:
            before = {"apparent_kib": [B.du_kib([os.path.join(pool, g)], True)[0] for g in guests],
                      "allocated_kib": [B.du_kib([os.path.join(pool, g)])[0] for g in guests]}
        snap = snapshot(pool, guests)
        t = B.timed(argv, cwd=cwd)
        if t["rc"] != 0:
            B.log("footprint: %s exited %d" % (name, t["rc"]))
        paths = [os.path.join(pool, g) for g in guests]
        hashdb = os.path.join(pool, ".hashdb")
        marg = B.du_kib(paths + ([hashdb] if os.path.isdir(hashdb) else []))
        row = {"tool": name, "argv": " ".join(os.path.basename(a) if a.startswith(B.WORK) else a
                                               for a in argv),
               "rc": t["rc"], "wall_s": t["wall"],
               "marginal_kib": marg[:len(guests)],
               "state_kib": marg[len(guests)] if len(marg) > len(guests) else 0,
               "total_kib": sum(marg),
               "metadata_changed": changed_meta(snap)}
        if name == "vunify":
            audit = B.sh("%s audit --json -b %s" % (B.VUNIFY, pool)).stdout
            row["audit"] = __import__("json").loads(audit)
            row["floor_kib"] = [floor_kib(os.path.join(pool, g)) for g in guests]
        if name.startswith("vunify"):
            row["private_min2"] = private_files(os.path.join(pool, "bookworm-min2"))
        rows.append(row)
        B.log("footprint: %s total %d KiB, marginal %s, metadata changed on %d paths"
              % (name, row["total_kib"], row["marginal_kib"], row["metadata_changed"]["paths"]))
    B.rm_tree(pool)
    B.rm_tree(scratch)
    B.write_results("footprint", {
        "guests": guests, "before": before,
        "planted": [{"guest": g, "path": p, "difference": w} for g, p, w, _ in PLANTED],
        "paper": {"before_mb": 150, "after_mb": 12, "ratio": 0.08},
        "tools": rows,
        "versions": {"util-linux": B.pkg_version("util-linux"), "jdupes": B.pkg_version("jdupes"),
                     "rdfind": B.pkg_version("rdfind")},
        "notes": "duperemove is not run: it dedupes through FIDEDUPERANGE (reflinks), "
                 "which ext4 does not support."})


if __name__ == "__main__":
    main()
