"""PDFium's per-character calls, and the style (bold, monospace, no text) of a character's font."""

from __future__ import annotations

import ctypes
import re
from typing import Any

from qa_app.ingest.readers.pdf_file import pdfium_c

_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|cmbx|cmb\d|bx\d|-b$|,b$", re.IGNORECASE)
_MONO_NAME = re.compile(r"mono|courier|cmtt|typewriter|consol|menlo|tt\d*$|code", re.IGNORECASE)
# fonts whose glyphs are no text: music notation, dingbats, decorations (LilyPond's manuals draw notes)
_NO_TEXT_FONT = re.compile(r"emmentaler|feta|bravura|petaluma|music|lcircle|dingbat|zapf ?ding|wingding|webding|"
                           r"marvosym|fontawesome", re.IGNORECASE)


class _C:
    """PDFium's per-character calls with plain pointer arguments: ctypes' type checks on every call
    cost more than the calls themselves."""

    def __init__(self) -> None:
        void, cint = ctypes.c_void_p, ctypes.c_int

        def proto(function: Any, restype: Any, *argtypes: Any) -> Any:
            return ctypes.CFUNCTYPE(restype, *argtypes)(ctypes.cast(function, void).value or 0)

        self.unicode = proto(pdfium_c.FPDFText_GetUnicode, ctypes.c_uint, void, cint)
        self.loose_box = proto(pdfium_c.FPDFText_GetLooseCharBox, cint, void, cint, void)
        self.font_size = proto(pdfium_c.FPDFText_GetFontSize, ctypes.c_double, void, cint)
        self.text_object = proto(pdfium_c.FPDFText_GetTextObject, void, void, cint)
        self.is_generated = proto(pdfium_c.FPDFText_IsGenerated, cint, void, cint)


_CALLS: _C | None = None


def _calls() -> _C:
    global _CALLS
    if _CALLS is None:
        _CALLS = _C()
    return _CALLS


class _FontCache:
    """bold / monospace of a character's font, asked once per text object."""

    def __init__(self) -> None:
        self.by_obj: dict[int, tuple[bool, bool, bool]] = {}
        self.buffer = ctypes.create_string_buffer(256)
        self.flags = ctypes.c_int()

    def style(self, textpage: Any, handle: int, index: int) -> tuple[bool, bool, bool]:
        """(bold, monospace, a font of symbols that are no text)"""
        key = _calls().text_object(handle, index) or 0
        style = self.by_obj.get(key)
        if style is None:
            pdfium_c.FPDFText_GetFontInfo(textpage, index, self.buffer, 256, self.flags)
            name = self.buffer.value.decode("latin-1").split("+")[-1]
            weight = pdfium_c.FPDFText_GetFontWeight(textpage, index)
            flags = self.flags.value
            bold = weight >= 600 or bool(flags & (1 << 18)) or bool(_BOLD_NAME.search(name))
            mono = bool(flags & 1) or bool(_MONO_NAME.search(name))
            style = self.by_obj[key] = (bold, mono, bool(_NO_TEXT_FONT.search(name)))
        return style
