"""Suite-wide set-up: every test process has the deployment key its API clients send (tests/auth_keys.py)."""

import os

from tests.auth_keys import TEST_API_KEY

os.environ.setdefault("GROWTHLENS_API_KEY", TEST_API_KEY)
