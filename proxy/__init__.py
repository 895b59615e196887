"""session-minter's I/O shell: the aiohttp edge proxy around `minter`."""

from .app import create_app
from .config import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "create_app", "load_settings"]
