"""Rule evaluation speed: median time of one evaluate() call against a typical 5 KB message.

    python bench/bench_rules.py [--runs N]

Targets: 1,000 generated rules < 5 ms median; the shipped config (about 10-20 rules) < 0.5 ms.
The shipped config has a language rule; language detection (langdetect) is reported
separately because it dominates when a message reaches that rule.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk.parse.message import parse  # noqa: E402
from maildesk.policy.agents import load_directory  # noqa: E402
from maildesk.rules import RuleContext, evaluate, load_rules  # noqa: E402
from maildesk.rules.language import detect_language  # noqa: E402
from maildesk.rules.schema import parse_rules  # noqa: E402

__all__ = ["generated_rules", "main", "typical_message"]

WORDS = ("invoice", "refund", "outage", "password", "login", "server", "database", "backup", "network", "printer", "vpn",
         "license", "upgrade", "contract", "renewal", "crash", "error", "timeout", "certificate", "mailbox", "quota")
FILLER = ("the", "we", "is", "not", "since", "our", "please", "can", "you")


def typical_message() -> bytes:
    """A plain-text customer mail of about 5 KB with the headers a real client adds."""
    rnd = random.Random(7)
    lines = []
    while sum(len(x) + 1 for x in lines) < 4600:
        lines.append(" ".join(rnd.choice(WORDS + FILLER)
                              for _ in range(12)))
    body = "Hello support team,\n\n" + "\n".join(lines) + "\n\nBest regards,\nJordan Miller\nAcme Widgets\n"
    head = (
        "Return-Path: <jordan@customer.example.org>\n"
        "Received: from mx.customer.example.org (mx.customer.example.org [192.0.2.10])\n"
        "\tby mail.example.test with ESMTPS id 4F2A1; Mon, 02 Mar 2026 10:15:00 +0100\n"
        "From: Jordan Miller <jordan@customer.example.org>\n"
        "To: Example Support <support@example.test>\n"
        "Cc: ops@customer.example.org\n"
        "Subject: Cannot log in to the customer portal since this morning\n"
        "Date: Mon, 02 Mar 2026 10:14:58 +0100\n"
        "Message-ID: <20260302101458.4F2A1@customer.example.org>\n"
        "MIME-Version: 1.0\n"
        "User-Agent: Mozilla/5.0 Thunderbird/128.0\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
        "Content-Transfer-Encoding: 8bit\n\n"
    )
    return (head + body).encode()


def generated_rules(n: int, seed: int = 1) -> str:
    """``n`` plausible rules: mostly sender/recipient/subject tests, some headers, bodies and groups."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        w1, w2 = rnd.sample(WORDS, 2)
        kind = rnd.random()
        if kind < 0.25:
            when = f'{{ sender_domain = "cust{i}.example.org", subject_contains = "{w1}" }}'
        elif kind < 0.45:
            when = f'{{ recipient = "team{i}@example.test" }}'
        elif kind < 0.65:
            when = f'{{ subject_words = ["{w1}", "{w2}"], queue = "q{i % 7}" }}'
        elif kind < 0.75:
            when = f'{{ header = {{ name = "X-Customer-Id", equals = "{i}" }} }}'
        elif kind < 0.85:
            when = f'{{ any = [ {{ sender = "*@vendor{i}.example.net" }}, {{ subject_matches = "ticket\\\\s+#{i}\\\\b" }} ] }}'
        elif kind < 0.95:
            when = f'{{ sender_domain = "big{i}.example.com", body_contains = "{w1} {w2}" }}'
        else:
            when = f'{{ recipient = "sales{i}@example.test", language = "de" }}'
        then = rnd.choice(['{ priority = "high" }', f'{{ tags = ["t{i}"] }}', '{ team = "tier1" }', '{ assign = "round_robin" }'])
        out.append(f'[[rule]]\nname = "r{i}"\nwhen = {when}\nthen = {then}\n')
    return "\n".join(out)


def median_ms(fn, runs: int) -> float:
    for _ in range(min(20, runs)):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args(argv)
    directory = load_directory(ROOT / "config")
    raw = typical_message()
    msg = parse(raw, rcpt_to=("support@example.test",), source="smtp")
    now = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    ctx = RuleContext(directory=directory, known_contact=True, open_tickets={"bob": 4, "carol": 2, "erin": 0})
    print(f"message: {len(raw)} bytes, {len(msg.text)} characters of text")

    big, problems = parse_rules(generated_rules(1000), "<generated>", directory)
    assert not problems, problems[:3]
    t = median_ms(lambda: evaluate(big, msg, ctx, now), args.runs)
    print(f"1,000 generated rules:          median {t:.3f} ms   (target < 5 ms)  {'OK' if t < 5 else 'SLOW'}")

    small, _ = parse_rules(generated_rules(20), "<generated>", directory)
    t = median_ms(lambda: evaluate(small, msg, ctx, now), args.runs * 4)
    print(f"20 generated rules:             median {t:.3f} ms   (target < 0.5 ms) {'OK' if t < 0.5 else 'SLOW'}")

    shipped = load_rules(ROOT / "config" / "rules.toml", directory)
    t = median_ms(lambda: evaluate(shipped, msg, ctx, now), args.runs * 4)
    print(f"shipped config ({len(shipped)} rules):     median {t:.3f} ms   (target < 0.5 ms) {'OK' if t < 0.5 else 'SLOW'}"
          "  [includes language detection]")
    known = RuleContext(directory=directory, known_contact=True, open_tickets=ctx.open_tickets, language="en")
    t = median_ms(lambda: evaluate(shipped, msg, known, now), args.runs * 4)
    print(f"shipped config, language known: median {t:.3f} ms   (target < 0.5 ms) {'OK' if t < 0.5 else 'SLOW'}")
    t = median_ms(lambda: detect_language(msg.subject, msg.text), args.runs)
    print(f"language detection alone:       median {t:.3f} ms")


if __name__ == "__main__":
    main()
