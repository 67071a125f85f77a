"""Shared pieces of the accounts API tests: a priced local card and keys to declare."""

from __future__ import annotations

from typing import Any

from imagegate.accounts.keys import hash_key, new_key

MASTER_KEY = "sk-test-master-accounts-0123456789"
PRICE = 0.01  # per output image: the hold (n x price) equals the true cost

# A local card with a price, so budgets have something to count; the engine is still Pillow.
PAID_CARD: dict[str, Any] = {
    "id": "local/pillow-paid",
    "edit": {"supported": True, "max_reference_images": 2, "mask": False},
    "sizing": {"style": "aspect_ratio", "aspect_ratios": ["1:1", "3:2", "2:3"]},
    "n": {"min": 1, "max": 4},
    "pricing": {"per_image": PRICE, "source": "a test price"},
}


def declare(name: str, **limits: Any) -> tuple[str, dict[str, Any]]:
    """A fresh key and its config entry."""
    key = new_key()
    return key, {"name": name, "key_sha256": hash_key(key), **limits}
