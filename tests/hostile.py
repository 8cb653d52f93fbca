"""A folder of hostile and broken inputs, for "a hostile folder indexes to completion within bounded time".

``build_hostile_folder(folder)`` writes every kind below and returns ``{relative name: expectation}``:

- ``"fail"``: must be reported in ``failed`` (with a reason);
- ``"ok"``: must index and be searchable for its planted word, ``GOOD_TEXT[name]``;
- ``"either"``: may index or fail (or, for things that are not files, be ignored), but the run must finish.

``KINDS[name]`` says in one line what each entry attacks. Everything is deterministic, needs no network,
takes about two seconds to write and under 10 MB of disk besides one 100 MB Markdown file (``text/huge.md``,
whose bound must be hit: only ``max_pages`` pages of it are read): the bombs are small on disk and large only once
decoded (flate streams built by repeating one fully-flushed deflate block, shared page-tree nodes,
object streams). Some entries are not regular files (a FIFO, a link to /dev/zero, a symlink loop, a
directory named ``.pdf``, a path longer than PATH_MAX): opening, reading or even walking them carelessly
blocks, never ends or raises. The ``.png`` page with the planted word ``pelican`` is searchable only
through OCR (tesseract).

Names are relative to ``folder`` with ``/`` separators; one name holds a newline and one is not valid
UTF-8 (it is the ``os.fsdecode`` form, with a surrogate escape).

What they did to the parsers, each in its own process under a 2 GiB RLIMIT_AS (pypdfium2 5.15, Pillow 13,
unstructured 0.27 ``fast``, Python 3.11); everything not named here finished or raised in under 8 s:

- docrag's reader: ``form_fanout``, ``content_bomb_paths`` and ``nested_flate_bomb`` abort the process
  (SIGABRT: an allocation fails inside PDFium's page load, ``FPDF_LoadPage``), so only a worker that can
  die contains them; ``content_bomb_noop`` takes ~7 s; ``many_pages``, ``page_tree_dag`` and
  ``tiff_many_frames`` yield 5000 pages each (``max_pages``); the deep path raises a bare ``OSError``
  (ENAMETOOLONG), not a ``DocumentError``.
- unstructured: ``length_self``, ``length_cycle`` (pdfminer loops on the /Length cycle), ``zero.pdf``,
  ``pipe.pdf`` and ``many_pages`` run past 20 s; ``form_fanout`` and ``dense_text`` die for memory (its
  import alone takes 1.8 GiB of address space); the non-UTF-8 name raises UnicodeEncodeError; most
  damaged files come back as zero elements, the error swallowed and logged.
- ``discover()`` (Python 3.11 ``rglob``) raises ``OSError`` on the whole folder because of the deep path,
  and silently drops the FIFO, the /dev/zero link, the dangling and self links and the directory.
"""

from __future__ import annotations

import io
import os
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from docrag.testing import pdfgen

__all__ = ["DEEP_NAME", "GOOD_TEXT", "KINDS", "build_hostile_folder"]

NEWLINE_NAME = "new\nline.pdf"
QUOTE_NAME = 'it\'s "quoted" back\\slash; --.pdf'
UNICODE_NAME = "name with spaces & ünïcødé ✓ 文档.pdf"
LONG_NAME = "long_" + "n" * 240 + ".pdf"  # 249 bytes: near NAME_MAX (255)
BAD_UTF8_NAME = os.fsdecode(b"bad\xff\xfename.pdf")
DEEP_SEGMENT = "d" * 200
DEEP_LEVELS = 22  # 22 x 201 bytes: the path is longer than PATH_MAX (4096)
DEEP_NAME = "/".join(["deep", *[DEEP_SEGMENT] * DEEP_LEVELS, "deep.pdf"])

# The "ok" files and the distinctive word each contains (plain lower-case dictionary words, so lexical
# indexes and OCR both keep them intact).
GOOD_TEXT: dict[str, str] = {
    "good.pdf": "zeppelin",
    "scan.png": "pelican",
    "sub/deeper/nested.pdf": "walrus",
    "UPPER.PDF": "quokka",
    UNICODE_NAME: "tangerine",
    NEWLINE_NAME: "bagpipe",
    QUOTE_NAME: "harpsichord",
    LONG_NAME: "accordion",
    "owner_password_only.pdf": "mandolin",
    "loopdir/looped.pdf": "armadillo",
    "text/huge.md": "sassafras",
    "text/nested.html": "tamarind",
}

KINDS: dict[str, str] = {}  # name -> what it attacks (filled by the registry below)

_Builder = Callable[[Path], None]
_REGISTRY: list[tuple[str, str, str, _Builder]] = []


def _kind(name: str, expect: str, what: str) -> Callable[[_Builder], _Builder]:
    def register(fn: _Builder) -> _Builder:
        _REGISTRY.append((name, expect, what, fn))
        KINDS[name] = what
        return fn

    return register


# --- raw PDF writing ----------------------------------------------------------------------------------------

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
SENTENCE = "This page belongs to the hostile folder and carries the planted word {} for the search test."


def _stream(data: bytes, entries: bytes = b"", length: bytes | None = None) -> bytes:
    """A stream object body; ``length`` overrides /Length (e.g. an indirect reference)."""
    length = length if length is not None else b"%d" % len(data)
    return b"<< " + entries + b" /Length " + length + b" >>\nstream\n" + data + b"\nendstream"


