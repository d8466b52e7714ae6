"""Serving one source tree through native ext4, kernel overlayfs, cowfs and
the FUSE peers, for suites 4 and 5.  mount(tool, src, scratch) returns the
path to use and a function that unmounts it."""
import os
import shutil
import subprocess
import time

import benchlib as B

FUSE_PEERS = ["bindfs", "fuse-overlayfs", "unionfs-fuse", "rofiles-fuse", "passthrough_ll"]
TOOLS = ["native", "overlayfs", "cowfs"] + FUSE_PEERS
# Variants for suite 4: cowfs without FUSE passthrough and over io_uring
# (passthrough on), libfuse's passthrough_hp (passthrough on, as it defaults)
# and the same over io_uring.  All from the same libfuse source.
COWFS_VARIANTS = ["cowfs-nopt", "cowfs-uring"]
HP_PEERS = ["passthrough_hp", "passthrough_hp-uring"]
# Tools that give a writer a private copy of a shared (hard-linked) file.
COPYUP = ["overlayfs", "cowfs", "fuse-overlayfs", "unionfs-fuse", "rofiles-fuse"] + COWFS_VARIANTS
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"


def uring_param():
    """The kernel's fuse.enable_uring ("Y"/"N"), or None without it."""
    try:
        with open(URING_PARAM) as f:
            return f.read().strip()
    except OSError:
        return None


def set_uring_param(value):
    """Set fuse.enable_uring ("Y"/"N"); the suites put it back when done."""
    with open(URING_PARAM, "w") as f:
        f.write(value + "\n")


def available(tool):
    """None when tool can run here, else why not."""
    if tool.endswith("-uring") and uring_param() is None:
        return "kernel without FUSE over io_uring"
    if tool == "cowfs" or tool in COWFS_VARIANTS:
        return None if os.access(B.COWFS, os.X_OK) else "not built"
    if tool in HP_PEERS:
        p = os.path.join(B.BIN, "passthrough_hp")
        return None if os.access(p, os.X_OK) else "not built (bench/build-passthrough-hp)"
    if tool == "passthrough_ll":
        p = os.path.join(B.BIN, "passthrough_ll")
        return None if os.access(p, os.X_OK) else "not built (bench/run builds it)"
    exe = {"bindfs": "bindfs", "fuse-overlayfs": "fuse-overlayfs", "unionfs-fuse": "unionfs-fuse",
           "rofiles-fuse": "rofiles-fuse"}.get(tool)
    if exe and not shutil.which(exe):
        return "not installed"
    return None


def _is_mounted(mp):
    mp = os.path.realpath(mp)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mp for line in f)


def _wait_mounted(mp, proc, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _is_mounted(mp):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def daemon_argv(tool, src, mp, up, wk):
    """The command line that serves src at mp in the foreground (up, wk:
    upper and work directories of the union peers)."""
    return {
        "cowfs": [B.COWFS, "-f", src, mp],
        "cowfs-nopt": [B.COWFS, "-f", "-o", "passthrough=off", src, mp],
        # cowfs turns fuse.enable_uring on itself (and says so)
        "cowfs-uring": [B.COWFS, "-f", "-o", "io_uring", src, mp],
        "passthrough_hp": [os.path.join(B.BIN, "passthrough_hp"), "--foreground", src, mp],
        "passthrough_hp-uring": [os.path.join(B.BIN, "passthrough_hp"), "--foreground",
                                 "-o", "io_uring", src, mp],
        "bindfs": ["bindfs", "-f", src, mp],
        "fuse-overlayfs": ["fuse-overlayfs", "-f", "-o",
                           "lowerdir=%s,upperdir=%s,workdir=%s" % (src, up, wk), mp],
        "unionfs-fuse": ["unionfs-fuse", "-f", "-o", "cow", "%s=RW:%s=RO" % (up, src), mp],
        # FUSE mounts default to nodev,nosuid: a guest root needs its
        # /dev/null (perl refuses to start without it)
        "rofiles-fuse": ["rofiles-fuse", "--copyup", src, mp, "-f", "-o", "dev,suid"],
        "passthrough_ll": [os.path.join(B.BIN, "passthrough_ll"), "-f", "-o",
                           "source=" + src, mp],
    }[tool]


def _unmount(mp, proc):
    """umount mp (retrying while busy, lazily at last) and reap its daemon."""
    for _ in range(50):
        r = subprocess.run(["umount", mp], stderr=subprocess.DEVNULL)
        if r.returncode == 0 or not _is_mounted(mp):
            break
        time.sleep(0.1)
    else:
        subprocess.run(["umount", "-l", mp])
    if proc:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _log_tail(path, lines=3):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


def mount(tool, src, scratch, extra=()):
    """Serve src; returns (path, unmount).  unmount.proc is the daemon's
    Popen (None for native and overlayfs), unmount.log its stderr file.
    extra: more daemon arguments (e.g. ["-d"] to count requests)."""
    if tool == "native":
        return src, lambda: None
    B.rm_tree(scratch)
    mp = os.path.join(scratch, "mnt")
    up = os.path.join(scratch, "upper")
    wk = os.path.join(scratch, "work")
    for d in (mp, up, wk):
        os.makedirs(d)
    proc = None
    errf = open(os.path.join(scratch, "daemon.log"), "w")
    if tool == "overlayfs":
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=%s,upperdir=%s,workdir=%s" % (src, up, wk), mp], check=True)
    else:
        argv = daemon_argv(tool, src, mp, up, wk) + list(extra)
        if tool == "passthrough_hp-uring" and uring_param() != "Y":
            set_uring_param("Y")
        proc = subprocess.Popen(argv, stdout=errf, stderr=errf)
    if not _wait_mounted(mp, proc):
        if proc:
            proc.kill()
        raise RuntimeError("%s did not mount (see %s)" % (tool, errf.name))

    def unmount():
        _unmount(mp, proc)
        errf.close()
    unmount.proc = proc             # the daemon (None for kernel mounts), for suites that
    unmount.log = errf.name         # watch its memory and read its log
    return mp, unmount


def mount_guests(tool, pool, guests, scratch):
    """Serve each guest of a unified pool by a daemon of its own in guest
    mode (cowfs POOL/GUEST MOUNTPOINT) at scratch/GUEST; returns (scratch,
    unmount), unmount.procs the daemons.  If any guest fails to mount, the
    ones already mounted are unmounted before the error is raised."""
    if tool not in ("cowfs", "cowfs-nopt"):
        raise ValueError("%s has no guest mode" % tool)
    B.rm_tree(scratch)
    os.makedirs(os.path.join(scratch, ".logs"))
    served = []                     # (mountpoint, daemon, log file)

    def unmount():
        while served:
            mp, proc, errf = served.pop()
            _unmount(mp, proc)
            errf.close()
    try:
        for g in guests:
            mp = os.path.join(scratch, g)
            os.makedirs(mp)
            errf = open(os.path.join(scratch, ".logs", g + ".log"), "w")
            proc = subprocess.Popen(daemon_argv(tool, os.path.join(pool, g), mp, None, None),
                                    stdout=errf, stderr=errf)
            served.append((mp, proc, errf))
            if not _wait_mounted(mp, proc):
                raise RuntimeError("%s did not mount guest %s (%d mounted before it): %s"
                                   % (tool, g, len(served) - 1, _log_tail(errf.name)))
    except BaseException:
        unmount()
        raise
    unmount.procs = [proc for _, proc, _ in served]
    return scratch, unmount
