"""Stamped PDF copies: the visible stamp, the invisible mark and a verifiable view id on every page.

A stamped copy carries its view id three ways, from the easiest to strip to the hardest:

* the document information dictionary: ``/VaultViewId`` (12 lowercase hex digits) and
  ``/VaultViewMac`` (see :func:`view_mac`); gone with any "print to PDF" or metadata scrub;
* an invisible text line (text render mode 3) on every page: ``VAULT-VIEW <id hex> <mac hex>``; it
  survives page extraction and most re-saves, and is found by text search;
* the forensic luma mark (:mod:`vault.marking.forensic`) drawn over every page as a darkening image
  exactly NOMINAL_WIDTH pixels across, so a render or a photo of the page still carries the id.

The MAC makes the first two trustworthy: anyone can write ``/VaultViewId`` into a PDF to blame
someone else, but without the marking secret they cannot write a matching MAC.

The visible stamp (watermark and footer) is drawn as images rather than as PDF text: it shows every
script the page stamp can draw without embedding a font for each (the CJK faces are CFF-outline
collections), and it does not pollute the document's own text when copied or searched.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import pikepdf
from pikepdf import Name
from PIL import Image

from vault.core.pdf_streams import PackedOtherwise, unpacked
from vault.marking.errors import MarkingError
from vault.marking.pdf_overlay import FAST_LEVEL, ViewOverlay, id_line_operators, overlay_form, pdf_number
from vault.marking.pdf_writer import StreamingPdf
from vault.marking.stamp import StampText

META_ID = "/VaultViewId"
META_MAC = "/VaultViewMac"
TEXT_TAG = "VAULT-VIEW"
TEXT_PATTERN = re.compile(r"VAULT-VIEW ([0-9a-f]{12}) ([0-9a-f]{32})")
MAC_LABEL = b"vault/marking/pdf/v1"
IMAGE_DPI = 150
"""Resolution at which page images become PDF pages: 1240 pixels across is A4 width."""
MAX_JOINED_PAGE = 32 << 20
"""Bytes a page drawn by several content streams may unpack to when they are joined (`_joined_content`)."""
MAX_CONTENT = 128 << 20
"""Bytes of page content one copy writes anew into its pages' forms (`_PageForms`): joined streams as they
unpack, single streams as they are stored."""


def view_mac(secret: bytes, view_id: int) -> str:
    """32 hex digits: HMAC-SHA256(HMAC-SHA256(secret, MAC_LABEL), id as 6 bytes), truncated to 128 bits."""
    key = hmac.new(bytes(secret), MAC_LABEL, hashlib.sha256).digest()
    return hmac.new(key, view_id.to_bytes(6, "big"), hashlib.sha256).hexdigest()[:32]


def mac_matches(secret: bytes, view_id: int, mac: str) -> bool:
    return hmac.compare_digest(view_mac(secret, view_id), mac)


def _id_line(secret: bytes, view_id: int) -> str:
    return f"{TEXT_TAG} {view_id:012x} {view_mac(secret, view_id)}"


def view_overlay(text: StampText, secret: bytes) -> ViewOverlay:
    """What every page size's overlay of the view's copy shares, made before the PDF is in hand (see
    `ViewOverlay`); hand it to `write_stamped_pdf`."""
    return ViewOverlay.of(text, secret, _id_line(secret, text.view_id))


def _displayed(page: pikepdf.Page) -> tuple[float, float, str]:
    """The page's size as its reader sees it (its crop box, turned by its /Rotate), and the matrix that
    takes that upright view's coordinates, origin bottom left, into the page's own."""
    left, bottom, right, top = (float(value) for value in page.cropbox)
    left, right = min(left, right), max(left, right)
    bottom, top = min(bottom, top), max(bottom, top)
    width, height = right - left, top - bottom
    # /Rotate turns the page clockwise for display; each matrix maps the upright (u, v) back.
    matrices = {0: (1, 0, 0, 1, left, bottom), 90: (0, 1, -1, 0, right, bottom),
                180: (-1, 0, 0, -1, right, top), 270: (0, -1, 1, 0, left, top)}
    rotation = page.rotation % 360
    if rotation not in matrices:
        raise MarkingError("the PDF has a page turned by other than a right angle")
    if rotation in (90, 270):
        width, height = height, width
    matrix = " ".join(pdf_number(value) for value in matrices[rotation])
    return width, height, matrix


def _finish(pdf: pikepdf.Pdf, text: StampText, secret: bytes, out: BinaryIO) -> None:
    pdf.docinfo[Name(META_ID)] = f"{text.view_id:012x}"
    pdf.docinfo[Name(META_MAC)] = view_mac(secret, text.view_id)
    # The original's streams go out as they came in (not decoded, not compressed again): the copy costs
    # what its new objects cost, not what its pages weigh.
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none,
             object_stream_mode=pikepdf.ObjectStreamMode.preserve, fix_metadata_version=False)


def stamp_pdf(source: bytes | BinaryIO, text: StampText, secret: bytes) -> bytes:
    """:func:`write_stamped_pdf` into memory: the stamped copy's bytes."""
    out = io.BytesIO()
    write_stamped_pdf(source, text, secret, out)
    return out.getvalue()


