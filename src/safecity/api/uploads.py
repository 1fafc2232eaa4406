"""Reference-image uploads for face enrolment, refused cleanly when hostile.

Limits are checked before anything is parsed (declared size, then file count, then each
file's real size) and every image is decoded defensively (size caps, pixel caps) by
:func:`safecity.governance.watchlists.decode_image` before the enroller sees it. A
refusal is a :class:`UploadRefused` with a sentence for the user, never a traceback,
and nothing is stored. The face enroller is imported only when a face is enrolled, so
the console runs where face models are not installed.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from starlette.datastructures import UploadFile
from starlette.requests import Request

from safecity.governance.watchlists import MAX_IMAGE_BYTES, decode_image

MAX_FILES = 5
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_FIELD_BYTES = 4096


class UploadRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def safe_name(name: str | None) -> str:
    """A file name fit for messages and the audit log: no path, no control characters."""
    base = PurePath((name or "image").replace("\\", "/")).name
    return re.sub(r"[^\w.\- ]", "_", base)[:100] or "image"


async def read_form(request: Request) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The form's text fields and its uploaded images (name, bytes), within the limits."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise UploadRefused(411, "the upload must declare its size (Content-Length)")
    if int(declared) > MAX_UPLOAD_BYTES:
        raise UploadRefused(413, f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB in all")
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=20, max_part_size=MAX_FIELD_BYTES)
    except Exception as error:  # malformed multipart, too many files or fields
        raise UploadRefused(400, f"the upload could not be read: {getattr(error, 'detail', error)}") from None
    fields: dict[str, str] = {}
    images: list[tuple[str, bytes]] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if not value.filename and not value.size:
                    continue  # an empty file input
                data = await value.read(MAX_IMAGE_BYTES + 1)
                name = safe_name(value.filename)
                if len(data) > MAX_IMAGE_BYTES:
                    raise UploadRefused(413, f"{name}: larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
                images.append((name, data))
            else:
                fields[key] = str(value)
    finally:
        await form.close()
    return fields, images


def check_images(images: list[tuple[str, bytes]]) -> None:
    """Decode every image once before enrolment: junk, bombs and giants are refused here."""
    from safecity.governance.watchlists import GovernanceError

    if not images:
        raise UploadRefused(400, "choose at least one reference image")
    for name, data in images:
        try:
            decode_image(name, data)
        except GovernanceError as error:
            raise UploadRefused(400, str(error)) from None


def face_enroller():
    """The face enroller, imported on first use; a clear refusal where it is not installed."""
    try:
        from safecity.faces.enrol import FaceEnroller
    except ImportError as error:
        raise UploadRefused(503, f"face enrolment is not available in this installation ({error})") from None
    return FaceEnroller()
