"""The credentials the test suite's API clients send: the deployment key, set for every test process."""

import httpx

TEST_API_KEY = "test-deployment-key-0123456789"
AUTH_HEADERS = {"X-Growthlens-Api-Key": TEST_API_KEY}

# an HTTP client with those credentials, for tests that call a running API directly
API = httpx.Client(headers=AUTH_HEADERS)
