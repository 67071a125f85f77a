from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagegate.providers.local.card import LOCAL_CARDS
from tests.corpus.cases import MASTER_KEY
from tests.server import Gateway

# Cards beside local/pillow for the refusals that depend on a model: one that cannot edit, one
# with tight limits and no mask, one with a short prompt limit.
CORPUS_CONFIG = {
    "models": [
        {
            "id": "local/pillow-draw",
            "edit": {"supported": False, "max_reference_images": 0},
            "sizing": {"style": "openai_size", "sizes": ["1024x1024"]},
        },
        {
            "id": "local/pillow-small",
            "edit": {"supported": True, "max_reference_images": 2, "mask": False},
            "sizing": {"style": "aspect_ratio", "aspect_ratios": ["1:1", "3:2", "2:3"]},
            "n": {"min": 1, "max": 2},
        },
        {**LOCAL_CARDS[0], "id": "local/pillow-terse", "aliases": [], "max_prompt_chars": 40},
    ],
}


@pytest.fixture(scope="session")
def corpus_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the whole corpus: every case, good check and bomb hits this process."""
    env = {
        "IMAGEGATE_MASTER_KEY": MASTER_KEY,
        "IMAGEGATE_MAX_IMAGE_BYTES": "3000000",
        "IMAGEGATE_MAX_REQUEST_BYTES": "8000000",
        "IMAGEGATE_LOCAL_MAX_CONCURRENCY": "1",
        # glibc raises its mmap threshold after big frees, keeping freed image buffers in the
        # heap; fixed, they go back to the system, so each bomb's peak is measured from a
        # settled RSS instead of from what the previous bomb left behind.
        "MALLOC_MMAP_THRESHOLD_": "131072",
    }
    with Gateway(tmp_path_factory.mktemp("corpus"), env=env, config=CORPUS_CONFIG) as running:
        yield running
