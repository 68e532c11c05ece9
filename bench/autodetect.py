"""Precision and recall of maildesk.parse.autodetect over tests/corpus/autodetect, and its cost per message.

    python bench/autodetect.py            # the table of figures
    python bench/autodetect.py -v         # and each sample's verdict
    python bench/autodetect.py --bench    # plus parse and classify time per message

The corpus holds messages written for maildesk, modelled on what gateways, appliances and
autoresponders send (bounce/, autoreply/) and on ordinary customer mail (ordinary/).
A bounce or autoresponder counts as found when classify() gives it any verdict (both stop the
acknowledgement); "kind right" counts those whose verdict names the right kind.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maildesk.parse.autodetect import classify  # noqa: E402
from maildesk.parse.message import parse  # noqa: E402

__all__ = ["CORPUS", "Score", "evaluate", "load"]

CORPUS = ROOT / "tests" / "corpus" / "autodetect"
KINDS = ("bounce", "autoreply", "ordinary")


def load(corpus: Path = CORPUS) -> list[tuple[str, str, bytes]]:
    """(expected kind, file name, raw bytes) for every sample."""
    return [(kind, path.name, path.read_bytes()) for kind in KINDS for path in sorted((corpus / kind).glob("*.eml"))]


def verdict_of(raw: bytes):
    """What classify() says about a sample sent by its From address over SMTP."""
    from email.parser import BytesHeaderParser
    from email.utils import parseaddr

    sender = parseaddr(str(BytesHeaderParser().parsebytes(raw)["from"] or ""))[1]
    return classify(parse(raw, mail_from=sender, rcpt_to=("support@example.test",), source="smtp"))


@dataclass
class Score:
    automatic: int = 0  # bounces and autoreplies in the corpus
    found: int = 0  # of those, given any verdict
    kind_right: int = 0
    ordinary: int = 0
    flagged: int = 0  # ordinary mail given a verdict (false positives)
    misses: tuple[str, ...] = ()
    false_positives: tuple[str, ...] = ()

    @property
    def precision(self) -> float:
        return self.found / (self.found + self.flagged) if self.found + self.flagged else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.automatic if self.automatic else 1.0


def evaluate(samples, verbose: bool = False) -> Score:
    score, misses, fps = Score(), [], []
    for kind, name, raw in samples:
        verdict = verdict_of(raw)
        if verbose:
            print(f"{kind:9} {name:45} -> {verdict.kind + ': ' + verdict.reason if verdict else '-'}")
        if kind == "ordinary":
            score.ordinary += 1
            if verdict is not None:
                score.flagged += 1
                fps.append(f"ordinary/{name}")
        else:
            score.automatic += 1
            if verdict is None:
                misses.append(f"{kind}/{name}")
            else:
                score.found += 1
                score.kind_right += verdict.kind == kind
    score.misses, score.false_positives = tuple(misses), tuple(fps)
    return score


def bench(samples, rounds: int) -> None:
    """Time parse() with and without the bounce suspicion step (interleaved, best of rounds, so a
    busy machine distorts both alike) and classify() on its own."""
    import maildesk.parse.message as message

    def timed(group, fn) -> float:
        start = time.perf_counter()
        for raw in group:
            fn(raw)
        return (time.perf_counter() - start) / len(group)

    def plain(raw):
        return parse(raw, mail_from="x@customer.test", source="smtp")

    hint = message.bounce_hint
    for label, group in (("all samples", [raw for _, _, raw in samples]),
                         ("ordinary mail", [raw for kind, _, raw in samples if kind == "ordinary"])):
        with_step, without = [], []
        for _ in range(rounds):
            with_step.append(timed(group, plain))
            message.bounce_hint = lambda msg: None
            try:
                without.append(timed(group, plain))
            finally:
                message.bounce_hint = hint
        msgs = [plain(raw) for raw in group]
        verdicts = min(timed(msgs, classify) for _ in range(rounds))
        print(f"{label:14} parse {min(without) * 1e6:7.1f} µs/msg, with the bounce scan of suspects {min(with_step) * 1e6:7.1f} µs/msg;"
              f" classify {verdicts * 1e6:5.1f} µs/msg")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    samples = load()
    score = evaluate(samples, args.verbose)
    print(f"samples: {score.automatic} bounces/autoreplies, {score.ordinary} ordinary")
    print(f"recall    {score.recall:.3f}  ({score.found}/{score.automatic} found, {score.kind_right} with the right kind)")
    print(f"precision {score.precision:.3f}  ({score.flagged} of {score.ordinary} ordinary mails flagged)")
    for name in score.misses:
        print(f"  missed: {name}")
    for name in score.false_positives:
        print(f"  false positive: {name}")
    if args.bench:
        bench(samples, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
