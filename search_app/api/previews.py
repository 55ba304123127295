"""``/previews/{series_pk}.webp``: cine previews rendered at index time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from cmr_search.settings import Settings
from indexer.catalog.models import Series
from search_app.dependencies import get_session, get_settings
from search_app.previews import preview_path

router = APIRouter(tags=["previews"])

# The file name changes whenever the series or the render settings change,
# so a browser may keep a preview for a day without revalidating.
CACHE_CONTROL = "private, max-age=86400"


@router.get(
    "/previews/{series_pk}.webp",
    response_class=FileResponse,
    summary="Looping cine preview of one series",
    responses={200: {"content": {"image/webp": {}}}, 404: {"description": "Unknown series or preview not rendered"}},
)
def preview(
    series_pk: Annotated[int, Path(ge=1, description="Catalog primary key of the series.")],
    session: Annotated[Session, Depends(get_session)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> FileResponse:
    """Serve the animated WebP of a series. The app never decodes DICOM here; a missing preview is a 404."""
    series = session.get(Series, series_pk)
    if series is None:
        raise HTTPException(404, f"series {series_pk} is not in the catalog")
    path = preview_path(settings, series)
    if not path.exists():
        raise HTTPException(
            404, f"the preview of series {series_pk} has not been rendered; run `cmr-search reindex` to render it"
        )
    return FileResponse(path, media_type="image/webp", headers={"Cache-Control": CACHE_CONTROL})
