"""Deterministic DICOM UIDs derived from the archive seed.

UIDs use the ``2.25`` root, under which a UID is the decimal form of a
128-bit number (ISO/IEC 9834-8); here that number is the first 16 bytes of
SHA-256 over the seed and the object's path in the archive. The same seed
therefore gives the same UIDs, and different seeds do not collide in
practice.
"""

from __future__ import annotations

import hashlib


def derive_uid(seed: int, *parts: object) -> str:
    """Return the UID of the object named by ``parts`` in the archive made with ``seed``."""
    text = "/".join(str(part) for part in (seed, *parts))
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    return f"2.25.{number}"
