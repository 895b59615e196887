"""A reference Clerk-style origin: Frontend API + a small Backend API on SQLite.

    from origin import OriginSettings, create_app
    app = create_app(OriginSettings(database=Path("origin.db"),
                                    signing_key=Path("keys/instance.pem")))

`origin.seed` holds the demo users, organization and JWT template.
"""

from origin import seed
from origin.app import create_app
from origin.keys import KeyFileError
from origin.settings import OriginSettings

__all__ = ["KeyFileError", "OriginSettings", "create_app", "seed"]
