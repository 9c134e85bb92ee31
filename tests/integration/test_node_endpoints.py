"""Nodes reached the two safe ways the README gives, against real servers on 127.0.0.1:
tcp:// with TLS client certificates (a dockerd with --tlsverify, certificates made here with
openssl; without the client certificate it refuses), and ssh:// (an sshd with a key made here;
the engine behind it is this machine's own)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.errors import NodeUnavailable
from gitops.nodes.docker import DockerNode
from tests.integration.test_run import free_port

RUN = Path("/run/gitops-nodes")


def wait_until_it_answers(node: DockerNode, seconds: float = 30) -> None:
    """The server was just started: ping until it answers (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            node.ping()
            return
        except NodeUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def certificates(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.pem", cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    d = tmp_path_factory.mktemp("tls")
    certificates(d)
    port = free_port()
    RUN.mkdir(parents=True, exist_ok=True)
    bridge = "gtbr9"
    subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], capture_output=True)
    subprocess.run(["ip", "addr", "add", "10.209.0.1/24", "dev", bridge], capture_output=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    pidfile = RUN / "tls.pid"
    pidfile.unlink(missing_ok=True)
    log = (d / "dockerd.log").open("w")
    proc = subprocess.Popen(
        ["dockerd", "--host", f"tcp://127.0.0.1:{port}", "--tlsverify",
         "--tlscacert", str(d / "ca.pem"), "--tlscert", str(d / "server.pem"),
         "--tlskey", str(d / "server-key.pem"), "--data-root", str(d / "data"),
         "--exec-root", str(RUN / "tls-exec"), "--pidfile", str(pidfile),
         "--bridge", bridge, "--iptables=false"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"tcp://127.0.0.1:{port}", d
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
        pidfile.unlink(missing_ok=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def test_tls_client_certificates_are_required_and_enough(tls_engine: tuple[str, Path]) -> None:
    url, d = tls_engine
    node = DockerNode("secure", url, tls=(str(d / "ca.pem"), str(d / "client.pem"),
                                           str(d / "client-key.pem")))  # fmt: skip
    wait_until_it_answers(node)
    assert node.capacity().cpu_millis >= 1000
    assert node.list_containers() == []
    anonymous = DockerNode("anonymous", url)
    with pytest.raises(NodeUnavailable):
        anonymous.ping()  # no client certificate: the engine does not talk to it
    node.close()
    anonymous.close()


@pytest.fixture(scope="module")
def ssh_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An sshd on 127.0.0.1 that lets root in with a key made here, and an ``ssh`` first on
    PATH that uses that key and host key (what a user's ~/.ssh/config would say)."""
    d = tmp_path_factory.mktemp("ssh")
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)  # fmt: skip
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nUsePAM no\nStrictModes no\nPidFile {d / 'sshd.pid'}\n"
    )
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host.pub').read_text()}")
    bindir = d / "bin"
    bindir.mkdir()
    (bindir / "ssh").write_text(
        "#!/bin/sh\n"
        f"exec /usr/bin/ssh -F /dev/null -i {d / 'client'} -o BatchMode=yes "
        f'-o UserKnownHostsFile={d / "known_hosts"} -o StrictHostKeyChecking=yes "$@"\n'
    )
    (bindir / "ssh").chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=(d / "sshd.log").open("w"))  # fmt: skip
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}:{old_path}"
    try:
        yield f"ssh://root@127.0.0.1:{port}"
    finally:
        os.environ["PATH"] = old_path
        proc.terminate()
        proc.wait(timeout=10)


def test_ssh_reaches_the_engine_through_the_users_ssh(ssh_endpoint: str) -> None:
    node = DockerNode("over-ssh", ssh_endpoint, instance="ssh-test")
    wait_until_it_answers(node)
    assert node.capacity().cpu_millis >= 1000
    assert node.list_containers() == []  # the engine answers; nothing of this instance runs
    node.close()
