"""Resolve the ``train.base_model`` setting to something transformers can load."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cinesense.config import Settings
from cinesense.errors import ModelError, NetworkUnavailableError

SELF_BUILT = "self-built"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_base_model(spec: str, settings: Settings) -> str:
    """Return a local directory or a hub id whose config has been reached.

    ``self-built`` → the platform's own base (``cinesense pretrain``); an existing
    directory → itself; ``org/name`` → a Hugging Face hub id, checked now so that a typo or
    a missing network fails before any training starts.
    """
    if spec == SELF_BUILT:
        directory = settings.self_built_base_dir
        if not (directory / "config.json").exists():
            raise ModelError(
                f"No self-built base model in {directory}. Build it with `cinesense pretrain` "
                "(minutes for the tiny preset), or set CINESENSE_TRAIN__BASE_MODEL to a model "
                "directory or a Hugging Face id."
            )
        return str(directory)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} is not a model directory: it has no config.json.")
        return str(path)
    if not _HUB_ID.match(spec):
        raise ModelError(
            f"Unknown base model {spec!r}: not 'self-built', not an existing directory, and "
            "not a Hugging Face id of the form 'org/name' (for example klue/bert-base)."
        )
    return _check_hub(spec, settings)


def _check_hub(model_id: str, settings: Settings) -> str:
    if settings.hf_offline or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise NetworkUnavailableError(
            f"Base model {model_id!r} is on the Hugging Face hub, but hub access is off "
            "(CINESENSE_HF_OFFLINE / HF_HUB_OFFLINE). Download it on a machine with network and "
            "pass its directory instead, or use base model 'self-built'."
        )
    from huggingface_hub import errors as hub_errors
    from transformers import AutoConfig

    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    try:
        AutoConfig.from_pretrained(model_id, token=token)
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError) as error:
        raise ModelError(
            f"Base model {model_id!r} was not found on the hub (or needs a token "
            "in CINESENSE_HF_TOKEN)."
        ) from error
    except OSError as error:
        raise NetworkUnavailableError(
            f"Could not fetch base model {model_id!r} from the Hugging Face hub ({error}). Check "
            "the network, or download the model elsewhere and pass its directory."
        ) from error
    return model_id


def hub_token(settings: Settings) -> str | None:
    return settings.hf_token.get_secret_value() if settings.hf_token else None
