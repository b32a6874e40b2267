#!/usr/bin/env bash
# Rebuild the PDF fixtures of tests/test_pdf_reader.py from their sources (see README.md).
# Needs Debian's libreoffice-writer-nogui (soffice) and qpdf. The PDFs are committed: tests do not run this.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp"  # a throwaway LibreOffice profile
soffice --headless --convert-to pdf --outdir "$tmp" manual.fodt >/dev/null
cp "$tmp/manual.pdf" manual.pdf
soffice --headless --convert-to 'pdf:writer_pdf_Export:{"ExportBookmarks":{"type":"boolean","value":"false"}}' \
    --outdir "$tmp/plain" manual.fodt >/dev/null
cp "$tmp/plain/manual.pdf" manual-no-outline.pdf
qpdf --encrypt secret owner-secret 256 -- manual.pdf encrypted.pdf
ls -l manual.pdf manual-no-outline.pdf encrypted.pdf
