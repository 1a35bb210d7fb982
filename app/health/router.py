from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from app.core.errors import error_response
from app.core.schemas import error_responses
from app.core.settings import get_settings
from app.health.service import auth_problem, broker_problem, database_problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses=error_responses(503))
def readyz():
    """The database and the broker are reachable, and a server that requires API keys has a valid one
    (503 names what is not)."""
    settings = get_settings()
    problems = {name: why for name, why in (("database", database_problem()), ("broker", broker_problem(settings)),
                                            ("auth", auth_problem(settings))) if why}
    if problems:
        return error_response(503, "not ready: " + "; ".join(problems.values()), "server_error",
                              param=",".join(problems), code="not_ready")
    return Health(status="ready", checks={"database": "ok", "broker": "ok"})
