"""Webhook targets: an allowed host names its port, and the addresses a host name resolves to are checked
at every delivery attempt (no loopback, private, link-local or metadata address unless the operator allows
its network), the connection going to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.webhooks import transport
from tests.api.helpers import create_job, register, upload_ok
from tests.conftest import reset_caches
from tests.webhooks.conftest import SECRET, receiver, webhooks_on  # noqa: F401  (a real receiver)
from tests.webhooks.receiver import settled_deliveries


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "fd00:ec2::254", "::ffff:127.0.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1",
                                     "fe80::1"])
def test_non_public_addresses_are_refused_unless_their_network_is_allowed(address):
    ip = ipaddress.ip_address(address)
    assert transport.address_problem(ip, Settings()) is not None
    assert transport.address_problem(ip, Settings(webhook_allowed_networks="0.0.0.0/0,::/0")) is None


def test_a_public_address_is_fine():
    assert transport.address_problem(ipaddress.ip_address("93.184.216.34"), Settings()) is None
    assert "metadata" in transport.address_problem(ipaddress.ip_address("169.254.169.254"), Settings())


def test_an_allowed_host_names_its_port():
    on = {"webhook_secret": "s"}
    bare = Settings(webhook_allowed_hosts="hooks.example.com", **on)
    assert transport.url_problem("http://hooks.example.com/h", bare) is None
    assert transport.url_problem("https://hooks.example.com/h", bare) is None
    assert "'hooks.example.com:8080' is not one" in transport.url_problem("http://hooks.example.com:8080/h", bare)
    assert transport.url_problem("http://hooks.example.com:443/h", bare) is not None
    ported = Settings(webhook_allowed_hosts="hooks.example.com:8080,[::1]:9000", **on)
    assert transport.url_problem("http://hooks.example.com:8080/h", ported) is None
    assert transport.url_problem("http://hooks.example.com:8081/h", ported) is not None
    assert transport.url_problem("http://hooks.example.com/h", ported) is not None
    assert transport.url_problem("http://[::1]:9000/h", ported) is None


@pytest.fixture
def hooks(sqlite_env, webhooks_on, receiver, base_model_dir, monkeypatch):  # noqa: F811
    """A client whose jobs, cancelled while queued, are delivered by the API process itself; ``name`` is the
    allowed ``host`` of the receiver's port, resolved as ``resolver`` says (else for real)."""
    port = receiver.server.server_address[1]
    real = socket.getaddrinfo
    answers: dict[str, list[str] | OSError] = {}

    def resolver(host, *args, **kwargs):
        if host not in answers:
            return real(host, *args, **kwargs)
        if isinstance(answers[host], OSError):
            raise answers[host]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(transport.socket, "getaddrinfo", resolver)
    from app.main import create_app

    client = TestClient(create_app())
    register(client, "m", base_model_dir)
    file_id = upload_ok(client)

    def deliver(host: str, networks: str = "") -> list[dict]:
        monkeypatch.setenv("SCULPT_WEBHOOK_ALLOWED_HOSTS", f"{host}:{port}")
        monkeypatch.setenv("SCULPT_WEBHOOK_ALLOWED_NETWORKS", networks)
        reset_caches()
        job = create_job(client, "m", file_id, webhook_url=f"http://{host}:{port}/hooks/sculpt").json()
        client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
        settled_deliveries(job["id"])
        return client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["webhook"]["deliveries"]

    return deliver, answers, port


def test_a_name_that_resolves_to_loopback_is_not_posted_to(hooks, receiver):  # noqa: F811
    deliver, _answers, port = hooks
    [attempt] = deliver("localhost")
    assert attempt["error"].startswith("not sent: webhook_url host 'localhost' resolves to ")
    assert "loopback address" in attempt["error"] and "SCULPT_WEBHOOK_ALLOWED_NETWORKS" in attempt["error"]
    assert receiver.deliveries == []

    [attempt] = deliver("localhost", networks="127.0.0.0/8,::1/128")
    assert attempt["status_code"] == 200
    [delivery] = receiver.deliveries
    assert delivery.headers["Host"] == f"localhost:{port}" and delivery.signed_with(SECRET)


def test_the_connection_goes_to_the_address_checked_at_delivery(hooks, receiver):  # noqa: F811
    deliver, answers, port = hooks
    # No real DNS knows this name: only the checked addresses work (the first has nothing listening).
    answers["hooks.example.test"] = ["127.0.0.2", "127.0.0.1"]
    [attempt] = deliver("hooks.example.test", networks="127.0.0.0/8")
    assert attempt["status_code"] == 200
    assert receiver.deliveries[0].headers["Host"] == f"hooks.example.test:{port}"

    answers["hooks.example.test"] = ["93.184.216.34", "10.0.0.7"]  # re-pointed since: one private address is enough
    [attempt] = deliver("hooks.example.test", networks="127.0.0.0/8")
    assert "resolves to 10.0.0.7, a private address" in attempt["error"]
    assert len(receiver.deliveries) == 1


def test_a_name_that_does_not_resolve_is_retried(hooks, receiver):  # noqa: F811
    deliver, answers, _port = hooks
    answers["hooks.example.test"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    attempts = deliver("hooks.example.test")
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all("'hooks.example.test' did not resolve: Name or service not known" in a["error"] for a in attempts)
    assert receiver.deliveries == []