def _pdf(objects: list[bytes], *, trailer: bytes = b"", prev_self: bool = False, xref_shift: int = 0) -> bytes:
    """Objects numbered from 1 (1 is the catalog) with an xref table; options break the table on purpose."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    rng = random.Random(len(objects))
    for off in offsets:
        off = (off + xref_shift + rng.randrange(1000)) if xref_shift else off
        out += b"%010d 00000 n \n" % off
    if prev_self:
        trailer += b" /Prev %d" % xref
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def _objstm_pdf(objects: list[bytes], streams: set[int], per_stm: int = 4000) -> bytes:
    """A PDF 1.5 file: non-stream objects packed (compressed) into object streams, an xref stream."""
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    entries: dict[int, tuple[int, int, int]] = {0: (0, 0, 0xFFFF)}
    for i in sorted(streams):
        entries[i] = (1, len(out), 0)
        out += b"%d 0 obj\n" % i + objects[i - 1] + b"\nendobj\n"
    packed = [i for i in range(1, len(objects) + 1) if i not in streams]
    num = len(objects) + 1
    for start in range(0, len(packed), per_stm):
        chunk = packed[start : start + per_stm]
        head, body = [], bytearray()
        for k, i in enumerate(chunk):
            head.append(b"%d %d" % (i, len(body)))
            body += objects[i - 1] + b"\n"
            entries[i] = (2, num, k)
        first = b" ".join(head) + b"\n"
        data = zlib.compress(first + bytes(body), 9)
        entries[num] = (1, len(out), 0)
        info = b"/Type /ObjStm /N %d /First %d /Filter /FlateDecode" % (len(chunk), len(first))
        out += b"%d 0 obj\n" % num + _stream(data, info) + b"\nendobj\n"
        num += 1
    entries[num] = (1, len(out), 0)
    rows = b"".join(struct.pack(">BIH", *entries.get(i, (0, 0, 0))) for i in range(num + 1))
    data = zlib.compress(rows, 9)
    info = b"/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Filter /FlateDecode" % (num + 1)
    xref = len(out)
    out += b"%d 0 obj\n" % num + _stream(data, info) + b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _page_pdf(
    content: bytes,
    *,
    page_extra: bytes = b"",
    resources: bytes = b"<< /Font << /F1 5 0 R >> >>",
    mediabox: bytes = b"[0 0 612 792]",
    content_entries: bytes = b"",
    content_length: bytes | None = None,
    extra: list[bytes] | None = None,
    prev_self: bool = False,
    xref_shift: int = 0,
) -> bytes:
    """One page: 1 catalog, 2 pages, 3 page, 4 content stream, 5 Helvetica, then ``extra`` from 6 on."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox "
            + mediabox
            + b" /Contents 4 0 R /Resources "
            + resources
            + b" "
            + page_extra
            + b" >>",
            _stream(content, content_entries, content_length),
            FONT,
            *(extra or []),
        ],
        prev_self=prev_self,
        xref_shift=xref_shift,
    )


def _pdf_string(text: str) -> bytes:
    return b"(" + text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text(*lines: str, size: int = 12, x: int = 72, y: int = 720) -> bytes:
    out = [b"BT /F1 %d Tf %d TL %d %d Td" % (size, size + 4, x, y)]
    out += [_pdf_string(line) + b" Tj T*" for line in lines]
    return b"\n".join([*out, b"ET"])


def _sentence_pdf(word: str, **kwargs) -> bytes:  # kwargs: those of _page_pdf
    return _page_pdf(_text(SENTENCE.format(word), "A second line, so the page has a real text layer."), **kwargs)


def _flate_repeat(chunk: bytes, times: int) -> bytes:
    """zlib data of ``chunk * times`` without compressing it all: after a full flush deflate restarts, so the
    compressed chunk can be repeated (this is how a 200 MB stream fits in a few hundred KB, built in ms)."""
    c = zlib.compressobj(9)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    header, block = first[:2], again
    adler = 1
    for _ in range(times):
        adler = zlib.adler32(chunk, adler)
    return header + block * times + b"\x03\x00" + struct.pack(">I", adler)  # 03 00: an empty final block


def _random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _image_page(image_dicts: list[bytes], content: bytes | None = None) -> bytes:
    """A page drawing image XObjects /Im0.. (objects 6..) over the page."""
    names = b" ".join(b"/Im%d %d 0 R" % (k, 6 + k) for k in range(len(image_dicts)))
    draw = b" ".join(b"q 500 0 0 600 50 %d cm /Im%d Do Q" % (100 + 10 * k, k) for k in range(len(image_dicts)))
    return _page_pdf(
        (content or b"") + b"\n" + draw,
        resources=b"<< /Font << /F1 5 0 R >> /XObject << " + names + b" >> >>",
        extra=image_dicts,
    )


def _png(width: int, height: int, raw: bytes, *, bit_depth: int = 8, colour: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


# --- good files -----------------------------------------------------------------------------------------------


@_kind("good.pdf", "ok", "control: an ordinary two-page prose PDF (reportlab)")
def _good(p: Path) -> None:
    pdfgen.planted_pdf(p, f"The planted word is {GOOD_TEXT['good.pdf']}, written on page two.", n_pages=2)


@_kind("scan.png", "ok", "control: a scan-like PNG of a text page, searchable only through OCR")
def _scan_png(p: Path) -> None:
    img = Image.new("L", (1240, 1754), 250)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=44)
    lines = [
        "Field notes from the harbour",
        "",
        "A brown pelican dived for fish",
        "near the old pier at dawn.",
        "The word to find is pelican.",
        "",
        "Weather was calm and clear.",
    ]
    for i, line in enumerate(lines):
        draw.text((110, 160 + 70 * i), line, fill=20, font=font)
    img.save(p, optimize=False)


@_kind("sub/deeper/nested.pdf", "ok", "control: a normal PDF two folders down (the walk must recurse)")
def _nested(p: Path) -> None:
    pdfgen.planted_pdf(
        p, f"Nested folders hold the word {GOOD_TEXT['sub/deeper/nested.pdf']} here.", n_pages=1, planted_page=1, seed=3
    )


@_kind("UPPER.PDF", "ok", "an upper-case suffix (.PDF): suffix matching must be case-insensitive")
def _upper(p: Path) -> None:
    p.write_bytes(_sentence_pdf(GOOD_TEXT["UPPER.PDF"]))


@_kind(UNICODE_NAME, "ok", "a name with spaces, '&', accents, a symbol and CJK (quoting, encoding)")
def _unicode(p: Path) -> None:
    p.write_bytes(_sentence_pdf(GOOD_TEXT[UNICODE_NAME]))


@_kind(NEWLINE_NAME, "ok", "a newline inside the file name (line-based logs, reports, shell quoting)")
def _newline(p: Path) -> None:
    p.write_bytes(_sentence_pdf(GOOD_TEXT[NEWLINE_NAME]))


@_kind(QUOTE_NAME, "ok", "quotes, a backslash, ';' and '--' in the name (SQL where-clauses, JSON, shells)")
def _quote(p: Path) -> None:
    p.write_bytes(_sentence_pdf(GOOD_TEXT[QUOTE_NAME]))


@_kind(LONG_NAME, "ok", "a 249-byte file name, near NAME_MAX (derived names/paths must not overflow)")
def _long(p: Path) -> None:
    p.write_bytes(_sentence_pdf(GOOD_TEXT[LONG_NAME]))


