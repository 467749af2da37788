"""The curated public library (``library.yml``): description and overview per image name."""

import functools
from importlib import resources

import yaml


@functools.lru_cache(maxsize=1)
def curated_library() -> dict[str, dict[str, str]]:
    """``{name: {"description": str, "overview": str}}``, read once from the package."""
    text = resources.files("catalog").joinpath("library.yml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text) or {}
    return {
        name: {
            "description": (entry.get("description") or "").strip(),
            "overview": (entry.get("overview") or "").strip(),
        }
        for name, entry in entries.items()
    }


def curation_for(name: str) -> dict[str, str]:
    """What a new ``library/<name>`` repository shows; empty for an image not in the file."""
    return curated_library().get(name, {"description": "", "overview": ""})
