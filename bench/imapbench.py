"""Processing an IMAP backlog: APPEND N messages to a private Dovecot, start the daemon
with an ``[[imap]]`` mailbox, and time until every message is fetched and processed.

Needs ``/usr/sbin/dovecot`` (or ``$MAILDESK_TEST_DOVECOT``) and ``maildesk/ingest/imap.py``;
:func:`missing` says why the measurement cannot run here. The Dovecot set-up is this
module's own (loopback only, a private runtime directory, plaintext login, Maildir).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.corpus import build
from bench.phases import Sampler, wait_acks
from bench.servers import ROOT, DaemonProcess, SinkProcess, free_port

__all__ = ["imap_backlog", "missing"]

DOVECOT = os.environ.get("MAILDESK_TEST_DOVECOT", "/usr/sbin/dovecot")
USER, PASSWORD = "support@example.test", "bench-imap-password"

_CONF = """base_dir = {rt}/run
state_dir = {rt}/state
log_path = {rt}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_fsync = never
{unprivileged}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {rt}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {rt}/users
  default_fields = {userdb_fields} home={rt}/mail/%d/%n
}}
service imap-login {{
  {chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def missing() -> str | None:
    if not (ROOT / "maildesk" / "ingest" / "imap.py").exists():
        return "pending: maildesk/ingest/imap.py does not exist yet"
    if not os.access(DOVECOT, os.X_OK):
        return f"Dovecot not installed ({DOVECOT}; apt-get install dovecot-imapd)"
    return None


class _Dovecot:
    def __init__(self):
        self.rt = Path(tempfile.mkdtemp(prefix="maildesk-bench-dovecot."))
        self.rt.chmod(0o755)
        self.port = free_port()
        for sub in ("run", "state", "mail"):
            (self.rt / sub).mkdir()
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.rt / "mail", nobody.pw_uid, nobody.pw_gid)
            fields = f"uid=nobody gid={grp.getgrgid(nobody.pw_gid).gr_name}"
            unprivileged, chroot = "", ""
        else:
            me, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
            fields, chroot = "", "chroot ="
            unprivileged = (f"default_internal_user = {me}\ndefault_internal_group = {group}\n"
                            f"default_login_user = {me}\nfirst_valid_uid = {os.geteuid()}\nservice anvil {{\n  chroot =\n}}")
        (self.rt / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        (self.rt / "users").chmod(0o644)
        (self.rt / "dovecot.conf").write_text(_CONF.format(rt=self.rt, port=self.port, userdb_fields=fields,
                                                           unprivileged=unprivileged, chroot=chroot))
        with open(os.devnull, "rb") as devnull, open(self.rt / "stderr.log", "ab") as log:
            subprocess.run([DOVECOT, "-c", str(self.rt / "dovecot.conf")], stdin=devnull, stdout=log, stderr=log,
                           check=True, timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start: {(self.rt / 'dovecot.log').read_text(errors='replace')[-2000:]}")

    def client(self):
        from imapclient import IMAPClient

        imap = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=60)
        imap.login(USER, PASSWORD)
        return imap

    def stop(self) -> None:
        pidfile = self.rt / "run" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
        shutil.rmtree(self.rt, ignore_errors=True)


def imap_backlog(directory: Path, db_url: str | None, n: int) -> dict:
    reason = missing()
    if reason:
        return {"available": False, "note": reason}
    server = _Dovecot()
    sink = SinkProcess()
    daemon = None
    try:
        items = build(n, seed=23)
        t0 = time.monotonic()
        with server.client() as imap:
            for k in range(0, n, 500):
                imap.multiappend("INBOX", [it.raw() for it in items[k:k + 500]])
            stored = imap.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"]
        append_s = time.monotonic() - t0
        daemon = DaemonProcess(directory, sink.port, db_url)
        daemon.config.write_text(daemon.config.read_text() + (
            f'\n[[imap]]\nname = "bench"\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            f'username = "{USER}"\npassword = "{PASSWORD}"\nfolder = "INBOX"\nafter = "seen"\n'))
        daemon.start()
        t_start = daemon.launched
        sampler = Sampler(daemon, interval=0.2).start()
        try:
            done = sampler.wait_done(n, timeout=max(600, n / 10))
        finally:
            sampler.stop()
        t_fetched = next((t for t, d, p, _ in sampler.samples if d + p >= n), None)
        t_done = sampler.first_time(n)
        wait_acks(sink, [it.message_id for it in items if it.expects_ack], timeout=120)
        with server.client() as imap:
            imap.select_folder("INBOX", readonly=True)
            unseen = len(imap.search(["UNSEEN"]))
        return {"available": True, "messages": n, "appended": stored, "append_s": round(append_s, 1),
                "all_processed": done, "fetched_per_s": round(n / (t_fetched - t_start), 1) if t_fetched else None,
                "processed_per_s": round(n / (t_done - t_start), 1) if t_done else None,
                "seconds": round(t_done - t_start, 1) if t_done else None, "unseen_left": unseen,
                "peak_rss_mb": round(daemon.status("VmHWM") / 2**20, 1), "daemon_errors": daemon.errors(3)}
    finally:
        if daemon is not None:
            daemon.stop()
        sink.stop()
        server.stop()
