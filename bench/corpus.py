"""A deterministic, generated helpdesk mail corpus (all text is made up here).

:func:`build` returns a list of :class:`Item` in sending order. The mix, per message:

* new requests from customers (most of them), plain or multipart/alternative, about 10%
  with attachments (multipart/mixed), sizes from 1 KB to 200 KB;
* about 30% replies to earlier conversations: by ``In-Reply-To``/``References`` to the
  customer's own earlier Message-ID, by the ``[MD-n]`` subject reference from the same
  sender, or as a real reply to our acknowledgement (to its signed ``Reply-To``);
* a few auto-replies (``Auto-Submitted``) and bounces (``multipart/report``) of our
  acknowledgements;
* charsets utf-8, iso-8859-1, koi8-r, windows-1251, iso-8859-7 and iso-2022-jp, with
  RFC 2047 headers and 8bit, quoted-printable or base64 bodies.

Ticket numbers and our acknowledgements' Message-IDs are not known in advance, so items
that need them carry placeholders (:data:`PLACEHOLDERS`) and a ``parent``; the load
generator fills them in from the acknowledgement the sink saw (:meth:`Item.wire`).
"""

from __future__ import annotations

import base64
import html
import quopri
import random
from dataclasses import dataclass
from email.header import Header

__all__ = ["PLACEHOLDERS", "Item", "big_message", "build", "small_message"]

SUPPORT = ("support@example.test", "billing@example.test")
PLACEHOLDERS = (b"@@REF@@", b"@@ACKID@@", b"@@TOKEN@@")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GAP = 120  # a reply's parent is at least this many messages earlier (committed before it)

_EN = _words("printer invoice login password account server mailbox license backup report upgrade "
             "outage screen network laptop payment refund contract renewal calendar meeting export "
             "import phone error message window update version customer order delivery address portal "
             "browser")
_EN_GLUE = _words("the a our my your this that is was not since after before when please could would we I it")
_RU = _words("принтер счёт пароль сервер почта лицензия резервная копия отчёт обновление сеть ноутбук "
             "оплата возврат договор календарь встреча телефон ошибка окно версия заказ доставка "
             "адрес портал браузер не работает после вчера сегодня пожалуйста помогите срочно")
_EL = _words("εκτυπωτής τιμολόγιο κωδικός διακομιστής ταχυδρομείο άδεια αντίγραφο αναφορά ενημέρωση "
             "δίκτυο φορητός πληρωμή επιστροφή σύμβαση ημερολόγιο συνάντηση τηλέφωνο σφάλμα παράθυρο "
             "έκδοση παραγγελία παράδοση διεύθυνση δεν λειτουργεί χθες σήμερα παρακαλώ βοήθεια")
_JA = _words("プリンター 請求書 パスワード サーバー メール ライセンス バックアップ 報告 更新 ネットワーク "
             "支払い 返金 契約 会議 電話 エラー 画面 注文 配送 住所 ログイン できません 昨日 今日 "
             "お願いします 至急 確認")
_LANG = {"en": (_EN, _EN_GLUE, " "), "ru": (_RU, (), " "), "el": (_EL, (), " "), "ja": (_JA, (), "")}
# charset -> (language, share of messages)
_CHARSETS = (("utf-8", "en", 0.40), ("iso-8859-1", "en", 0.10), ("utf-8", "ru", 0.06), ("koi8-r", "ru", 0.12),
             ("windows-1251", "ru", 0.12), ("iso-8859-7", "el", 0.10), ("iso-2022-jp", "ja", 0.10))
_NAMES = {"en": ["Jordan Miller", "Priya Shah", "Tom Becker", "Ana Souza", "Lee Wong", "Sam O'Neil"],
          "ru": ["Иван Петров", "Мария Смирнова", "Олег Козлов"], "el": ["Νίκος Παπαδόπουλος", "Ελένη Γεωργίου"],
          "ja": ["山田 太郎", "佐藤 花子"]}


@dataclass
class Item:
    index: int
    kind: str  # new | reply-header | reply-subject | reply-ack | autoreply | bounce | big
    mail_from: str
    rcpt: str  # "@@TOKEN@@": the signed Reply-To of the parent's acknowledgement
    message_id: str
    data: bytes  # the DATA payload: CRLF, dot-stuffed, without the final ".\r\n"
    parent: int | None = None  # index whose acknowledgement fills the placeholders
    expects_ack: bool = False

    @property
    def dynamic(self) -> bool:
        return self.kind in ("reply-subject", "reply-ack", "bounce")

    def raw(self, ack: dict | None = None) -> bytes:
        """The message itself (no SMTP dot-stuffing), e.g. for a pipe or IMAP APPEND."""
        return self.wire(ack)[1].replace(b"\r\n..", b"\r\n.")

    def wire(self, ack: dict | None) -> tuple[str, bytes]:
        """(RCPT TO, DATA payload) with the placeholders filled from the parent's ack record
        (``ticket``: "MD-12", ``message_id``, ``reply_to``), or dummies when there is none."""
        if not self.dynamic:
            return self.rcpt, self.data
        ack = ack or {"ticket": "MD-0", "message_id": f"<none.{self.index}@example.test>", "reply_to": SUPPORT[0]}
        token = ack["reply_to"] or SUPPORT[0]
        data = (self.data.replace(b"@@REF@@", ack["ticket"].split("-")[-1].encode())
                .replace(b"@@ACKID@@", ack["message_id"].encode()).replace(b"@@TOKEN@@", token.encode()))
        return (token if self.rcpt == "@@TOKEN@@" else self.rcpt), data