class _PageForms:
    """The forms of a copy's pages' own content (see `_form`), one per distinct content.

    Pages may share one content stream (a template, blank pages): a file of 1 MB whose 200 pages all draw
    one 1 MB stream made a copy of 210 MB, one copy of the stream per page. Pages with the same content,
    resources and media box now share one form. A content stream becomes its form where it is, its bytes
    untouched (read by no one, written by qpdf as they are stored); a copy is made only for a stream drawn
    with other resources or on another box as well, and what copies and joined streams hold is counted
    against MAX_CONTENT.
    """

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        self.left = MAX_CONTENT
        self._made: dict[tuple[object, ...], pikepdf.Stream] = {}
        self._moved: set[tuple[int, int]] = set()

    def of(self, page: pikepdf.Page) -> pikepdf.Stream:
        contents, resources = page.obj.get(Name.Contents), page.get_resources()
        key = (_identity(contents), _identity(resources), tuple(float(value) for value in page.mediabox))
        form = self._made.get(key)
        if form is None:
            form = self._made[key] = self._form(contents, resources, page.mediabox)
        return form

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise MarkingError("the pages' content is too large to stamp")

    def _form(self, contents: pikepdf.Object | None, resources: pikepdf.Object | None,
              box: pikepdf.Array) -> pikepdf.Stream:
        """A page's own content as a form XObject, with the page's resources.

        Drawn through a form, the content runs in a graphics state of its own that it cannot unbalance (a
        stray Q cannot pop past the form, a cm cannot reach what is drawn after it) and a stream of its own
        (an unterminated string cannot swallow the stamp's operators). Several content streams are joined
        first, as a reader joins them (`_joined_content`)."""
        if isinstance(contents, pikepdf.Stream) and contents.objgen not in self._moved:
            self._moved.add(contents.objgen)
            form = contents
            # What a reader ignores on a page's content but applies to a form (/Matrix, /Group, /OC ...) goes.
            for key in set(form.keys()) - _STREAM_KEYS:
                del form[key]
        else:
            form = self.pdf.make_indirect(pikepdf.Stream(self.pdf, b""))
            if isinstance(contents, pikepdf.Array):
                form.write(_joined_content(contents, self), filter=Name.FlateDecode, type_check=False)
            elif isinstance(contents, pikepdf.Stream):
                raw = contents.read_raw_bytes()
                self.spend(len(raw))
                form.write(raw, filter=contents.get(Name.Filter), decode_parms=contents.get(Name.DecodeParms),
                           type_check=False)
        form[Name.Type], form[Name.Subtype] = Name.XObject, Name.Form
        form[Name.BBox] = box
        form[Name.Resources] = resources if resources is not None else pikepdf.Dictionary()
        return form


_STREAM_KEYS = {"/Length", "/Filter", "/DecodeParms", "/DL"}


def _identity(value: object) -> object:
    """What tells one PDF object from another: its object number, or its text when it is direct."""
    if isinstance(value, pikepdf.Array) and not value.is_indirect:
        return tuple(_identity(item) for item in value)
    if isinstance(value, pikepdf.Object):
        return value.objgen if value.is_indirect else value.unparse()
    return value


