"""Shared helpers for the bench/ suites (stdlib only).

Every figure a suite records is a list of samples taken side by side with its
peers in one run; stats() turns it into median, min, max.  Results go to
bench/results/<suite>.json, which bench/report turns into docs/benchmarks.md.
"""
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.environ.get("REPO_DIR", os.path.dirname(BENCH_DIR))
CACHE = os.environ.get("COWFS_BENCH_CACHE", "/var/cache/cowfs-bench")
WORK = os.environ.get("COWFS_BENCH_WORK", os.path.join(CACHE, "work"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(BENCH_DIR, "results"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
VUNIFY = os.environ.get("VUNIFY", os.path.join(REPO_DIR, "build/vunify/vunify"))
COWFS = os.environ.get("COWFS", os.path.join(REPO_DIR, "build/cowfs/cowfs"))
GUESTS = os.path.join(CACHE, "guests")
BIN = os.path.join(CACHE, "bin")
CORPUS = ["bookworm-min1", "bookworm-min2", "bookworm-full", "bullseye-min"]
FIFTH = "bookworm-extra"
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "600"))   # seconds per timed command


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    """Run a shell command line; returns CompletedProcess with text output."""
    return subprocess.run(cmd, shell=True, check=check, text=True,
                          stdout=kw.pop("stdout", subprocess.PIPE),
                          stderr=kw.pop("stderr", subprocess.PIPE), **kw)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def mounts_under(path):
    path = os.path.realpath(path) + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if (mp + "/").startswith(path):
                out.append(mp)
    return sorted(out, reverse=True)


def rm_tree(path):
    """rm -rf that survives CoW links (immutable) and never enters a mount."""
    if not os.path.lexists(path):
        return
    for mp in mounts_under(path):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
    # Every CoW link of a pool is a link of an object under .hashdb/objects, so
    # clearing the flag there clears it for all; a walk of every guest (2M
    # entries at 300 guests) is only the fallback.
    hashdb = os.path.join(path, ".hashdb")
    if os.path.isdir(hashdb):
        subprocess.run(["chattr", "-R", "-i", hashdb], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if subprocess.run(["rm", "-rf", "--one-file-system", path],
                          stderr=subprocess.DEVNULL).returncode == 0:
            return
    subprocess.run(["chattr", "-R", "-i", path], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", "--one-file-system", path], check=True)


def fresh_pool(pool, guests, names=None):
    """A new pool directory holding fresh `cp -a` copies of corpus guests."""
    rm_tree(pool)
    os.makedirs(pool)
    procs = []
    for i, g in enumerate(guests):     # copies in parallel: not what is timed
        dst = os.path.join(pool, names[i] if names else g)
        procs.append(subprocess.Popen(["cp", "-a", os.path.join(GUESTS, g), dst]))
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("cp -a failed")
    return pool


def timed(argv, cwd=None, out=None):
    """Run argv under /usr/bin/time -v: wall, user, sys (s), peak RSS (KiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.monotonic()
        with open(out or os.devnull, "w") as o:
            p = subprocess.Popen(["/usr/bin/time", "-v", "-o", tf.name] + list(argv), cwd=cwd,
                                 stdout=o, stderr=subprocess.STDOUT, start_new_session=True)
            # A hung peer must not stop the run: a timer kills it.  Not
            # p.wait(timeout=...): that polls with sleeps of up to 50 ms,
            # which rounded every wall time up to the next 50 ms step.
            hung = threading.Event()

            def kill():
                hung.set()
                os.killpg(p.pid, 9)
            timer = threading.Timer(TIMEOUT, kill)
            timer.start()
            rc = p.wait()
            timer.cancel()
            if hung.is_set():
                rc = 124
        wall = time.monotonic() - t0
        t = tf.read()

    def g(pat, conv=float):
        m = re.search(pat, t)
        return conv(m.group(1)) if m else None
    return {"wall": round(wall, 4), "user": g(r"User time \(seconds\): (\S+)"),
            "sys": g(r"System time \(seconds\): (\S+)"),
            "rss_kib": g(r"Maximum resident set size \(kbytes\): (\d+)", int), "rc": rc}


def timed_sh(cmdline, **kw):
    return timed(["sh", "-c", cmdline], **kw)


def stats(samples):
    """median with its spread (min, max) and the samples themselves."""
    xs = [x for x in samples if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "n": len(xs), "samples": xs}


def du_kib(paths, apparent=False):
    """KiB allocated under paths, each inode counted once across all of them;
    with several paths, one line per path: what it adds beyond the earlier."""
    argv = ["du", "-s", "--block-size=1K"] + (["--apparent-size"] if apparent else []) + list(paths)
    out = subprocess.run(argv, check=True, text=True, stdout=subprocess.PIPE).stdout
    return [int(line.split("\t")[0]) for line in out.splitlines()]


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    fs = sh("findmnt -n -o FSTYPE --target " + WORK, check=False).stdout.strip()
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "mem_mib": mem,
            "work_fs": fs, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def pkg_version(pkg):
    r = sh("dpkg-query -W -f '${Version}' " + pkg, check=False)
    return r.stdout.strip() or None


def write_results(suite, data):
    os.makedirs(RESULTS, exist_ok=True)
    data = dict(data)
    data.setdefault("suite", suite)
    data.setdefault("machine", machine())
    data.setdefault("runs", RUNS)
    data.setdefault("vunify", binary_info(VUNIFY))
    path = os.path.join(RESULTS, suite + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(path + ".tmp", path)
    log("wrote " + path)


def need_ext4(path):
    os.makedirs(path, exist_ok=True)
    fs = sh("findmnt -n -o FSTYPE --target " + path).stdout.strip()
    if fs != "ext4":
        sys.exit("bench: %s is on %s, not ext4 (set COWFS_BENCH_WORK)" % (path, fs))


def walk_files(root):
    """Yield (path, lstat) of every entry under root, never following links."""
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield e.path, st
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)


def binary_info(path):
    """Which binary was measured: its path and the commit of the tree it was built from."""
    if not os.access(path, os.X_OK):
        return {"path": path, "built": False}
    name = os.path.basename(path).upper()
    if os.environ.get(name + "_COMMIT"):      # a copied binary: say where it came from
        return {"path": path, "built": True, "commit": os.environ[name + "_COMMIT"]}
    d = os.path.dirname(os.path.realpath(path))
    r = sh("git -C %s rev-parse --short HEAD" % d, check=False)
    return {"path": path, "built": True, "commit": r.stdout.strip() or None}
