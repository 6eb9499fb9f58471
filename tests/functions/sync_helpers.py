"""Loading a written GlowBeauty demo through the batch API, as a user's first sync would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from core.demo.glowbeauty import FILES


def sync_demo(client: TestClient, demo: Path) -> list[dict[str, Any]]:
    """POST every export of ``demo`` to ``/api/sync/{source}/batch`` with the client's credentials; each must be
    accepted (200). Returns the responses' bodies, in the order sent."""
    out = []
    for source, topics in FILES.items():
        for topic, rel in topics.items():
            r = client.post(f"/api/sync/{source}/batch?topic={topic}", content=(demo / rel).read_bytes(),
                            headers={"Content-Type": "application/x-ndjson"})
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out
