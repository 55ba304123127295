"""Strict loading and saving of CMR-CLIP checkpoints in the published layout.

The released ``pytorch_model.bin`` is a flat state dict of 426 float32
tensors (223,312,384 values). ``state_dict_manifest.tsv`` in this package lists
every key with its shape and dtype, as read from the public training code, plus
one legacy key: transformers before 4.31 saved BERT's
``text_model.embeddings.position_ids`` buffer (int64, [1, 512], 0..511), which
later versions no longer keep. Loading drops that buffer and a DataParallel
``module.`` prefix on purpose. Any other missing or unexpected key, and any
shape that differs, is an error that names the key.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from embeddings.cmrclip.config import PUBLISHED_CONFIG, CMRCLIPConfig
from embeddings.cmrclip.model import CMRCLIP

logger = logging.getLogger(__name__)

MANIFEST_FILE = "state_dict_manifest.tsv"
LEGACY_POSITION_IDS = "text_model.embeddings.position_ids"
DATA_PARALLEL_PREFIX = "module."
# Floating-point copies in these dtypes are cast to float32. Other dtype changes are errors.
CASTABLE_DTYPES = {torch.float16, torch.bfloat16, torch.float64}
MAX_KEYS_IN_MESSAGE = 10


class CheckpointError(ValueError):
    """A checkpoint does not match the CMR-CLIP layout or cannot be read."""


@dataclass(frozen=True)
class ManifestEntry:
    """One tensor of the published state dict."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    kind: str  # "parameter" or "buffer"


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model in eval mode with the SHA-256 of its normalised weights."""

    model: CMRCLIP
    digest: str


def read_manifest() -> list[ManifestEntry]:
    """Return every key of the published state dict in its saved order, the legacy buffer first."""
    text = resources.files(__package__).joinpath(MANIFEST_FILE).read_text(encoding="utf-8")
    entries = []
    for row in csv.DictReader(text.splitlines(), delimiter="\t"):
        shape = tuple(int(size) for size in row["shape"].strip("[]").split(","))
        entries.append(ManifestEntry(row["key"], shape, getattr(torch, row["dtype"]), row["kind"]))
    return entries


def published_layout() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Return key → (shape, dtype) of the published checkpoint without the legacy buffer."""
    return {entry.key: (entry.shape, entry.dtype) for entry in read_manifest() if entry.key != LEGACY_POSITION_IDS}