class _Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.sentences = {lang: [self._sentence(lang) for _ in range(1500)] for lang in _LANG}

    def _sentence(self, lang: str) -> str:
        words, glue, sep = _LANG[lang]
        pool = [*words, *glue, *glue]
        text = sep.join(self.rng.choice(pool) for _ in range(self.rng.randint(5, 12)))
        return text[:1].upper() + text[1:] + ("。" if lang == "ja" else ".")

    def text(self, lang: str, size: int) -> str:
        """About ``size`` characters of paragraphs, one sentence per line (< 100 characters)."""
        sentences, lines, total = self.sentences[lang], [], 0
        while total < size:
            para = self.rng.choices(sentences, k=self.rng.randint(2, 6))
            lines.extend(para)
            lines.append("")
            total += sum(len(s) + 2 for s in para)
        return "\r\n".join(lines).strip() + "\r\n"

    def size(self) -> int:
        r = self.rng.random()
        if r < 0.70:
            return self.rng.randint(600, 6_000)
        if r < 0.95:
            return self.rng.randint(6_000, 40_000)
        return self.rng.randint(40_000, 190_000)


def _hdr(value: str, charset: str) -> str:
    """An RFC 2047 header value (folded) when not ASCII."""
    if value.isascii():
        return value
    return Header(value, charset if charset != "iso-8859-1" else "utf-8", maxlinelen=76).encode().replace("\n", "\r\n")


def _addr(name: str, address: str, charset: str) -> str:
    return f'"{name}" <{address}>' if name.isascii() else f"{_hdr(name, charset)} <{address}>"