@_kind("owner_password_only.pdf", "ok", "RC4-encrypted with an empty user password: opens without asking")
def _owner_only(p: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    enc = StandardEncryption("", ownerPassword="owner-secret", canPrint=1, canCopy=0)
    c = canvas.Canvas(str(p), pagesize=A4, encrypt=enc, invariant=1)
    c.drawString(72, 700, SENTENCE.format(GOOD_TEXT["owner_password_only.pdf"]))
    c.drawString(72, 680, "Only copying is restricted; anyone may open and read this document.")
    c.showPage()
    c.save()


@_kind("loopdir/looped.pdf", "ok", "a good file beside a symlink loop: found once, not once per lap")
def _looped(p: Path) -> None:
    p.write_bytes(_sentence_pdf(GOOD_TEXT["loopdir/looped.pdf"]))


# --- files that cannot be read: must be reported -------------------------------------------------------------


@_kind("empty.pdf", "fail", "a zero-byte file")
def _empty(p: Path) -> None:
    p.write_bytes(b"")


@_kind("truncated.pdf", "fail", "a PDF cut to its first third: no xref, no trailer, no pages")
def _truncated(p: Path) -> None:
    full = pdfgen.prose_pdf(p).read_bytes()
    p.write_bytes(full[: len(full) // 3])


@_kind("header_random.pdf", "fail", "a %PDF- header followed by 64 KB of random bytes")
def _header_random(p: Path) -> None:
    p.write_bytes(b"%PDF-1.7\n" + _random(65536, 1))


@_kind("png_named.pdf", "fail", "mislabelled: a PNG image named .pdf")
def _png_named(p: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="PNG")
    p.write_bytes(buf.getvalue())


@_kind("pdf_named.png", "fail", "mislabelled: a PDF named .png (the image decoder gets PDF bytes)")
def _pdf_named(p: Path) -> None:
    p.write_bytes(_sentence_pdf("misnamed"))


@_kind("html_named.pdf", "fail", "mislabelled: an HTML page named .pdf (a 'download' that was an error page)")
def _html_named(p: Path) -> None:
    p.write_text(
        "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
        "<body><h1>Forbidden</h1><p>You don't have permission to access this PDF.</p></body></html>\n"
    )


def _zip(member: bytes, method: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("inner.pdf", date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = method
        zf.writestr(info, member)
    return buf.getvalue()


@_kind("zip_named.pdf", "fail", "mislabelled: a ZIP archive (holding a deflated PDF) named .pdf")
def _zip_named(p: Path) -> None:
    p.write_bytes(_zip(_sentence_pdf("zipped") + b"%" * 2000, zipfile.ZIP_DEFLATED))


@_kind("zip_stored_pdf.pdf", "either", "a polyglot: a ZIP storing a PDF uncompressed (PDFium finds the PDF inside)")
def _zip_stored(p: Path) -> None:
    p.write_bytes(_zip(_sentence_pdf("zipstored"), zipfile.ZIP_STORED))


@_kind("encrypted.pdf", "fail", "encrypted with a user password: cannot be opened without it")
def _encrypted(p: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(p), pagesize=A4, encrypt=StandardEncryption("secret", canPrint=0), invariant=1)
    c.drawString(72, 700, "secret text")
    c.showPage()
    c.save()


@_kind("no_pages.pdf", "fail", "a valid PDF whose page tree is empty (zero pages)")
def _no_pages(p: Path) -> None:
    p.write_bytes(_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]))


@_kind("png_bomb.png", "fail", "a PNG header declaring 60000x60000 pixels (3.6 Gpx) over a tiny IDAT")
def _png_bomb(p: Path) -> None:
    pdfgen.png_bomb(p, 60000)


@_kind("bad_crc.png", "fail", "a PNG whose IHDR chunk has a wrong CRC")
def _bad_crc(p: Path) -> None:
    data = bytearray(_png(32, 32, zlib.compress(b"\x00" + b"\x80" * 32) * 1))
    data[29] ^= 0xFF  # last byte of the IHDR CRC (8 signature + 4 length + 4 type + 13 data)
    p.write_bytes(bytes(data))


@_kind("gif_named.png", "fail", "a GIF named .png: decodable, but a format docrag does not accept")
def _gif(p: Path) -> None:
    buf = io.BytesIO()
    Image.new("P", (32, 32), 3).save(buf, format="GIF")
    p.write_bytes(buf.getvalue())


@_kind("jpeg_header_only.jpg", "fail", "a JPEG that ends after its SOI/APP0 markers (no frame, no scan)")
def _jpeg_header(p: Path) -> None:
    buf = io.BytesIO()
    pdfgen.scan_image(size=(200, 200)).save(buf, format="JPEG", quality=60)
    p.write_bytes(buf.getvalue()[:20])


@_kind("dangling.pdf", "fail", "a dangling symlink (its target does not exist)")
def _dangling(p: Path) -> None:
    p.symlink_to("does-not-exist.pdf")


@_kind("selfloop.pdf", "fail", "a symlink to itself: stat() fails with ELOOP")
def _selfloop(p: Path) -> None:
    p.symlink_to(p.name)


@_kind("zero.pdf", "fail", "a symlink to /dev/zero: reading it never ends (and never returns EOF)")
def _zero(p: Path) -> None:
    p.symlink_to("/dev/zero")


@_kind("pipe.pdf", "fail", "a FIFO (named pipe): open() blocks forever, no writer will ever come")
def _pipe(p: Path) -> None:
    os.mkfifo(p)


# --- reference cycles ------------------------------------------------------------------------------------------


@_kind("cycle_resources.pdf", "either", "the page's /Resources is an indirect object that refers back to itself")
def _cycle_resources(p: Path) -> None:
    p.write_bytes(
        _page_pdf(
            _text("Resources cycle."),
            resources=b"6 0 R",
            extra=[
                b"<< /Font << /F1 5 0 R >> /XObject 7 0 R /ExtGState 7 0 R /Properties 6 0 R >>",
                b"<< /Loop 6 0 R /Self 7 0 R /Page 3 0 R >>",
            ],
        )
    )


@_kind("length_self.pdf", "either", "a content stream's /Length is an indirect object that is a ref to itself")
def _length_self(p: Path) -> None:
    p.write_bytes(_page_pdf(_text("Length refers to itself."), content_length=b"6 0 R", extra=[b"6 0 R"]))


@_kind("length_cycle.pdf", "either", "a stream /Length -> 6 0 R -> 7 0 R -> 6 0 R (a two-object ref cycle)")
def _length_cycle(p: Path) -> None:
    content = _text("Length refers round in a cycle.")
    p.write_bytes(_page_pdf(content, content_length=b"6 0 R", extra=[b"7 0 R", b"6 0 R"]))


@_kind("kids_cycle.pdf", "either", "the page tree's /Kids contains the tree node itself (infinite page tree)")
def _kids_cycle(p: Path) -> None:
    p.write_bytes(
        _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                _stream(_text("Kids cycle.")),
                FONT,
            ]
        )
    )


@_kind("parent_loop.pdf", "either", "/Parent chain 3 -> 6 -> 7 -> 6: inherited MediaBox/Resources lookup loops")
def _parent_loop(p: Path) -> None:
    p.write_bytes(
        _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 6 0 R /Contents 4 0 R >>",  # no MediaBox, no Resources: both inherited
                _stream(_text("Parent loop.")),
                FONT,
                b"<< /Type /Pages /Parent 7 0 R /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 6 0 R /Kids [6 0 R] /Count 1 >>",
            ]
        )
    )