def model_layout(model: nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Return key → (shape, dtype) of ``model.state_dict()``, in order."""
    return {key: (tuple(tensor.shape), tensor.dtype) for key, tensor in model.state_dict().items()}


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.bin``/``.pth`` pickle (tensors only) or a ``.safetensors`` file.

    A training checkpoint that wraps the weights as ``{"state_dict": ...}`` is
    unwrapped. Pickles are read with ``weights_only=True``, so a file that
    needs arbitrary Python objects is rejected rather than executed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises pickle, zip and runtime errors
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error

    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"checkpoint {path} contains a {type(loaded).__name__}, not a state dict")
    not_tensors = [key for key, value in loaded.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"checkpoint {path}: entries that are not tensors: {_key_list(not_tensors)}")
    return dict(loaded)


def normalise_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a DataParallel ``module.`` prefix and drop the legacy ``position_ids`` buffer.

    Raises:
        CheckpointError: only some keys carry the prefix, or the legacy buffer
            is not the constant 0..N-1 that BERT expects.
    """
    prefixed = [key for key in state if key.startswith(DATA_PARALLEL_PREFIX)]
    if prefixed and len(prefixed) != len(state):
        plain = [key for key in state if not key.startswith(DATA_PARALLEL_PREFIX)]
        raise CheckpointError(f"only some keys carry the '{DATA_PARALLEL_PREFIX}' prefix; keys without it: {_key_list(plain)}")
    if prefixed:
        logger.info("stripping the DataParallel prefix '%s' from %d keys", DATA_PARALLEL_PREFIX, len(prefixed))
        state = {key[len(DATA_PARALLEL_PREFIX) :]: value for key, value in state.items()}

    normalised = dict(state)
    position_ids = normalised.pop(LEGACY_POSITION_IDS, None)
    if position_ids is not None:
        expected = torch.arange(position_ids.shape[-1]).expand_as(position_ids)
        if position_ids.dtype.is_floating_point or not torch.equal(position_ids.long(), expected):
            raise CheckpointError(f"{LEGACY_POSITION_IDS} is not the constant 0..N-1; the checkpoint is not a plain BERT")
        logger.info("dropping the legacy buffer %s", LEGACY_POSITION_IDS)
    return normalised


def check_layout(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]]
) -> dict[str, torch.Tensor]:
    """Check keys and shapes against ``expected`` and cast half-precision tensors to the expected dtype.

    Raises:
        CheckpointError: naming every missing, unexpected or mis-shaped key
            and every tensor whose dtype cannot be cast losslessly in intent
            (an integer where a float is expected, for example).
    """
    problems = []
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing:
        problems.append(f"missing keys: {_key_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_key_list(unexpected)}")

    checked: dict[str, torch.Tensor] = {}
    cast = []
    for key, (shape, dtype) in expected.items():
        tensor = state.get(key)
        if tensor is None:
            continue
        if tuple(tensor.shape) != shape:
            problems.append(f"{key} has shape {list(tensor.shape)}, expected {list(shape)}")
            continue
        if tensor.dtype != dtype:
            if tensor.dtype in CASTABLE_DTYPES and dtype.is_floating_point:
                cast.append(key)
                tensor = tensor.to(dtype)
            else:
                problems.append(f"{key} has dtype {tensor.dtype}, expected {dtype}")
                continue
        checked[key] = tensor

    if problems:
        raise CheckpointError("checkpoint does not match the CMR-CLIP layout: " + "; ".join(problems))
    if cast:
        logger.warning("cast %d tensors to the expected float dtype, for example %s", len(cast), cast[0])
    return checked


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    """Return the SHA-256 (hex) of keys, dtypes, shapes and raw bytes, in sorted key order."""
    hasher = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        hasher.update(f"{key}|{tensor.dtype}|{list(tensor.shape)}\n".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return hasher.hexdigest()


def load_checkpoint(path: Path | str, config: CMRCLIPConfig = PUBLISHED_CONFIG) -> LoadedCheckpoint:
    """Build CMR-CLIP from ``config`` and load the weights in ``path`` strictly, in eval mode.

    When ``config`` has the published weight shapes, the built network itself
    is first checked against the manifest, so a transformers release that changes
    BERT's state dict fails here with the key named, not with wrong outputs.
    """
    model = CMRCLIP(config)
    expected = model_layout(model)
    if config.has_published_shapes():
        check_model_against_manifest(expected)

    state = check_layout(normalise_state_dict(read_state_dict(path)), expected)
    model.load_state_dict(state, strict=True)
    model.eval()
    digest = weights_digest(state)
    logger.info("loaded CMR-CLIP weights: %d tensors, sha256 %s", len(state), digest[:16])
    return LoadedCheckpoint(model=model, digest=digest)


def check_model_against_manifest(layout: Mapping[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
    """Raise CheckpointError when a built network's state dict differs from the published one."""
    published = published_layout()
    differences = [key for key in layout.keys() ^ published.keys()]
    differences += [key for key in layout.keys() & published.keys() if layout[key] != published[key]]
    if differences:
        raise CheckpointError(
            "the network built here differs from the published CMR-CLIP state dict at "
            f"{_key_list(sorted(differences))}; check the installed transformers version"
        )


def save_checkpoint(
    model: CMRCLIP, path: Path | str, *, legacy_position_ids: bool = False, data_parallel_prefix: bool = False
) -> None:
    """Write ``model``'s weights as a flat state dict in the published key order.

    ``legacy_position_ids`` adds the buffer that transformers < 4.31 saved and
    ``data_parallel_prefix`` prefixes every key with ``module.``, to produce
    the other layouts that loading must accept.
    """
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    if legacy_position_ids:
        positions = model.config.text.max_position_embeddings
        state[LEGACY_POSITION_IDS] = torch.arange(positions, dtype=torch.int64).unsqueeze(0)
    for key, tensor in model.state_dict().items():
        state[key] = tensor.detach().cpu().contiguous()
    if data_parallel_prefix:
        state = OrderedDict((DATA_PARALLEL_PREFIX + key, tensor) for key, tensor in state.items())
    torch.save(state, Path(path))


def _key_list(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_IN_MESSAGE])
    more = len(keys) - MAX_KEYS_IN_MESSAGE
    return f"{shown} and {more} more" if more > 0 else shown
