"""Page links under a list of result cards."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PageLink:
    """The two URLs of one page of results: the whole page, and the htmx fragment."""

    page_url: str
    fragment_url: str


@dataclass(frozen=True)
class Pager:
    """The state of the page links: current page, page count and neighbours.

    ``target`` is the CSS selector of the region that htmx replaces with the
    fragment, ``focus_id`` is the id of the heading that receives keyboard
    focus after the swap, and ``label`` names the navigation landmark for
    screen readers.
    """

    page: int
    page_count: int
    previous: PageLink | None
    next: PageLink | None
    target: str
    focus_id: str
    label: str


def build_pager(
    *,
    page: int,
    page_size: int,
    total: int,
    link: Callable[[int], PageLink],
    target: str,
    focus_id: str,
    label: str,
) -> Pager:
    """Build the page links for ``total`` results shown ``page_size`` at a time.

    ``link(n)`` returns the URLs of page ``n`` (1-based).
    """
    page_count = max(1, math.ceil(total / page_size))
    previous = link(min(page - 1, page_count)) if page > 1 else None
    following = link(page + 1) if page < page_count else None
    return Pager(
        page=page,
        page_count=page_count,
        previous=previous,
        next=following,
        target=target,
        focus_id=focus_id,
        label=label,
    )
