"""Is this mail a bounce or an autoresponder, even without the standard markers?

RFC 3464 delivery reports and RFC 3834 ``Auto-Submitted`` are easy; this module owns the
rest: gateways, antivirus appliances and old MTAs that bounce in plain text, and
autoresponders that say what they are only in a header of their own, the subject or the
first lines. :func:`classify` is pure over the parsed :class:`InboundMessage` and returns a
:class:`Verdict` (``"bounce"`` or ``"autoreply"``, and why) or None.

Plain-text bounces are recognised by flufl.bounce (Mailman's detectors), which reads a
stdlib message tree, one pass over every body line per pattern; so
:func:`maildesk.parse.message.parse` runs it (:func:`failed_recipients`, on the first
:data:`SCAN_BYTES` of the raw mail parsed again) only when
:func:`bounce_hint` finds a cheap reason to suspect a bounce (null sender, a
MAILER-DAEMON/postmaster-like sender, a bounce subject, ``X-Failed-Recipients``), and
keeps the result in ``InboundMessage.bounce_failures``. The phrase lists cover English,
German, French, Spanish, Italian, Dutch, Portuguese, Polish, Swedish, Russian, Japanese
and Chinese; docs/autodetect.md says how the rules were chosen and what they cost.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import compat32

from maildesk.parse.charsets import unsurrogate
from maildesk.parse.parsed import InboundMessage

__all__ = ["SCAN_BYTES", "Verdict", "bounce_hint", "classify", "failed_recipients", "is_bounce"]

SCAN_BYTES = 32 << 10  # of a suspected bounce, read by flufl.bounce: ~13 ms at worst (docs/autodetect.md)
_HEAD = 1500  # characters of body text the phrase rules read

_BOUNCE_LOCALS = ("mailer-daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster", "mdaemon",
                  "mail.daemon", "smtp-gateway", "mailer")


def _rx(*alternatives: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE | flags)


# A subject that *is* a bounce starts with one of these (a reply or forward prefix in front
# means a person is talking about one). Ambiguous words need a separator after them.
_SEP = r"\s*(?:[:：,\-–—|(\[]|$)"
_BOUNCE_SUBJECT = _rx(
    r"^(?:returned mail|undeliverable(?: mail| message)?|undelivered|nondeliverable|non-deliverable|delivery failure|delivery failed|"
    r"delivery notification|delivery_failure|delayed mail|mail system error|non-delivery report|unzustellbar|"
    r"nicht zustellbar|non remis|non distribuable|non délivré|no se puede entregar|imposible entregar|no entregado|"
    r"non recapitabile|impossibile recapitare|onbestelbaar|niet bezorgd|não é possível entregar|não entregue|"
    r"niedostarczalne|nie można dostarczyć|olevererbart|kan inte levereras|ej levererat|"
    r"недоставляемое сообщение|недоставленное сообщение|не удается доставить|не доставлено|"
    r"配信不能|配送不能|配信エラー|无法投递|无法传递|无法送达|未送达|退信|系统退信)" + _SEP,
    r"^(?:undelivered mail returned to sender|mail delivery failed|failure notice|delivery (?:status|failure) notification|"
    r"(?:message|mail) delivery failure|message status - undeliverable|warning: could not send message|"
    r"message you sent blocked|your message (?:could not be|was not|wasn't) delivered|virus (?:found|detected|alert) in)",
)
# The body says that a mail was not delivered (mail words next to the verb, so a parcel
# that could not be delivered does not count).
_BOUNCE_PHRASE = _rx(
    r"\b(?:message|e-?mail|mail)s?\b[^.\n]{0,100}\b(?:(?:could|can|will|would)(?: not|n't) be|cannot be|"
    r"(?:was|were|has|have|had)(?: not|n't)(?: been)?|failed to be) (?:delivered|sent|relayed|transmitted)",
    r"delivery (?:to the following recipients?|has) (?:failed|was aborted)|delivery has failed to these recipients|"
    r"did not reach (?:some or all of )?the (?:following|intended) recipient|recipient\(?s?\)? could not be reached|"
    r"permanent (?:fatal )?errors?|was undeliverable|(?:^|\n)\s*was not delivered to:|undeliverable (?:message|mail|address)|"
    r"the following addresses? (?:failed|had)",
    r"zustellung an (?:folgende|die folgenden) empfänger[^.\n]{0,60}fehlgeschlagen|remise aux destinataires[^.\n]{0,60}a échoué|"
    r"error en la entrega a (?:estos|los siguientes) destinatarios|recapito non riuscito|bezorging is mislukt|"
    r"falha na entrega|dostarczenie do[^.\n]{0,60}nie powiodło się|leveransen misslyckades|"
    r"配信に失敗|未能传递|投递失败|無法傳遞",
    r"(?:nachricht|e-?mail|mail)\b[^.\n]{0,100}\b(?:konnte|kann|wurde)\b[^.\n]{0,100}\bnicht\b[^.\n]{0,60}zugestellt",
    r"(?:message|courriel)[^.\n]{0,100}(?:n'a pas pu|n’a pas pu|ne peut pas|n'a pas été|n’a pas été) (?:être )?"
    r"(?:remis|distribué|délivré)",
    r"(?:mensaje|correo)[^.\n]{0,100}no (?:se )?(?:pudo|ha podido|puede|ha sido|fue) (?:ser )?entregad?",
    r"(?:messaggio|e-?mail)[^.\n]{0,100}non (?:è stato possibile|ha potuto|può essere|è stato) (?:recapitat|consegnat)",
    r"(?:bericht|e-?mail)[^.\n]{0,100}(?:kon|kan) niet (?:worden )?(?:bezorgd|afgeleverd)",
    r"(?:mensagem|e-?mail)[^.\n]{0,100}não (?:pôde|pode|foi) (?:ser )?entregue",
    r"(?:wiadomoś[cć]|e-?mail)[^.\n]{0,100}nie (?:mogła|może|została|zostać)[^.\n]{0,30}dostarczon",
    r"(?:meddelande|e-?post)[^.\n]{0,100}(?:kunde|kan) inte levereras",
    r"(?:сообщение|письмо)[^.\n]{0,100}не (?:может быть|удалось|было|будет) доставлен|не удалось доставить",
    r"(?:邮件|郵件|信件)[^。\n]{0,40}(?:无法|無法|未能|不能)(?:投递|送达|傳遞|投遞|发送)",
    r"(?:メール|メッセージ)[^。\n]{0,40}(?:配信|送信|配送)(?:でき|不能|に失敗)",
)
# What a bounce quotes or attaches of the mail it returns.
_ORIGINAL_MARK = _rx(r"^[\s*-]*(?:original message|below this line is a copy|start of returned message|returned mail follows|"
                     r"the header of the original|original message (?:follows|headers?)|ursprüngliche nachricht|"
                     r"message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|"
                     r"oryginalna wiadomość|ursprungligt meddelande|исходное сообщение|原始邮件|元のメッセージ)",
                     r"^(?:reporting-mta|received|message-id|return-path):\s", flags=re.MULTILINE)
# Banners that mail software writes at the top of a bounce; people do not (they forward with "Fwd:").
_MTA_BANNER = _rx(r"^\W*(?:this is the (?:postfix program|mail system|qmail-send program|mail delivery agent)|"
                  r"this message was created automatically by mail delivery software|message from interscan|"
                  r"this is a warning message only|transcript of session follows|the original message was received at|"
                  r"this (?:nondelivery|non-delivery|delivery status) report was generated)",
                  flags=re.MULTILINE)
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/delivery-status")

_AUTO_SUBJECT = _rx(
    r"^(?:\[[^\]]{1,60}\]\s*)?(?:out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|automated (?:reply|response)|"
    r"vacation (?:reply|message|notice|autoreply)|away from (?:my |the )?(?:office|desk|e-?mail)|on vacation|on leave|"
    r"abwesenheitsnotiz|abwesend|automatische antwort|automatische abwesenheitsnotiz|urlaubsmeldung|"
    r"réponse automatique|reponse automatique|absence|absent|message d'absence|absence du bureau|"
    r"respuesta automática|respuesta automatica|fuera de la oficina|ausente|ausencia|"
    r"risposta automatica|fuori sede|fuori ufficio|assente|assenza|"
    r"afwezigheidsmelding|automatisch antwoord|afwezig|niet aanwezig|"
    r"resposta automática|resposta automatica|ausência|fora do escritório|"
    r"autoodpowiedź|autoodpowiedz|odpowiedź automatyczna|automatyczna odpowiedź|nieobecność|poza biurem|"
    r"frånvaro|frånvarande|automatiskt svar|autosvar|"
    r"автоответ|автоматический ответ|автоответчик|отсутствие|нет на месте|в отпуске|"
    r"不在|不在通知|不在のお知らせ|自動応答|自動返信|自动回复|自動回覆|自动答复|外出|休假)" + _SEP,
    r"^(?:out of (?:the )?office (?:autoreply|auto reply|reply|until|till|from|notice)|不在のお知らせ)",
    r"^.{1,60} is out of the office\b",  # Lotus Notes: "Jane Doe is out of the office."
    r"^(?:\[[^\]]{1,40}\]\s*)?(?:request|ticket|case|enquiry|inquiry|anfrage|demande|solicitud)\s*(?:#|no\.?|nr\.?)?\s*"
    r"[\w-]*\d[\w-]*\s*(?:has been |wurde |a été )?(?:received|created|opened|logged|eingegangen|erstellt|reçue?|créée?|recibida)",
)
# An explicit statement of automation near the top of the body.
_AUTO_STATEMENT = _rx(
    r"this is an? (?:automatic|automated|auto-generated)|this (?:e-?mail|message|reply) (?:is|was) (?:an? )?"
    r"(?:automatic|automated|auto-?generated|generated automatically|sent automatically)|\bauto-?reply\b:|\*+ ?auto(?:matic)? reply",
    r"dies ist eine automatische|diese (?:e-?mail|nachricht) wurde automatisch|automatisch (?:generierte|erstellte) "
    r"(?:nachricht|antwort|e-?mail)",
    r"ceci est une? (?:réponse|message|courriel) automatique|ce message (?:est|a été) (?:généré|envoyé) automatiquement",
    r"esta es una respuesta automática|este es un (?:mensaje|correo) automático|este (?:mensaje|correo) (?:es|ha sido) "
    r"(?:generado|enviado) automáticamente",
    r"questa è una risposta automatica|questo è un messaggio automatico|messaggio generato automaticamente",
    r"dit is een automatisch(?:e)? (?:antwoord|bericht|gegenereerd)|dit bericht is automatisch",
    r"esta é uma (?:resposta|mensagem) automática|esta mensagem (?:é|foi) (?:gerada|enviada) automaticamente",
    r"to jest (?:automatyczna odpowiedź|wiadomość automatyczna|automatycznie)|wiadomość (?:została )?wygenerowana automatycznie",
    r"detta är ett automatiskt|detta meddelande (?:är|har) (?:genererats|skickats) automatiskt",
    r"это автоматическ(?:ий ответ|ое сообщение|ое уведомление)|(?:сообщение|письмо) (?:сформировано|создано|отправлено) "
    r"автоматически",
    r"这是一?封?自动回复|此邮件为?(?:系统)?自动(?:回复|发送)|本邮件为?系统?自动|這是自動回覆|此郵件為自動",
    r"このメールは自動(?:返信|送信|応答)|本メールは自動(?:返信|送信|応答)|自動返信メール|自動応答メッセージ",
    r"(?:we|we've|we have) (?:have )?received your (?:request|e-?mail|message|enquiry|inquiry|ticket)[^.\n]{0,120}"
    r"(?:ticket|case|request|reference)\s*(?:number|id|no\.?|#)?\s*[:#]?\s*[(\[]?#?[\w-]*\d",
)
# Out-of-office wording: counts near the top of a short body together with a return date,
# or with an Exchange rule header.
_OOF_PHRASE = _rx(
    r"out of (?:the )?office|away from (?:the |my )?(?:office|desk|e-?mail)|on (?:annual |parental |sick )?"
    r"(?:leave|vacation|holiday)|not in the office|limited access to (?:my )?e-?mail",
    r"nicht im büro|abwesend|im urlaub|nicht erreichbar|außer haus",
    r"absente? du bureau|en congés?|en vacances|absente? jusqu",
    r"fuera de la oficina|de vacaciones|ausente",
    r"fuori (?:sede|ufficio)|in ferie|assente",
    r"afwezig|met vakantie|niet op kantoor|niet aanwezig",
    r"fora do escritório|de férias|ausente",
    r"poza biurem|na urlopie|nieobecn",
    r"ledig|på semester|inte på kontoret|frånvarande|borta från kontoret",
    r"в отпуске|вне офиса|отсутствую|не в офисе",
    r"不在|休暇|出張中|休假|不在办公室|外出",
)
_RETURN_MARK = _rx(
    r"\b(?:until|till|through|return(?:ing)?|back (?:on|in)|will not return|from \d)",
    r"\b(?:bis|zurück|wieder (?:da|im|erreichbar)|ab dem)\b", r"jusqu|de retour|retour le",
    r"\bhasta\b|regres|vuelvo|volveré", r"\bfino al\b|rientr|tornerò|dal \d",
    r"\btot\b|terug|weer (?:aanwezig|op kantoor)", r"\baté\b|retorno|volto|regresso",
    r"\bdo \d|powr|wracam", r"\btill(?:baka)?\b|åter|tillbaka", r"\bдо \d|вернусь|возвращ",
    r"まで|戻り|返回|回来|之前|以后|期间",
    r"\d{1,2}[./-]\d{1,2}|\d{1,2}\s*(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
)
_GREETING = _rx(
    r"^(?:hello|hi|dear|good (?:morning|afternoon|day)|greetings|hallo|guten tag|sehr geehrte|bonjour|madame|hola|estimad|"
    r"buongiorno|gentile|ciao|goedendag|beste|geachte|olá|prezad|dzień dobry|szanown|hej|god dag|здравствуйте|добрый день|"
    r"уважаем|您好|你好|お世話に|いつも)",
    r"thank you for your (?:e-?mail|message|mail)|thanks for your (?:e-?mail|message)|vielen dank für ihre|danke für ihre|"
    r"merci (?:pour|de) votre|gracias por su|grazie per (?:la sua|il suo)|bedankt voor uw|obrigad[oa] pel[ao] sua|"
    r"dziękuję za|tack för (?:ditt|ert)|спасибо за ваше|感谢您的来信|谢谢您的邮件|メールありがとう",
)
_SENTENCE_END = re.compile(r"(?<=\D[.!;])\s+|(?<=[。！；])|(?<=,)\s+(?=(?:i|we|ich|je|ik|jag)\b)", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|vs|antw|odp|ответ|отв|回复|返信|r|rif|res|fw|fwd|wg|tr)\s*:", re.IGNORECASE)
_AUTO_STEMS = ("auto", "автомат", "自动", "自動", "received your")
_RESPONDER_AGENT = re.compile(r"vacation|autorespond|auto-respond|autoreply|auto-reply|out of office", re.IGNORECASE)
_RULE_HEADERS = ("x-ms-exchange-inbox-rules-loop", "x-ms-exchange-generated-message-source")


@dataclass(frozen=True)
class Verdict:
    kind: str  # "bounce" | "autoreply"
    reason: str


def classify(msg: InboundMessage) -> Verdict | None:
    """``Verdict("bounce", why)``, ``Verdict("autoreply", why)`` or None for a mail from a person."""
    why = _bounce(msg)
    if why:
        return Verdict("bounce", why)
    why = _autoreply(msg)
    return Verdict("autoreply", why) if why else None


def is_bounce(msg: InboundMessage) -> bool:
    """A delivery report, standard or not: treat it like a bounce (it proves no sender)."""
    verdict = classify(msg)
    return verdict is not None and verdict.kind == "bounce"


def bounce_hint(msg: InboundMessage) -> str | None:
    """A cheap reason to suspect a bounce (headers and subject only), or None."""
    if msg.header("x-failed-recipients"):
        return "X-Failed-Recipients"
    sender = _system_sender(msg)
    if sender:
        return sender
    if _BOUNCE_SUBJECT.search(msg.subject.strip()):
        return "bounce subject"
    return None


def failed_recipients(raw: bytes) -> tuple[tuple[str, ...] | None, str | None]:
    """What flufl.bounce finds failing (temporary and permanent) in the first :data:`SCAN_BYTES`
    of ``raw``, sorted, and a problem to record as a defect (None: the scan did not run to the end).
    The report is at the top of a bounce, the returned mail below it; the cut bounds the cost."""
    try:  # the stdlib parser and the heuristic detectors both trip over hostile MIME: never fail processing
        tree = message_from_bytes(raw[:SCAN_BYTES], policy=compat32)
        items = list(tree.raw_items())
        if any(not value.isascii() for _, value in items):  # some detectors call str methods on 8-bit headers
            for name in {name for name, _ in items}:
                del tree[name]
            for name, value in items:
                tree[name] = unsurrogate(value)
        temporary, permanent = _flufl()(tree)
    except Exception as exc:
        return None, f"flufl.bounce could not scan this suspected bounce ({type(exc).__name__}: {str(exc)[:120]})"
    return tuple(sorted({a.decode("ascii", "replace").lower() for a in (*temporary, *permanent)})), None


def _flufl():
    """flufl.bounce's all_failures, imported on first use; its logger (a line per detector at INFO,
    a traceback per broken detector) is kept quiet: the problem is recorded as a defect instead."""
    from flufl.bounce import all_failures

    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    return all_failures


def _system_sender(msg: InboundMessage) -> str | None:
    if msg.null_return_path:
        return "null return path"
    for address in (msg.from_addr, msg.mail_from):
        local = address.split("@", 1)[0].lower()
        if local and (local in _BOUNCE_LOCALS or local.startswith(("mailer-daemon", "postmaster", "mail-daemon"))):
            return f"sender {local}@"
    return None


def _bounce(msg: InboundMessage) -> str | None:
    """A system sender needs one more sign; an ordinary address needs a bounce subject, failure text
    (flufl.bounce's or a phrase) and the returned mail, since a person may well write about a failed delivery."""
    if msg.delivery_report is not None:
        return "delivery status notification (RFC 3464)"
    if msg.header("x-failed-recipients"):
        return "X-Failed-Recipients header (Exim bounce)"
    sender = _system_sender(msg)
    subject = _BOUNCE_SUBJECT.search(msg.subject.strip())
    if not (sender or subject):
        return None
    found = f"flufl.bounce: {len(msg.bounce_failures)} failed recipient(s)" if msg.bounce_failures else None
    phrase = _BOUNCE_PHRASE.search(msg.text[:_HEAD])
    if sender:
        if subject:
            return f"bounce subject {subject.group(0).strip()!r} from {sender}"
        if found or phrase:
            return f"{found or 'delivery failure text'} from {sender}"
        return None
    if not (found or phrase):
        return None
    if (any(a.content_type.lower() in _ORIGINAL_TYPES for a in msg.attachments) or _ORIGINAL_MARK.search(msg.text[:20000])
            or _MTA_BANNER.search(msg.text[:_HEAD])):
        return f"bounce subject {subject.group(0).strip()!r}, {found or 'delivery failure text'} and the returned mail or an MTA banner"
    return None


def _autoreply(msg: InboundMessage) -> str | None:
    auto = msg.header("auto-submitted").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if msg.header("precedence").strip().lower() in ("auto_reply", "auto-reply", "autoreply"):
        return f"Precedence: {msg.header('precedence').strip()}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated", "x-auto-reply-from",
                 "x-auto-response-suppress"):
        value = msg.header(name).strip().lower()
        if value and value not in ("no", "false", "none", "0"):
            return f"autoresponder header {name.title()}"
    if "autoresponder" in msg.header("x-post-messageclass").lower():
        return "autoresponder header X-POST-MessageClass"
    for name in ("x-mailer", "user-agent"):
        agent = _RESPONDER_AGENT.search(msg.header(name))
        if agent:
            return f"autoresponder {name.title()}: {msg.header(name)[:60]}"
    subject = msg.subject.strip()
    hit = _AUTO_SUBJECT.search(subject)
    if hit:
        return f"autoresponder subject {hit.group(0).strip()[:60]!r}"
    head = _first_lines(msg.text, 6).replace("\n", " ")
    low = head.lower()
    hit = any(stem in low for stem in _AUTO_STEMS) and _AUTO_STATEMENT.search(head)  # the stems: a cheap pre-check
    if hit:
        return f"says it is automatic: {hit.group(0)[:60]!r}"
    return _out_of_office(msg)


