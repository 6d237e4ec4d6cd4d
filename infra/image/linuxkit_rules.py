"""The rules linuxkit (v1.5.2 with AWS's patches 0001-0003, as nitro-cli runs it) applies when
turning files and an image's exported filesystem into an initrd. Constants only."""

from __future__ import annotations

# 2017-04-18T16:30:00Z: linuxkit's defaultModTime for every entry it creates or touches.
DEFAULT_MTIME = 1492533000

# Exported names dropped (exact match on the tar name, so "dev/pts/" is not dropped).
EXCLUDE = frozenset({".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"})

HOSTS = (
    "127.0.0.1       localhost\n"
    "::1     localhost ip6-localhost ip6-loopback\n"
    "fe00::0 ip6-localnet\n"
    "ff00::0 ip6-mcastprefix\n"
    "ff02::1 ip6-allnodes\n"
    "ff02::2 ip6-allrouters\n"
).encode("ascii")

# init images get /etc/resolv.conf as a symlink to this path.
RESOLV_SYMLINK = "/run/resolvconf/resolv.conf"

# name -> (kind, perm, symlink target): entries that must exist; mtime forced when present.
TOUCH: dict[str, tuple[str, int, str]] = {
    "dev/": ("dir", 0o755, ""),
    "dev/pts/": ("dir", 0o755, ""),
    "dev/shm/": ("dir", 0o755, ""),
    "etc/": ("dir", 0o755, ""),
    "etc/mtab": ("symlink", 0o755, "/proc/mounts"),
    "etc/resolv.conf": ("symlink", 0o644, RESOLV_SYMLINK),
    "etc/hosts": ("reg", 0o644, ""),
    "proc/": ("dir", 0o755, ""),
    "sys/": ("dir", 0o755, ""),
}

CUSTOMER_PREFIX = "rootfs/"
# nitro-cli's customer YAML "files:" directories (mode 0755), then cmd and env (0644).
CUSTOMER_DIRS = ("rootfs/dev", "rootfs/run", "rootfs/sys", "rootfs/var", "rootfs/proc", "rootfs/tmp")
