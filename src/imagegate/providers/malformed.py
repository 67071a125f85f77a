"""The one exception the pure converters raise for a success answer that breaks its API's promise.

Converters do no I/O and know no HTTP, so they cannot build the gateway's 502 themselves: they
raise ``Malformed(what)``, and the adapter turns it into ``Upstream.malformed(what)`` at the
boundary.
"""

from __future__ import annotations


class Malformed(ValueError):
    """A 2xx answer that is not what the provider promises; ``what`` says what it was instead."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