def _form(content: bytes, resources: bytes) -> bytes:
    return _stream(content, b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources " + resources)


@_kind("form_self.pdf", "either", "a Form XObject that draws itself (/Fm1 Do inside /Fm1): infinite recursion")
def _form_self(p: Path) -> None:
    p.write_bytes(
        _page_pdf(
            _text("Recursive form.") + b"\n/Fm1 Do",
            resources=b"<< /Font << /F1 5 0 R >> /XObject << /Fm1 6 0 R >> >>",
            extra=[_form(b"0 0 m 100 100 l S 1 0 0 1 1 1 cm /Fm1 Do", b"<< /XObject << /Fm1 6 0 R >> >>")],
        )
    )


@_kind("form_mutual.pdf", "either", "two Form XObjects that draw each other (A -> B -> A)")
def _form_mutual(p: Path) -> None:
    p.write_bytes(
        _page_pdf(
            _text("Mutually recursive forms.") + b"\n/FmA Do",
            resources=b"<< /Font << /F1 5 0 R >> /XObject << /FmA 6 0 R >> >>",
            extra=[
                _form(b"0 0 m 10 10 l S /FmB Do", b"<< /XObject << /FmB 7 0 R >> >>"),
                _form(b"10 10 m 20 0 l S /FmA Do", b"<< /XObject << /FmA 6 0 R >> >>"),
            ],
        )
    )


@_kind("form_fanout.pdf", "either", "'billion laughs': 9 levels of forms each drawing the next 10 times (1e9 paths)")
def _form_fanout(p: Path) -> None:
    levels = 9
    forms = []
    for i in range(levels):
        nxt = 6 + i + 1
        forms.append(_form(b"/F Do " * 10, b"<< /XObject << /F %d 0 R >> >>" % nxt))
    forms.append(_form(b"0 0 m 1 1 l S", b"<< >>"))
    p.write_bytes(
        _page_pdf(
            _text("Exponential forms.") + b"\n/F Do",
            resources=b"<< /Font << /F1 5 0 R >> /XObject << /F 6 0 R >> >>",
            extra=forms,
        )
    )


@_kind("type3_recursive.pdf", "either", "a Type3 font whose glyph procedure shows the same glyph (recursive font)")
def _type3(p: Path) -> None:
    glyph = _stream(b"1000 0 0 0 750 750 d1 0 0 m 750 750 l S BT /T3 1 Tf (a) Tj ET")
    font = (
        b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 750 750] /FontMatrix [0.001 0 0 0.001 0 0]"
        b" /CharProcs << /a 7 0 R >> /Encoding << /Type /Encoding /Differences [97 /a] >>"
        b" /FirstChar 97 /LastChar 97 /Widths [1000] /Resources << /Font << /T3 6 0 R >> >> >>"
    )
    p.write_bytes(
        _page_pdf(
            _text("Recursive Type3 font.") + b"\nBT /T3 24 Tf 72 500 Td (aaaa) Tj ET",
            resources=b"<< /Font << /F1 5 0 R /T3 6 0 R >> >>",
            extra=[font, glyph],
        )
    )


@_kind("xref_prev_loop.pdf", "either", "the trailer's /Prev points at its own xref section (xref chain loop)")
def _xref_loop(p: Path) -> None:
    p.write_bytes(_sentence_pdf("prevloop", prev_self=True))


# --- nesting and size --------------------------------------------------------------------------------------


@_kind("nested_arrays.pdf", "either", "an array nested 100,000 deep in the page dictionary (recursive parsers)")
def _nested_arrays(p: Path) -> None:
    depth = 100_000
    p.write_bytes(_sentence_pdf("nestedarrays", page_extra=b"/Deep " + b"[" * depth + b"]" * depth))


@_kind("nested_dicts.pdf", "either", "dictionaries nested 100,000 deep, in an object the page refers to")
def _nested_dicts(p: Path) -> None:
    depth = 100_000
    deep = b"<< /A " * depth + b"0" + b" >>" * depth
    p.write_bytes(_sentence_pdf("nesteddicts", page_extra=b"/PieceInfo 6 0 R", extra=[deep]))


@_kind("nested_content_arrays.pdf", "either", "a content-stream operand array nested 100,000 deep before TJ")
def _nested_content(p: Path) -> None:
    depth = 100_000
    content = _text("Deep operand arrays.") + b"\nBT /F1 12 Tf 72 600 Td " + b"[" * depth + b"]" * depth + b" TJ ET"
    p.write_bytes(_page_pdf(zlib.compress(content, 9), content_entries=b"/Filter /FlateDecode"))


@_kind("q_nesting.pdf", "either", "100,000 nested q (graphics state saves) before any Q")
def _q_nesting(p: Path) -> None:
    content = b"q " * 100_000 + _text("Deep graphics state.") + b" Q" * 100_000
    p.write_bytes(_page_pdf(zlib.compress(content, 9), content_entries=b"/Filter /FlateDecode"))


@_kind("huge_dict.pdf", "either", "a /Font resource dictionary with 200,000 distinct keys (in an object stream)")
def _huge_dict(p: Path) -> None:
    keys = b" ".join(b"/K%x 5 0 R" % i for i in range(200_000))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font 6 0 R >> >>",
        _stream(_text("Huge dictionary.")),
        FONT,
        b"<< /F1 5 0 R " + keys + b" >>",
    ]
    p.write_bytes(_objstm_pdf(objects, streams={4}))