def _joined_content(streams: pikepdf.Array, forms: _PageForms) -> bytes:
    """A page's content streams joined as a reader joins them (a line feed between two), deflated.

    qpdf's own join hands the joined content to the writer unpacked: a page of two deflated streams of a
    few hundred kilobytes that unpack to 200 MB made a copy of 210 MB and took 500 MiB of memory on the
    way. Here each stream is unpacked a piece at a time and packed again as it goes, so memory holds packed
    bytes, and the copy weighs about what the original does. A page may unpack to MAX_JOINED_PAGE, and
    counts against the copy's MAX_CONTENT: beyond, the copy is refused (the viewer's stamped pages leave
    instead).

    Raises:
        MarkingError: the content unpacks beyond a limit, or is packed otherwise than by deflate.
    """
    packer = zlib.compressobj(FAST_LEVEL)
    packed: list[bytes] = []
    size = 0

    def pack(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > MAX_JOINED_PAGE:
            raise MarkingError("a page's content is too large to stamp")
        forms.spend(len(piece))
        packed.append(packer.compress(piece))

    try:
        for index, stream in enumerate(streams):
            if not isinstance(stream, pikepdf.Stream):
                continue
            if index:
                pack(b"\n")
            for piece in unpacked(stream):
                pack(piece)
    except PackedOtherwise:
        # qpdf would unpack it whole (LZW can unpack a thousandfold).
        raise MarkingError("a page's content is packed in a way the copy cannot unpack") from None
    packed.append(packer.flush())
    return b"".join(packed)


def _burn_in_annotations(pdf: pikepdf.Pdf) -> None:
    """Annotations are drawn over the page's content, so over the stamp too: a white square the size of
    the page would hide it. Those a reader shows are flattened into the content (under the stamp); the
    rest go, but links, which draw nothing, and the interactive form, whose fields were flattened."""
    if not any(Name.Annots in page.obj for page in pdf.pages):
        return
    if Name.AcroForm in pdf.Root:
        # A filled form may leave the drawing of its values to the reader (/NeedAppearances): draw them
        # now, or they would go with the fields.
        pdf.acroform.generate_appearances_if_needed()
    pdf.flatten_annotations("screen")
    for page in pdf.pages:
        annotations = page.obj.get(Name.Annots)
        if annotations is None:
            continue
        kept = [annotation for annotation in annotations if isinstance(annotation, pikepdf.Dictionary)
                and annotation.get(Name.Subtype) == Name.Link and Name.AP not in annotation]
        if kept:
            page.obj.Annots = pikepdf.Array(kept)
        else:
            del page.obj[Name.Annots]
    if Name.AcroForm in pdf.Root:
        del pdf.Root[Name.AcroForm]


def write_stamped_pdf(source: bytes | BinaryIO, text: StampText, secret: bytes, out: BinaryIO,
                      overlay: ViewOverlay | None = None) -> None:
    """Write to ``out`` a copy of the PDF ``source`` with the stamp, the mark and the view id of ``text``
    on every page; ``overlay``: the view's `view_overlay`, if made already.

    Each page becomes two forms drawn one after the other: its own content (see `_PageForms`), then
    the stamp's, placed to stand upright over the page as its reader sees it (its crop box, its /Rotate).
    Annotations are burned in under the stamp (`_burn_in_annotations`).

    Raises:
        MarkingError: ``source`` is not a PDF that can be read, is encrypted, or has no pages.
    """
    if overlay is not None and overlay.view_id != text.view_id:
        raise ValueError("the overlay is another view's")
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        with pikepdf.Pdf.open(stream) as pdf:
            if pdf.is_encrypted:
                raise MarkingError("the PDF is encrypted; it cannot be stamped")
            if len(pdf.pages) == 0:
                raise MarkingError("the PDF has no pages")
            _burn_in_annotations(pdf)
            forms: dict[tuple[float, float], pikepdf.Object] = {}
            own_forms = _PageForms(pdf)
            overlay = overlay or view_overlay(text, secret)
            for page in pdf.pages:
                width, height, matrix = _displayed(page)
                size = (round(width, 2), round(height, 2))
                if size not in forms:
                    forms[size] = overlay_form(pdf, overlay, *size)
                own = own_forms.of(page)
                page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(P=own, S=forms[size]))
                page.obj.Contents = pdf.make_stream(f"q /P Do Q q {matrix} cm /S Do Q\n".encode("ascii"))
            _finish(pdf, text, secret, out)
    except pikepdf.PasswordError as exc:
        raise MarkingError("the PDF is encrypted; it cannot be stamped") from exc
    except MarkingError:
        raise
    except (pikepdf.PdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise MarkingError("the file is not a readable PDF") from exc


_COLOUR_SPACES = {"L": "/DeviceGray", "RGB": "/DeviceRGB"}


def write_stamped_pages_pdf(pages: Iterable[bytes], text: StampText, secret: bytes, out: BinaryIO) -> int:
    """Write to ``out`` a PDF with one page per JPEG of ``pages`` (already stamped and marked, as the
    viewer delivers them), each with the invisible id line, and the view id in the metadata; return its
    size in bytes.

    This is the stamped copy of documents that are not PDFs: their pages, rendered NOMINAL_WIDTH pixels
    across, become pages at IMAGE_DPI. The JPEGs go in as they are (DCTDecode), and each page is written
    as soon as it comes, so memory holds one page whatever the page count.

    Raises:
        MarkingError: no pages, or a page that is not a greyscale or RGB JPEG.
    """
    writer = StreamingPdf(out)
    font = writer.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    tree = writer.reserve()
    line = id_line_operators(_id_line(secret, text.view_id))
    kids = []
    for jpeg in pages:
        try:
            with Image.open(io.BytesIO(jpeg)) as image:
                fmt, mode, (width, height) = image.format, image.mode, image.size
        except (OSError, Image.DecompressionBombError) as exc:
            raise MarkingError("a page is not a readable image") from exc
        if fmt != "JPEG" or mode not in _COLOUR_SPACES:
            raise MarkingError(f"a page is a {fmt} {mode} image, not a greyscale or RGB JPEG")
        width_pt, height_pt = pdf_number(width * 72 / IMAGE_DPI), pdf_number(height * 72 / IMAGE_DPI)
        image_ref = writer.add_stream(f"/Type /XObject /Subtype /Image /Width {width} /Height {height} "
                                      f"/ColorSpace {_COLOUR_SPACES[mode]} /BitsPerComponent 8 /Filter /DCTDecode",
                                      jpeg)
        content = writer.add_stream("", f"q {width_pt} 0 0 {height_pt} 0 0 cm /Im Do Q\n{line}\n".encode("latin-1"))
        kids.append(writer.add(f"<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 {width_pt} {height_pt}] "
                               f"/Resources << /XObject << /Im {image_ref} 0 R >> /Font << /F1 {font} 0 R >> >> "
                               f"/Contents {content} 0 R >>".encode("ascii")))
    if not kids:
        raise MarkingError("there are no pages to put in the PDF")
    writer.add(f"<< /Type /Pages /Kids [{' '.join(f'{kid} 0 R' for kid in kids)}] /Count {len(kids)} >>"
               .encode("ascii"), number=tree)
    root = writer.add(f"<< /Type /Catalog /Pages {tree} 0 R >>".encode("ascii"))
    info = writer.add(f"<< {META_ID} ({text.view_id:012x}) {META_MAC} ({view_mac(secret, text.view_id)}) "
                      f"/Producer (vault) >>".encode("ascii"))
    return writer.finish(root, info)


@dataclass(frozen=True)
class PdfClaim:
    """A view id a PDF claims to carry, where the claim was found, and whether its MAC checked out."""

    view_id: int
    where: str  # "metadata" or "text"
    verified: bool


def metadata_claim(pdf: pikepdf.Pdf, secret: bytes) -> PdfClaim | None:
    """The id claimed by the document information dictionary, if any."""
    try:
        info = pdf.trailer.get(Name.Info)
        if not isinstance(info, pikepdf.Dictionary):
            return None
        raw_id, raw_mac = str(info.get(Name(META_ID), "")), str(info.get(Name(META_MAC), ""))
    except (pikepdf.PdfError, ValueError, TypeError):
        return None
    if not re.fullmatch(r"[0-9a-f]{12}", raw_id):
        return None
    view_id = int(raw_id, 16)
    return PdfClaim(view_id, "metadata", bool(re.fullmatch(r"[0-9a-f]{32}", raw_mac)) and
                    mac_matches(secret, view_id, raw_mac))


def text_claims(page_texts: Sequence[str], secret: bytes) -> list[PdfClaim]:
    """Every id line found in the pages' text, in page order."""
    claims = []
    for page_text in page_texts:
        for match in TEXT_PATTERN.finditer(page_text):
            view_id = int(match.group(1), 16)
            claims.append(PdfClaim(view_id, "text", mac_matches(secret, view_id, match.group(2))))
    return claims


