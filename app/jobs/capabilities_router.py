from __future__ import annotations

from fastapi import APIRouter

from app.jobs.capabilities import Capabilities, capabilities

router = APIRouter(tags=["capabilities"])


@router.get("/capabilities", response_model=Capabilities)
def get_capabilities() -> Capabilities:
    """The strategies (with their settings' JSON schema), metrics, phases, statuses and gates this server
    accepts."""
    return capabilities()
