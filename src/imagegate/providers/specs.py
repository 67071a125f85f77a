"""Every provider the gateway knows, as the specs their packages declare.

Adding a provider is adding its package and one line here; ``app.py`` builds what the settings
turn on.
"""

from __future__ import annotations

from imagegate.providers.azure.spec import SPEC as AZURE
from imagegate.providers.base import ProviderSpec
from imagegate.providers.bfl.spec import SPEC as BFL
from imagegate.providers.fal.spec import SPEC as FAL
from imagegate.providers.gemini.spec import SPEC as GEMINI
from imagegate.providers.local.spec import SPEC as LOCAL
from imagegate.providers.openai.spec import SPEC as OPENAI
from imagegate.providers.replicate.spec import SPEC as REPLICATE
from imagegate.providers.stability.spec import SPEC as STABILITY
from imagegate.providers.xai.spec import SPEC as XAI

SPECS: tuple[ProviderSpec, ...] = (
    LOCAL,
    OPENAI,
    AZURE,
    GEMINI,
    STABILITY,
    XAI,
    BFL,
    FAL,
    REPLICATE,
)