@_kind("many_pages.pdf", "either", "100,000 distinct leaf pages sharing one content stream (object streams, small)")
def _many_pages(p: Path) -> None:
    n_pages, fan = 100_000, 1000
    n_mid = n_pages // fan
    first_mid, first_leaf = 6, 6 + n_mid
    mids = [
        b"<< /Type /Pages /Parent 2 0 R /Count %d /Kids [%s] >>"
        % (fan, b" ".join(b"%d 0 R" % (first_leaf + m * fan + k) for k in range(fan)))
        for m in range(n_mid)
    ]
    leaves = [b"<< /Type /Page /Parent %d 0 R /Contents 4 0 R >>" % (first_mid + i // fan) for i in range(n_pages)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Count %d /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Kids [%s] >>"
        % (n_pages, b" ".join(b"%d 0 R" % (first_mid + m) for m in range(n_mid))),
        b"<< >>",
        _stream(_text(SENTENCE.format("manypages"), "Every one of the hundred thousand pages shows this.")),
        FONT,
        *mids,
        *leaves,
    ]
    p.write_bytes(_objstm_pdf(objects, streams={4}))


@_kind("page_tree_dag.pdf", "either", "6 levels of shared page-tree nodes, 10 kids each: 10^6 pages from 8 objects")
def _page_dag(p: Path) -> None:
    levels = 6
    nodes = []
    for lvl in range(levels):  # object 6 + lvl; its kids are ten refs to the next level (the last: the page 3)
        kid = 6 + lvl + 1 if lvl < levels - 1 else 3
        kids = b" ".join([b"%d 0 R" % kid] * 10)
        nodes.append(b"<< /Type /Pages /Count %d /Kids [%s] >>" % (10 ** (levels - lvl), kids))
    p.write_bytes(
        _pdf(
            [
                b"<< /Type /Catalog /Pages 6 0 R >>",
                b"<< >>",
                b"<< /Type /Page /Parent 11 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                _stream(_text(SENTENCE.format("pagedag"))),
                FONT,
                *nodes,
            ]
        )
    )


@_kind("count_lie.pdf", "either", "a page tree claiming /Count 2147483647 with one kid")
def _count_lie(p: Path) -> None:
    p.write_bytes(
        _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                _stream(_text(SENTENCE.format("countlie"))),
                FONT,
            ]
        )
    )


@_kind("many_annots.pdf", "either", "a page with 50,000 entries in /Annots (one widget annotation, repeated)")
def _many_annots(p: Path) -> None:
    annots = b"[" + b"6 0 R " * 50_000 + b"]"
    widget = b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (f) /Rect [72 72 200 90] /P 3 0 R >>"
    p.write_bytes(_sentence_pdf("manyannots", page_extra=b"/Annots " + annots, extra=[widget]))


@_kind("contents_array.pdf", "either", "a page whose /Contents is an array of 50,000 refs to one small stream")
def _contents_array(p: Path) -> None:
    refs = b"[" + b"6 0 R " * 50_000 + b"]"
    p.write_bytes(
        _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                + refs
                + b" /Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< >>",
                FONT,
                _stream(b"q 0 0 m 5 5 l S Q BT /F1 4 Tf 10 10 Td (again) Tj ET "),
            ]
        )
    )


@_kind(
    "dense_text.pdf",
    "either",
    "one page of 50,000 tiny words, each its own text object (330k chars): over the "
    "object and character caps (test_parsers reads a page of 200,000 alone)",
)
def _dense_text(p: Path) -> None:
    rng = random.Random(11)
    words = pdfgen.WORDS
    lines = []
    for _ in range(2000):
        lines.append(b" ".join(b"(%s ) Tj" % rng.choice(words).encode() for _ in range(25)) + b" T*")
    content = b"BT /F1 0.3 Tf 0.38 TL 10 782 Td\n" + b"\n".join(lines) + b"\nET\n" + _text("Dense page.", y=60)
    p.write_bytes(_page_pdf(zlib.compress(content, 9), content_entries=b"/Filter /FlateDecode"))


