"""No stack trace in any log line: an unexpected error is logged once, on one line, with its type,
message and where it was raised — by the API behind a real uvicorn and by the worker's Celery logging."""

from __future__ import annotations

import copy
import logging
import threading
import time

import httpx
import uvicorn
from celery.signals import after_setup_logger

from tests.dashboard.live import free_port


def _explode(_session):
    raise RuntimeError("the disk said no")


def test_an_unexpected_api_error_is_one_log_line(sqlite_env, monkeypatch, tmp_path):
    import app.lineages.service as lineages_service
    from app.main import create_app

    monkeypatch.setattr(lineages_service, "list_models", _explode)
    log_file = tmp_path / "api.log"
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)  # what `uvicorn` and `sculpt serve` log with
    for name in ("default", "access"):
        config["handlers"][name] = {"class": "logging.FileHandler", "filename": str(log_file),
                                    "formatter": name}
    server = uvicorn.Server(uvicorn.Config(create_app, factory=True, host="127.0.0.1", port=free_port(),
                                           log_config=config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        response = httpx.get(f"http://127.0.0.1:{server.config.port}/v1/models", timeout=30)
    finally:
        server.should_exit = True
        thread.join(10)
        for name in ("uvicorn", "uvicorn.access"):
            for handler in logging.getLogger(name).handlers:
                handler.close()
            logging.getLogger(name).handlers.clear()

    assert response.status_code == 500 and "disk said no" not in response.text
    lines = log_file.read_text().splitlines()
    failures = [line for line in lines if "RuntimeError" in line]
    assert failures, lines  # the error was logged ...
    assert all("the disk said no" in line and "test_log_lines.py:" in line for line in failures), failures
    assert not any("Traceback" in line or line.startswith(" ") for line in lines), "\n".join(lines)  # one line each


def test_the_worker_logs_an_exception_on_one_line(tmp_path):
    import worker.celery_app  # noqa: F401 - connects the worker's logging signals

    log_file = tmp_path / "worker.log"
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("sculpt.test.worker")
    logger.addHandler(handler)
    after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO, logfile=None, format="",
                            colorize=False)
    try:
        try:
            _explode(None)
        except RuntimeError:
            logger.exception("job ftjob-1 failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log_file.read_text()
    assert text.count("\n") == 1, text
    assert "job ftjob-1 failed (RuntimeError at " in text and "the disk said no" in text


def _worker_lines(tmp_path, monkeypatch, log_format: str) -> list[str]:
    import worker.celery_app  # noqa: F401 - connects the worker's logging signals
    from app.core import logsafe
    from app.core.settings import get_settings

    monkeypatch.setenv("SCULPT_LOG_FORMAT", log_format)
    get_settings.cache_clear()
    log_file = tmp_path / f"worker-{log_format}.log"
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger(f"sculpt.test.worker.{log_format}")
    logger.addHandler(handler)
    after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO, logfile=None, format="",
                            colorize=False)
    try:
        with logsafe.job_context("ftjob-7"):
            logger.warning("Phase: training")
        logger.warning("idle")
    finally:
        logger.removeHandler(handler)
        handler.close()
        get_settings.cache_clear()
    return log_file.read_text().splitlines()


def test_worker_lines_name_their_job_in_one_format_or_as_json_lines(tmp_path, monkeypatch):
    import json

    text = _worker_lines(tmp_path, monkeypatch, "text")
    assert len(text) == 2 and "WARNING sculpt.test.worker.text [ftjob-7]: Phase: training" in text[0]
    assert "[ftjob" not in text[1] and text[1].endswith("sculpt.test.worker.text: idle")

    lines = [json.loads(line) for line in _worker_lines(tmp_path, monkeypatch, "json")]
    assert lines[0]["job_id"] == "ftjob-7" and lines[0]["message"] == "Phase: training"
    assert lines[0]["level"] == "WARNING" and lines[0]["time"].endswith("+00:00") and "job_id" not in lines[1]


def test_what_libraries_print_in_a_worker_is_not_a_warning():
    import os

    import worker.celery_app  # noqa: F401 - sets the worker's environment
    from app.core.broker import celery_config
    from app.core.settings import get_settings

    assert celery_config(get_settings())["worker_redirect_stdouts_level"] == "INFO"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
