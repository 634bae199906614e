"""Entry point of one stream worker (`flk worker --region R --index k`). Its presence makes
`flk up` start the workers (infra/apps.py)."""

from __future__ import annotations

from streams.runner import serve
from streams.settings import Settings, load_settings

__all__ = ["Settings", "load_settings", "serve"]
