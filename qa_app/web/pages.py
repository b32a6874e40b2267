"""The page view of a PDF passage: the page as an image with the passage's lines highlighted.

`GET /page/{source}?page=N&passage=ID` is plain HTML and works without JavaScript: an inline SVG
whose viewBox is the page in PDF points holds the page image (`<image>`) and one `<rect>` per line of
the passage, so the highlight scales with the image and needs neither script nor inline styles (the
CSP forbids both). `GET /page-image/{source}?page=N` is the PNG, rendered once and cached. Both serve
only sources that were loaded, and only pages they have (404 otherwise).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from qa_app.errors import BadRequest
from qa_app.web.render import templates
from qa_app.web.views import service_of

IMAGE_CACHE = "private, max-age=86400"  # private: with authentication on, a page is for who may read it


def page_number(request: Request) -> int:
    value = request.query_params.get("page", "1")
    if not value.isdigit() or len(value) > 6:
        raise BadRequest("page must be a page number: 1, 2, ...", field="page")
    return int(value)


async def page_view(request: Request) -> Response:
    service = service_of(request)
    source = "/" + request.path_params["path"]
    page = page_number(request)
    passage_id = request.query_params.get("passage") or None
    geometry, chosen, on_page = await service.page_view(source, page, passage_id)
    corpus = await service.corpus()
    label = next((p.page_label for p in on_page if p.page == page and p.page_label), "")
    title = (chosen or (on_page[0] if on_page else None))
    context = {"source": source, "geometry": geometry, "chosen": chosen, "on_page": on_page, "corpus": corpus,
               "label": label, "title": title.title if title is not None else "", "passage_id": passage_id or ""}
    return templates.TemplateResponse(request, "page.html", context)


async def page_image(request: Request) -> Response:
    service = service_of(request)
    source = "/" + request.path_params["path"]
    png = await service.page_image(source, page_number(request))
    # The cached file's name is a digest of the PDF's path, size and time and of the page: a fine ETag,
    # the same whichever worker rendered it.
    headers = {"Cache-Control": IMAGE_CACHE, "ETag": f'"{png.stem}"'}
    if headers["ETag"] in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(png, media_type="image/png", headers=headers)
