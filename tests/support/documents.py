"""Documents for the QA tests: a long one with a planted fact, a reader that answers by
prompt as a model would, and a PDF built by hand (so no PDF writer is needed)."""

from __future__ import annotations


def minimal_pdf(*lines: str) -> bytes:
    """A one-page PDF with ``lines`` in Helvetica, built by hand (offsets and all)."""
    text_ops = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text_ops} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return pdf


FACT = "The vault under the old mill opens with the code 4172."
QUESTION = "Which code opens the vault under the old mill?"
NOTHING = "Nothing relevant."


def long_document(size: int = 110_000, fact_at: float = 0.6) -> str:
    """Varied English paragraphs of at least ``size`` bytes with FACT planted once."""
    paragraphs: list[str] = []
    index = 0
    while sum(len(p) + 2 for p in paragraphs) < size:
        paragraphs.append(
            f"Section {index}. The committee met on day {index % 28 + 1} to review the harvest "
            f"of field {index * 7 % 101}, which yielded {index * 13 % 997} baskets of grain. "
            f"Members discussed the weather, the state of road {index % 17} and the price of "
            f"salt at the market of the town of Vell{index % 9}. Nobody raised other matters."
        )
        index += 1
    paragraphs.insert(int(len(paragraphs) * fact_at), FACT)
    return "\n\n".join(paragraphs)


def kind_of(prompt: str) -> str:
    if "Relevant text, if any:" in prompt:
        return "map"
    if "Below are notes taken from the parts of a long document" in prompt:
        return "combine"
    if "The answer so far is:" in prompt:
        return "refine"
    return "stuff"


def answer_like_a_reader(prompt: str) -> str:
    if "4172" in prompt:
        return FACT
    return NOTHING if kind_of(prompt) == "map" else "I don't know."
