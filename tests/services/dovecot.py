"""A private Dovecot (IMAP + LMTP) on loopback for integration tests.

Everything lives in a fresh ``/tmp/maildesk-dovecot.XXXXXX`` directory (mode 0755, so
Dovecot's unprivileged users can traverse it; pytest's 0700 tmp root would not do).
Run as root, the master drops mail access to ``nobody`` (Dovecot refuses uid 0 for
mail); run as another user, the whole server runs as that user. The daemon is started
with stdin/stdout/stderr redirected, never inheriting the caller's pipes (a pytest
capture would otherwise wait for it forever).

    server = Dovecot.start_new({"box1@example.test": "secret"})  # Dovecot.missing(): why not
    with server.client("box1@example.test", "secret") as imap: ...
    server.restart()                       # same ports, same mail
    server.stop()
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["DOVECOT", "Dovecot"]

DOVECOT = os.environ.get("MAILDESK_TEST_DOVECOT", "/usr/sbin/dovecot")
TEMPLATE = Path(__file__).with_name("dovecot.conf.template")
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (PID 1 here may reap late)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


class Dovecot:
    def __init__(self, runtime: Path, imap_port: int, lmtp_port: int):
        self.runtime, self.imap_port, self.lmtp_port = runtime, imap_port, lmtp_port
        self.host = HOST
        self.users: dict[str, str] = {}
        self._version = 0
        self.pid: int | None = None

    @staticmethod
    def missing() -> str | None:
        """Why the server cannot run here, or None."""
        if not os.path.exists(DOVECOT):
            return f"Dovecot is not installed ({DOVECOT} not found; apt-get install dovecot-imapd dovecot-lmtpd)"
        if not os.access(DOVECOT, os.X_OK):
            return f"{DOVECOT} is not executable"
        return None

    @classmethod
    def start_new(cls, users: dict[str, str] | None = None) -> Dovecot:
        runtime = Path(tempfile.mkdtemp(prefix="maildesk-dovecot."))
        runtime.chmod(0o755)
        server = cls(runtime, _free_port(), _free_port())
        try:
            server._write_config()
            server.add_users(users or {})
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    # -- configuration ------------------------------------------------------------------
    def _write_config(self) -> None:
        rt = self.runtime
        for sub in ("run", "state", "mail"):
            (rt / sub).mkdir(exist_ok=True)
        (rt / "users").touch()
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            group = grp.getgrgid(nobody.pw_gid).gr_name
            os.chown(rt / "mail", nobody.pw_uid, nobody.pw_gid)
            userdb_fields, unprivileged, login_chroot = f"uid=nobody gid={group}", "", ""
            anvil_chroot = ""
        else:
            me, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
            userdb_fields, login_chroot, anvil_chroot = "", "chroot =", "chroot ="
            unprivileged = "\n".join([
                f"default_internal_user = {me}", f"default_internal_group = {group}",
                f"default_login_user = {me}", f"first_valid_uid = {os.geteuid()}"])
        text = string.Template(TEMPLATE.read_text()).substitute(
            runtime=rt, imap_port=self.imap_port, lmtp_port=self.lmtp_port, userdb_fields=userdb_fields,
            unprivileged=unprivileged, login_chroot=login_chroot, anvil_chroot=anvil_chroot)
        (rt / "dovecot.conf").write_text(text)

    def add_users(self, users: dict[str, str]) -> None:
        """Add accounts. Dovecot re-reads its passwd-file at most once a second, so an
        account added while it runs may be unknown for up to a second: tests take
        accounts created before the start (``start_new(users=...)``)."""
        self.users.update(users)
        lines = "".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items())
        tmp = self.runtime / "users.tmp"
        tmp.write_text(lines)
        tmp.chmod(0o644)
        # Dovecot notices a changed passwd-file by its mtime in whole seconds: give each
        # version its own, or two accounts added within one second make the 2nd unknown.
        self._version += 1
        os.utime(tmp, (1_000_000_000 + self._version,) * 2)
        tmp.replace(self.runtime / "users")

    # -- process control ------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        log = open(self.runtime / "stderr.log", "ab")  # noqa: SIM115 - handed to the daemon
        with log, open(os.devnull, "rb") as devnull:
            res = subprocess.run([DOVECOT, "-c", str(self.runtime / "dovecot.conf")], stdin=devnull, stdout=log,
                                 stderr=log, timeout=timeout, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"dovecot failed to start (exit {res.returncode}):\n{self.log_tail()}")
        deadline = time.monotonic() + timeout
        pidfile = self.runtime / "run" / "master.pid"
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self.pid = int(pidfile.read_text().strip())
                with socket.create_connection((HOST, self.imap_port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            time.sleep(0.02)
        raise RuntimeError(f"dovecot did not answer on {HOST}:{self.imap_port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the master and every process it started, as a machine or service-manager
        restart would: an imap process left behind would keep its client connected."""
        if self.pid is None:
            return
        children = _children(self.pid)
        deadline = time.monotonic() + timeout
        for pid in (self.pid, *children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in (self.pid, *children):
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.pid = None
        # the listener belongs to the master; wait until nobody accepts any more
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.imap_port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.runtime, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("stderr.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                out += (self.runtime / name).read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    # -- clients ----------------------------------------------------------------------------
    def client(self, user: str, password: str | None = None, folder: str | None = "INBOX"):
        """A logged-in IMAPClient (a context manager), with ``folder`` selected."""
        from imapclient import IMAPClient

        imap = IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30)
        imap.login(user, password if password is not None else self.users[user])
        if folder:
            imap.select_folder(folder)
        return imap