def _out_of_office(msg: InboundMessage) -> str | None:
    """Absence wording in the first sentence (after a greeting or a thank-you) of a short answer to
    some mail, with a return date, or with an Exchange rule header. People mention their holidays
    too, but rarely as the opening of a reply that asks nothing."""
    rule = any(msg.header(h) for h in _RULE_HEADERS)
    answering = bool(msg.in_reply_to or msg.references or _REPLY_PREFIX.match(msg.subject))
    if not (rule or answering) or len(msg.text) > 2000:
        return None
    top = _first_lines(msg.text, 3).replace("\n", " ")
    sentences = [part for part in _SENTENCE_END.split(top) if part.strip()]
    while sentences and len(sentences[0]) <= 80 and _GREETING.search(sentences[0].strip()):
        sentences.pop(0)
    oof = _OOF_PHRASE.search(sentences[0]) if sentences else None
    if oof is None or "?" in top or "？" in top:
        return None
    if rule or (answering and _RETURN_MARK.search(sentences[0])):
        return f"out-of-office text: {oof.group(0)!r}"
    return None


def _first_lines(text: str, n: int) -> str:
    """The first ``n`` non-empty lines of the body, without quoted text."""
    lines = []
    for line in text[:_HEAD].splitlines():
        line = line.strip()
        if line and not line.startswith(">"):
            lines.append(line)
            if len(lines) == n:
                break
    return "\n".join(lines)
