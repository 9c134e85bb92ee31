"""The node proxy's image: this machine's HAProxy with the libraries it links, FROM scratch.

Built on each node from the reconciler's own ``haproxy`` (as the pause image is built from its
static busybox), so no node needs a registry for it. Same CPU architecture assumed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from gitops.errors import ContainerCreateError

DOCKERFILE = b"""FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
"""
CONFIG = "/etc/haproxy/haproxy.cfg"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
CERTS = "/etc/haproxy/certs"  # the Ingress certificates, owner-only files


def haproxy_files(binary: str = "haproxy") -> list[tuple[str, bytes, int]]:
    """(path in the image, content, mode) of the binary and every library ``ldd`` names."""
    exe = shutil.which(binary)
    if exe is None:
        raise ContainerCreateError("node proxy: haproxy not found on this machine")
    out = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    paths = [exe, *re.findall(r"(/\S+) \(0x", out)]
    files = [("rootfs/usr/sbin/haproxy", Path(exe).read_bytes(), 0o755)]
    for p in dict.fromkeys(paths[1:]):
        files.append((f"rootfs{p}", Path(p).resolve().read_bytes(), 0o755))
    files += [("rootfs/etc/haproxy/.keep", b"", 0o644), ("rootfs/run/haproxy/.keep", b"", 0o644)]
    files += [("rootfs/etc/haproxy/certs/.keep", b"", 0o600)]
    return files


def image_tag(files: list[tuple[str, bytes, int]]) -> str:
    digest = hashlib.sha256()
    for path, data, _ in files:
        digest.update(path.encode())
        digest.update(hashlib.sha256(data).digest())
    return f"gitops/haproxy:{digest.hexdigest()[:12]}"