def _encode_text(text: str, charset: str, subtype: str, rng: random.Random) -> bytes:
    body = text.encode(charset, "replace")
    if charset == "iso-2022-jp":
        cte = "7bit"
    else:
        cte = rng.choice(("8bit", "quoted-printable", "base64")) if charset != "us-ascii" else "7bit"
    if cte == "quoted-printable":
        body = quopri.encodestring(body.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    elif cte == "base64":
        body = base64.encodebytes(body).replace(b"\n", b"\r\n")
    head = f"Content-Type: text/{subtype}; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    return head.encode() + body


def _html(text: str) -> str:
    paras = "".join(f"<p>{html.escape(p).replace(chr(13) + chr(10), '<br>' + chr(13) + chr(10))}</p>\r\n"
                    for p in text.split("\r\n\r\n"))
    return f"<html><head><meta charset=\"utf-8\"></head><body>\r\n{paras}</body></html>\r\n"


def _attachment(rng: random.Random, size: int) -> bytes:
    kind = rng.choice((("application/pdf", "invoice.pdf"), ("image/png", "screenshot.png"),
                       ("text/csv", "export.csv"), ("application/zip", "logs.zip")))
    if kind[0] == "text/csv":
        rows = [f"{i},{rng.randint(1, 10**6)},item-{rng.randint(1, 999)},{rng.random():.4f}" for i in range(size // 30)]
        payload = ("id,amount,item,ratio\r\n" + "\r\n".join(rows)).encode()
    else:
        payload = rng.randbytes(size)
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (f"Content-Type: {kind[0]}; name=\"{kind[1]}\"\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename=\"{kind[1]}\"\r\n\r\n").encode() + b64


def _multipart(subtype: str, parts: list[bytes], boundary: str) -> tuple[str, bytes]:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/{subtype}; boundary=\"{boundary}\"", b"This is a multi-part message in MIME format.\r\n\r\n" + body


def _finish(headers: list[str], body: bytes) -> bytes:
    raw = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    raw = raw.replace(b"\r\n.", b"\r\n..")
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def _date(i: int) -> str:
    return f"Mon, 23 Nov 2026 {9 + (i // 3600) % 10:02d}:{(i // 60) % 60:02d}:{i % 60:02d} +0100"


def _message(gen: _Gen, i: int, *, sender: tuple[str, str], charset: str, lang: str, subject: str, to: str,
             extra: list[str], attach: bool, quote: str = "") -> tuple[str, bytes]:
    rng = gen.rng
    target = gen.size()
    att_size = 0
    if attach:
        att_size = max(1_000, int(min(target, 140_000) * rng.uniform(0.5, 0.9) * 3 / 4))
        target = max(600, target - att_size * 4 // 3)
    alternative = rng.random() < 0.4
    part = b""
    chars = target // (3 if lang == "ja" else 1)
    for _ in range(4):  # another try when the encoding made the body too big (QP, base64, UTF-8)
        text = gen.text(lang, max(200, chars)) + quote
        if alternative:
            ctype, body = _multipart("alternative", [_encode_text(text, charset, "plain", rng),
                                                     _encode_text(_html(text), charset, "html", rng)], f"alt-{i:06d}")
            part = f"Content-Type: {ctype}\r\n\r\n".encode() + body
        else:
            part = _encode_text(text, charset, "plain", rng)
        if len(part) < target * 1.25:
            break
        chars = int(chars * target / len(part))
    if attach:
        ctype, body = _multipart("mixed", [part, _attachment(rng, att_size)], f"mix-{i:06d}")
        part = f"Content-Type: {ctype}\r\n\r\n".encode() + body
    head, _, body = part.partition(b"\r\n\r\n")
    domain = sender[1].split("@")[1]
    mid = f"<{i:07d}.{rng.getrandbits(40):010x}@{domain}>"
    headers = [f"Received: from mx.{domain} (mx.{domain} [192.0.2.{i % 250 + 1}]) by mail.example.test "
               f"with ESMTPS id {i:X}; {_date(i)}",
               f"From: {_addr(sender[0], sender[1], charset)}", f"To: {to}", f"Subject: {subject}",
               f"Date: {_date(i)}", f"Message-ID: {mid}", "MIME-Version: 1.0",
               rng.choice(("User-Agent: Mozilla/5.0 Thunderbird/128.0", "X-Mailer: Microsoft Outlook 16.0",
                           "X-Mailer: Apple Mail (2.3774)")), *extra, *head.decode().split("\r\n")]
    return mid, _finish(headers, body)


def _bounce(i: int, parent: Item, rng: random.Random) -> Item:
    customer = parent.mail_from
    domain = customer.split("@")[1]
    permanent = rng.random() < 0.8
    status, action = ("5.1.1", "failed") if permanent else ("4.4.1", "delayed")
    mid = f"<bounce.{i:07d}@mx.{domain}>"
    parts = [b"Content-Type: text/plain; charset=us-ascii\r\n\r\nThis is the mail system at host mx." + domain.encode()
             + b".\r\n\r\nYour message could not be delivered to one or more recipients.\r\n",
             (f"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{domain}\r\n\r\n"
              f"Final-Recipient: rfc822; {customer}\r\nAction: {action}\r\nStatus: {status}\r\n"
              f"Diagnostic-Code: smtp; {status[0]}50 {status} <{customer}>: mailbox unavailable\r\n").encode(),
             (b"Content-Type: text/rfc822-headers\r\n\r\nFrom: Example Support <support@example.test>\r\n"
              b"To: " + customer.encode() + b"\r\nSubject: [MD-@@REF@@] Re: your request\r\nMessage-ID: @@ACKID@@\r\n")]
    ctype, body = _multipart("report", parts, f"dsn-{i:06d}")
    ctype = ctype.replace("multipart/report;", "multipart/report; report-type=delivery-status;")
    headers = [f"From: Mail Delivery System <MAILER-DAEMON@mx.{domain}>", "To: support@example.test",
               "Subject: Undelivered Mail Returned to Sender", f"Date: {_date(i)}", f"Message-ID: {mid}",
               "Auto-Submitted: auto-replied", "MIME-Version: 1.0", f"Content-Type: {ctype}"]
    return Item(i, "bounce", "", "support@example.test", mid, _finish(headers, body), parent=parent.index)


def build(n: int, seed: int = 42) -> list[Item]:
    """``n`` messages in sending order, the same for the same (n, seed)."""
    gen = _Gen(seed)
    rng = gen.rng
    items: list[Item] = []
    news: list[Item] = []  # new requests that expect an acknowledgement (parents)
    meta: dict[int, tuple] = {}  # index -> (sender, charset, lang, subject)
    tickets_of: dict[str, int] = {}
    seen_senders: list[str] = []
    retired: set[str] = set()  # bounced customers: no more new tickets (their acks are suppressed)
    for i in range(n):
        r = rng.random()
        parents = len(news) > GAP
        if parents and r < 0.30:
            parent = _earlier(rng, news)
            sender, charset, lang, subject = meta[parent.index]
            how = rng.random()
            kind = "reply-header" if how < 0.4 else "reply-subject" if how < 0.7 else "reply-ack"
            extra, to, rcpt = [], SUPPORT[0], SUPPORT[0]
            if kind == "reply-header":
                extra = [f"In-Reply-To: {parent.message_id}", f"References: {parent.message_id}"]
                subj = "Re: " + _hdr(subject, charset)
            elif kind == "reply-subject":
                subj = "Re: [MD-@@REF@@] " + _hdr(subject, charset)
            else:
                extra = ["In-Reply-To: @@ACKID@@", f"References: {parent.message_id} @@ACKID@@"]
                subj, to, rcpt = "Re: [MD-@@REF@@] Re: " + _hdr(subject, charset), "Example Support <@@TOKEN@@>", "@@TOKEN@@"
            quote = "\r\n".join("> " + s for s in gen.text(lang, 400).split("\r\n")[:8]) + "\r\n"
            mid, data = _message(gen, i, sender=sender, charset=charset, lang=lang, subject=subj,
                                 to=to, extra=extra, attach=rng.random() < 0.06, quote=quote)
            items.append(Item(i, kind, sender[1], rcpt, mid, data, parent=parent.index))
            continue
        if parents and r < 0.315:
            parent = _earlier(rng, news)
            retired.add(parent.mail_from)
            items.append(_bounce(i, parent, rng))
            continue
        charset, lang = _pick_charset(rng)
        if r < 0.36:  # an autoresponder writing to us
            sender = (rng.choice(_NAMES[lang]), f"user{i}@auto{i % 97}.example.net")
            mid, data = _message(gen, i, sender=sender, charset=charset, lang=lang, to=SUPPORT[0],
                                 subject=_hdr("Out of office: " + gen.text(lang, 30).split("\r\n")[0][:40], charset),
                                 extra=["Auto-Submitted: auto-replied", "X-Autoreply: yes"], attach=False)
            items.append(Item(i, "autoreply", sender[1], SUPPORT[0], mid, data))
            continue
        address = rng.choice(seen_senders[-500:]) if seen_senders and rng.random() < 0.15 else ""
        if not address or tickets_of[address] >= 3 or address in retired:
            address = f"{rng.choice(('jordan', 'priya', 'tom', 'ana', 'lee', 'sam', 'ivan', 'maria'))}.{i}" \
                      f"@customer{i % 211}.example.org"
            seen_senders.append(address)
        tickets_of[address] = tickets_of.get(address, 0) + 1
        sender = (rng.choice(_NAMES[lang]), address)
        subject = gen.text(lang, 40).split("\r\n")[0][:60].rstrip(".。")
        to = rng.choice(SUPPORT)
        mid, data = _message(gen, i, sender=sender, charset=charset, lang=lang, subject=_hdr(subject, charset),
                             to=to, extra=[], attach=rng.random() < 0.12)
        item = Item(i, "new", address, to, mid, data, expects_ack=True)
        items.append(item)
        news.append(item)
        meta[i] = (sender, charset, lang, subject)
    return items


def _earlier(rng: random.Random, news: list[Item]) -> Item:
    """A new request at least GAP requests back, among the last 4000."""
    return news[rng.randrange(max(0, len(news) - 4000), len(news) - GAP)]


def _pick_charset(rng: random.Random) -> tuple[str, str]:
    r, acc = rng.random(), 0.0
    for charset, lang, share in _CHARSETS:
        acc += share
        if r < acc:
            return charset, lang
    return "utf-8", "en"


def small_message(i: int, seed: int = 7) -> Item:
    """One ordinary new request (warm-up, ``maildesk ingest``)."""
    gen = _Gen(seed + i)
    address = f"warm.{i}@warmup{i % 50}.example.org"
    mid, data = _message(gen, i, sender=("Pat Warm", address), charset="utf-8", lang="en", to=SUPPORT[0],
                         subject=f"Warm-up request {i}", extra=[], attach=False)
    return Item(i, "new", address, SUPPORT[0], mid, data, expects_ack=True)


def big_message(size: int = 25_000_000, seed: int = 3) -> Item:
    """One new request of ``size`` bytes: a short text and one large attachment."""
    rng = random.Random(seed)
    att = (size - 3_000) * 57 // 78  # base64: 57 bytes per 76-character line
    part = _encode_text("Hello,\r\n\r\nthe full database dump is attached.\r\n\r\nRegards,\r\nBig Sender\r\n",
                        "utf-8", "plain", rng)
    ctype, body = _multipart("mixed", [part, _attachment(rng, att)], "big-boundary")
    mid = "<big.25mb@bigsender.example.org>"
    headers = ["From: Big Sender <big@bigsender.example.org>", "To: support@example.test",
               "Subject: Database dump (25 MB)", f"Date: {_date(0)}", f"Message-ID: {mid}", "MIME-Version: 1.0",
               f"Content-Type: {ctype}"]
    return Item(0, "big", "big@bigsender.example.org", SUPPORT[0], mid, _finish(headers, body), expects_ack=True)