@_kind("many_paths.pdf", "either", "one page with 100,000 tiny filled vector paths")
def _many_paths(p: Path) -> None:
    cells = [b"%.1f %.1f 0.5 0.5 re f" % (20 + (i % 400) * 1.4, 40 + (i // 400) * 2.8) for i in range(100_000)]
    content = _text("Many paths.", y=20) + b"\n" + b"\n".join(cells)
    p.write_bytes(_page_pdf(zlib.compress(content, 9), content_entries=b"/Filter /FlateDecode"))


# --- decompression bombs and endless streams -----------------------------------------------------------------


@_kind("content_bomb_paths.pdf", "either", "a 400 KB content stream inflating to 200 MB of path operators (14M paths)")
def _content_bomb_paths(p: Path) -> None:
    chunk = b"0 0 m 1 1 l S\n" * (1 << 16)  # 896 KB
    data = _flate_repeat(chunk, 228)  # 200 MB
    p.write_bytes(_page_pdf(data, content_entries=b"/Filter /FlateDecode"))


@_kind("content_bomb_noop.pdf", "either", "a content stream inflating to 256 MB of 'q Q' (parse time, no objects)")
def _content_bomb_noop(p: Path) -> None:
    data = _flate_repeat(b"q Q " * (1 << 18), 256)  # 1 MB x 256
    p.write_bytes(_page_pdf(data, content_entries=b"/Filter /FlateDecode"))


@_kind("nested_flate_bomb.pdf", "either", "[/FlateDecode /FlateDecode]: 20 KB -> 1 MB -> 1 GB of spaces")
def _nested_flate(p: Path) -> None:
    inner = _flate_repeat(b" " * (1 << 20), 1024)  # 1 GiB of spaces, ~1 MB compressed
    data = zlib.compress(inner, 9)
    p.write_bytes(_page_pdf(data, content_entries=b"/Filter [/FlateDecode /FlateDecode]"))


@_kind("predictor_overflow.pdf", "either", "a flate stream with /Predictor 15, /Columns 2^31-1, 32 colours, 16 bits")
def _predictor(p: Path) -> None:
    data = zlib.compress(b"\x02" + b"\x00" * 4096)
    parms = b"/Filter /FlateDecode /DecodeParms << /Predictor 15 /Columns 2147483647 /Colors 32 /BitsPerComponent 16 >>"
    p.write_bytes(_page_pdf(data, content_entries=parms))


@_kind("unknown_filter.pdf", "either", "the content stream's filter is /NoSuchDecode")
def _unknown_filter(p: Path) -> None:
    p.write_bytes(_page_pdf(_text("Unknown filter."), content_entries=b"/Filter /NoSuchDecode"))


@_kind("filter_chain_1000.pdf", "either", "a content stream encoded with an array of 1000 /FlateDecode filters")
def _filter_chain(p: Path) -> None:
    data = _text(SENTENCE.format("filterchain"))
    for _ in range(1000):
        data = zlib.compress(data, 1)
    p.write_bytes(_page_pdf(data, content_entries=b"/Filter [" + b"/FlateDecode " * 1000 + b"]"))


@_kind("image_declared_huge.pdf", "either", "an image XObject declaring 60000x60000 pixels over a 4 KB stream")
def _image_huge(p: Path) -> None:
    pdfgen.image_bomb_pdf(p, 60000)


@_kind("image_flate_bomb.pdf", "either", "a real 10000x9000 RGB image (270 MB decoded, under the pixel cap) in 270 KB")
def _image_flate(p: Path) -> None:
    w, h = 10000, 9000
    data = _flate_repeat(b"\xf0" * (w * 3 * 10), h // 10)
    image = _stream(
        data,
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB"
        b" /BitsPerComponent 8 /Filter /FlateDecode" % (w, h),
    )
    p.write_bytes(_image_page([image], _text("Image flate bomb.")))


@_kind("inline_image_huge.pdf", "either", "an inline image (BI ... ID ... EI) declaring 60000x60000 pixels")
def _inline_huge(p: Path) -> None:
    data = zlib.compress(b"\x00" * 4096)
    content = _text("Inline image.") + b"\nq 500 0 0 600 50 100 cm BI /W 60000 /H 60000 /CS /G /BPC 8 /F /Fl ID\n"
    p.write_bytes(_page_pdf(content + data + b"\nEI Q"))


@_kind("jbig2_garbage.pdf", "either", "a JBIG2Decode image (and its /JBIG2Globals) made of random bytes")
def _jbig2(p: Path) -> None:
    image = _stream(
        _random(20000, 2),
        b"/Type /XObject /Subtype /Image /Width 2000 /Height 2000 /ColorSpace"
        b" /DeviceGray /BitsPerComponent 1 /Filter /JBIG2Decode /DecodeParms << /JBIG2Globals 7 0 R >>",
    )
    p.write_bytes(_image_page([image, _stream(b"\x00\x00\x00\x00\x30" + _random(5000, 3))], _text("JBIG2.")))


@_kind("ccitt_garbage.pdf", "either", "CCITTFaxDecode images: random data, and odd parameters (K huge, Columns 0)")
def _ccitt(p: Path) -> None:
    base = b"/Type /XObject /Subtype /Image /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode "
    images = [
        _stream(
            _random(20000, 4),
            base + b"/Width 5000 /Height 5000"
            b" /DecodeParms << /K -1 /Columns 5000 /Rows 5000 /BlackIs1 true /EncodedByteAlign true >>",
        ),
        _stream(
            _random(5000, 5),
            base + b"/Width 4000 /Height 4000"
            b" /DecodeParms << /K 1000000 /Columns 0 /Rows -7 /DamagedRowsBeforeError 99999 >>",
        ),
    ]
    p.write_bytes(_image_page(images, _text("CCITT.")))


@_kind("dct_garbage.pdf", "either", "a DCTDecode (JPEG) image: an SOI marker, then random bytes")
def _dct(p: Path) -> None:
    image = _stream(
        b"\xff\xd8\xff\xe0" + _random(30000, 6),
        b"/Type /XObject /Subtype /Image /Width 4000"
        b" /Height 4000 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode",
    )
    p.write_bytes(_image_page([image], _text("DCT garbage.")))


@_kind("font_garbage.pdf", "either", "a TrueType font whose embedded /FontFile2 is 50 KB of random bytes")
def _font_garbage(p: Path) -> None:
    font = (
        b"<< /Type /Font /Subtype /TrueType /BaseFont /Garbage /FirstChar 32 /LastChar 126"
        b" /Widths [" + b"500 " * 95 + b"] /FontDescriptor 7 0 R >>"
    )
    descriptor = (
        b"<< /Type /FontDescriptor /FontName /Garbage /Flags 32 /FontBBox [0 0 1000 1000]"
        b" /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 /FontFile2 8 0 R >>"
    )
    content = b"BT /G 14 Tf 72 700 Td (Text in a font that cannot be parsed.) Tj ET"
    p.write_bytes(
        _page_pdf(
            content,
            resources=b"<< /Font << /G 6 0 R >> >>",
            extra=[font, descriptor, _stream(_random(50000, 7), b"/Length1 50000")],
        )
    )


# --- page geometry ---------------------------------------------------------------------------------------------


@_kind("huge_mediabox.pdf", "either", "MediaBox 200000 x 200000 pt (beyond the PDF limit of 14400)")
def _huge_mediabox(p: Path) -> None:
    p.write_bytes(_sentence_pdf("hugemediabox", mediabox=b"[0 0 200000 200000]"))


@_kind("userunit.pdf", "either", "/UserUnit 75000 on a 14400 pt page (a 'page' ~15 km wide)")
def _userunit(p: Path) -> None:
    p.write_bytes(_sentence_pdf("userunit", mediabox=b"[0 0 14400 14400]", page_extra=b"/UserUnit 75000"))


@_kind("mediabox_negative.pdf", "either", "MediaBox [0 0 -612 -792] (negative width and height)")
def _mb_negative(p: Path) -> None:
    p.write_bytes(_sentence_pdf("negativebox", mediabox=b"[0 0 -612 -792]"))


@_kind("mediabox_zero.pdf", "either", "MediaBox [0 0 0 0] (zero area: divisions by the page size)")
def _mb_zero(p: Path) -> None:
    p.write_bytes(_sentence_pdf("zerobox", mediabox=b"[0 0 0 0]"))


@_kind("mediabox_nan.pdf", "either", "MediaBox [nan 0 inf -inf] (non-numbers where numbers belong)")
def _mb_nan(p: Path) -> None:
    p.write_bytes(_sentence_pdf("nanbox", mediabox=b"[nan 0 inf -inf]"))


@_kind("mediabox_overflow.pdf", "either", "MediaBox with 60-digit numbers (float overflow to inf) and a tiny height")
def _mb_overflow(p: Path) -> None:
    p.write_bytes(_sentence_pdf("overflowbox", mediabox=b"[0 0 " + b"9" * 60 + b" 0.0001]"))


@_kind("rotate_odd.pdf", "either", "/Rotate 2147483647 (not a multiple of 90, near the int limit)")
def _rotate(p: Path) -> None:
    p.write_bytes(_sentence_pdf("oddrotate", page_extra=b"/Rotate 2147483647"))


# --- damaged structure ---------------------------------------------------------------------------------------


@_kind("bad_xref.pdf", "either", "every xref offset is wrong (PDFium rebuilds the table by scanning)")
def _bad_xref(p: Path) -> None:
    p.write_bytes(_sentence_pdf("badxref", xref_shift=3))


@_kind("truncated_tail.pdf", "either", "a PDF missing its last 10% (xref and trailer gone, objects intact)")
def _truncated_tail(p: Path) -> None:
    full = _sentence_pdf("truncatedtail")
    p.write_bytes(full[: int(len(full) * 0.9)])


@_kind("junk_prefix.pdf", "either", "900 bytes of junk before the %PDF- header (offsets all shifted)")
def _junk_prefix(p: Path) -> None:
    p.write_bytes(b"X" * 899 + b"\n" + _sentence_pdf("junkprefix"))


@_kind("unterminated_string.pdf", "either", "a content stream with an unterminated '(' string running to its end")
def _unterminated(p: Path) -> None:
    content = _text("Before the broken string.") + b"\nBT /F1 12 Tf 72 500 Td (never closed " + b"\\( ( " * 100_000
    p.write_bytes(_page_pdf(zlib.compress(content, 9), content_entries=b"/Filter /FlateDecode"))


# --- hostile images -----------------------------------------------------------------------------------------


@_kind("png_real_bomb.png", "either", "a real 9000x9000 PNG (81 Mpx, just under PIL's bomb limit) in 80 KB")
def _png_real_bomb(p: Path) -> None:
    side = 9000
    row = b"\x00" + b"\xff" * side
    p.write_bytes(_png(side, side, _flate_repeat(row * 1000, side // 1000)))


@_kind("truncated.jpg", "either", "a JPEG cut in the middle of its entropy-coded data")
def _truncated_jpg(p: Path) -> None:
    buf = io.BytesIO()
    pdfgen.scan_image(size=(800, 1000)).save(buf, format="JPEG", quality=70)
    data = buf.getvalue()
    p.write_bytes(data[: len(data) * 2 // 5])


def _tiff(frames: int, loop_to: int | None = None, side: int = 8) -> bytes:
    """A little-endian TIFF of ``frames`` tiny white frames sharing one strip; ``loop_to`` makes the last IFD
    point back to IFD number ``loop_to`` (an IFD chain that never ends)."""
    strip = b"\xff" * (side * side)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + len(strip)) + strip)
    ifd_size = 2 + 8 * 12 + 4
    first = len(out)
    for f in range(frames):
        here = first + f * ifd_size
        nxt = here + ifd_size if f < frames - 1 else (first + loop_to * ifd_size if loop_to is not None else 0)
        tags = [
            (256, 3, 1, side),
            (257, 3, 1, side),
            (258, 3, 1, 8),
            (259, 3, 1, 1),
            (262, 3, 1, 1),
            (273, 4, 1, 8),
            (278, 3, 1, side),
            (279, 4, 1, len(strip)),
        ]
        out += struct.pack("<H", len(tags))
        for tag, typ, count, value in tags:
            out += struct.pack("<HHII", tag, typ, count, value)
        out += struct.pack("<I", nxt)
    return bytes(out)


@_kind("tiff_many_frames.tif", "either", "a TIFF of 20,000 tiny frames (one page per frame: OCR x 20,000)")
def _tiff_many(p: Path) -> None:
    p.write_bytes(_tiff(20_000))


@_kind("tiff_ifd_loop.tif", "either", "a TIFF whose last IFD links back to the first (an endless frame chain)")
def _tiff_loop(p: Path) -> None:
    p.write_bytes(_tiff(3, loop_to=0))


@_kind("webp_garbage.webp", "fail", "a RIFF/WEBP header followed by random bytes")
def _webp(p: Path) -> None:
    body = b"WEBPVP8 " + struct.pack("<I", 4000) + _random(4000, 8)
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


# --- filesystem oddities -------------------------------------------------------------------------------------


@_kind("loopdir/loop", "either", "a symlink loop: loopdir/loop -> . (a walker that follows links never ends)")
def _loop(p: Path) -> None:
    p.symlink_to(".")


@_kind("folder.pdf", "either", "a directory named like a PDF (opening it raises IsADirectoryError)")
def _folder(p: Path) -> None:
    p.mkdir()


@_kind(".hidden.pdf", "either", "a hidden (dot) file with good content: skipped by design, or indexed")
def _hidden(p: Path) -> None:
    p.write_bytes(_sentence_pdf("hiddenfile"))


@_kind("alias.pdf", "either", "a symlink to good.pdf: the same content under a second name")
def _alias(p: Path) -> None:
    p.symlink_to("good.pdf")


@_kind(BAD_UTF8_NAME, "either", "a file name that is not valid UTF-8 (bytes ff fe): str paths carry surrogates")
def _bad_utf8(p: Path) -> None:
    p.write_bytes(_sentence_pdf("badutf"))


@_kind(DEEP_NAME, "either", "a good PDF at a path of 4.4 KB (> PATH_MAX): stat/scandir fail with ENAMETOOLONG")
def _deep(p: Path) -> None:
    pass  # written by _write_deep: the path is too long for ordinary calls


def _write_deep(folder: Path) -> None:
    """Create DEEP_NAME level by level with directory file descriptors (a full path would be too long)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in DEEP_NAME.split("/")[:-1]:
            os.mkdir(part, dir_fd=fd)
            new = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
        out = os.open("deep.pdf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        try:
            os.write(out, _sentence_pdf("deeppath"))
        finally:
            os.close(out)
    finally:
        os.close(fd)


# --- Office, OpenDocument, HTML and Markdown (issue 28) ---------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"".join(b"&lol%s;" % (b"" if i == 1 else b"%d" % (i - 1)) for _ in range(10)))
        for i in range(1, 10)
    )
    + b"]>\n"
)
CT_DOCX = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def _raw_zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A ZIP written byte by byte: (name, stored data, method, crc, declared size) per member, so a member can
    declare a size its few stored bytes inflate to (a bomb) without anything being compressed."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        n = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        out += n + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(n),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += n
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + eocd)


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, 0, zlib.crc32(data), len(data)


def _deflated_zeros(name: str, size_mib: int) -> tuple[str, bytes, int, int, int]:
    """A member that inflates to ``size_mib`` MiB of zeros from a few KB: one fully flushed raw deflate block of
    1 MiB of zeros, repeated (its CRC is not computed: nobody must get that far)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    return name, first + again * (size_mib - 1) + b"\x03\x00", 8, 0, size_mib << 20


@_kind("office/zip_bomb.docx", "fail", "a ZIP bomb named .docx: word/document.xml inflates to 3 GiB of zeros")
def _zip_bomb_docx(p: Path) -> None:
    p.write_bytes(_raw_zip([_stored("[Content_Types].xml", CT_DOCX), _deflated_zeros("word/document.xml", 3072)]))


@_kind("office/entity_bomb.docx", "fail", "an XML entity-expansion bomb (billion laughs) in word/document.xml")
def _entity_bomb_docx(p: Path) -> None:
    doc = (
        BILLION_LAUGHS
        + b'<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>'
    )
    p.write_bytes(_raw_zip([_stored("[Content_Types].xml", CT_DOCX), _stored("word/document.xml", doc)]))


@_kind("office/entity_bomb.odt", "fail", "an XML entity-expansion bomb (billion laughs) in an OpenDocument content.xml")
def _entity_bomb_odt(p: Path) -> None:
    content = (
        BILLION_LAUGHS
        + b'<office:document-content xmlns:office="x"><office:body>&lol9;</office:body></office:document-content>'
    )
    p.write_bytes(
        _raw_zip([_stored("mimetype", b"application/vnd.oasis.opendocument.text"), _stored("content.xml", content)])
    )


@_kind(
    "office/corrupt.xlsx", "fail", "a damaged spreadsheet: a ZIP whose xl/workbook.xml is not XML (LibreOffice fails)"
)
def _corrupt_xlsx(p: Path) -> None:
    ct = CT_DOCX.replace(b"/word/document.xml", b"/xl/workbook.xml").replace(
        b"wordprocessingml.document", b"spreadsheetml.sheet"
    )
    p.write_bytes(_raw_zip([_stored("[Content_Types].xml", ct), _stored("xl/workbook.xml", b"<<<" + _random(4096, 7))]))


def _pptx_with_slides(n: int) -> bytes:
    """A valid .pptx of ``n`` blank slides, written as a ZIP (python-pptx needs minutes for 5,000 slides)."""
    from pptx import Presentation

    buf = io.BytesIO()
    prs = Presentation()
    prs.slides.add_slide(prs.slide_layouts[6])
    prs.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    slide, rels = src.read("ppt/slides/slide1.xml"), src.read("ppt/slides/_rels/slide1.xml.rels")
    pres = src.read("ppt/presentation.xml").decode()
    prels = src.read("ppt/_rels/presentation.xml.rels").decode()
    types = src.read("[Content_Types].xml").decode()
    one_id = re.search(r"<p:sldId [^>]*/>", pres).group(0)
    pres = pres.replace(one_id, "".join(f'<p:sldId id="{256 + i}" r:id="rIdS{i}"/>' for i in range(1, n + 1)))
    one_rel = re.search(r'<Relationship [^>]*Target="slides/slide1.xml"[^>]*/>', prels).group(0)
    kind = re.search(r'Type="([^"]+)"', one_rel).group(1)
    prels = prels.replace(
        one_rel,
        "".join(f'<Relationship Id="rIdS{i}" Type="{kind}" Target="slides/slide{i}.xml"/>' for i in range(1, n + 1)),
    )
    one_type = re.search(r'<Override PartName="/ppt/slides/slide1.xml"[^>]*/>', types).group(0)
    types = types.replace(one_type, "".join(one_type.replace("slide1.xml", f"slide{i}.xml") for i in range(1, n + 1)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            if info.filename.startswith("ppt/slides/"):
                continue
            data = {
                "ppt/presentation.xml": pres,
                "ppt/_rels/presentation.xml.rels": prels,
                "[Content_Types].xml": types,
            }
            zf.writestr(info.filename, data.get(info.filename, src.read(info.filename)))
        for i in range(1, n + 1):
            zf.writestr(f"ppt/slides/slide{i}.xml", slide)
            zf.writestr(f"ppt/slides/_rels/slide{i}.xml.rels", rels)
    return out.getvalue()


@_kind("office/many_slides.pptx", "fail", "a presentation of 5,000 slides (more than max_pages)")
def _many_slides(p: Path) -> None:
    p.write_bytes(_pptx_with_slides(5000))


@_kind("text/huge.md", "ok", "a 100 MB Markdown file: only max_pages pages of it are read")
def _huge_md(p: Path) -> None:
    para = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\n\n"
    block = para * ((1 << 20) // len(para))
    with p.open("wb") as fh:
        fh.write(b"# Field notes\n\nThe planted word of this file is sassafras, at its very start.\n\n")
        for _ in range(100):
            fh.write(block)


@_kind("text/nested.html", "ok", "an HTML page with 100,000 nested elements")
def _nested_html(p: Path) -> None:
    n = 100_000
    p.write_text(
        "<!DOCTYPE html><html><head><title>Deep</title></head><body>"
        + "<div>" * n
        + "<p>The planted word tamarind sits at the bottom of the nesting.</p>"
        + "</div>" * n
        + "</body></html>"
    )


# --- the folder ------------------------------------------------------------------------------------------------


def build_hostile_folder(folder: Path, *, skip: Iterable[str] = ()) -> dict[str, str]:
    """Write every hostile kind (and the good controls) under ``folder``; returns {relative name: expectation}.

    ``skip``: names (keys of ``KINDS``) to leave out, e.g. ``DEEP_NAME`` where the walk is not meant to cope
    with paths longer than PATH_MAX, or ``"tiff_many_frames.tif"`` where OCR is slow.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    skipped = set(skip)
    unknown = skipped - KINDS.keys()
    if unknown:
        raise ValueError(f"unknown kinds to skip: {sorted(unknown)}")
    out: dict[str, str] = {}
    for name, expect, _what, build in _REGISTRY:
        if name in skipped:
            continue
        if name == DEEP_NAME:
            _write_deep(folder)
        else:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            build(path)
        out[name] = expect
    return out


if __name__ == "__main__":  # python tests/hostile.py DIR: write the folder and list it
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile")
    for n, e in build_hostile_folder(target).items():
        print(f"{e:7s} {n!r}: {KINDS[n]}")
