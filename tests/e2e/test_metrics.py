"""GET /metrics on a real server, parsed with prometheus-client's own parser."""

from __future__ import annotations

import http.client

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import Server
from tests.e2e.test_http import CHAT, post, user


def scrape(server: Server) -> dict[str, list[tuple[dict[str, str], float]]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/plain")
        text = response.read().decode()
    finally:
        conn.close()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def test_metrics_count_requests_and_show_state(server: Server) -> None:
    assert post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})[0] == 200
    assert post(server, CHAT, {"model": "tiny", "messages": []})[0] == 400
    families = scrape(server)
    requests = {
        (labels["endpoint"], labels["model"], labels["status"]): value
        for labels, value in families["ovserve_http_requests"]
        if "endpoint" in labels
    }
    assert requests[("/v3/chat/completions", "tiny", "200")] >= 1
    assert requests[("/v3/chat/completions", "tiny", "400")] >= 1
    assert ({"model": "tiny", "state": "available"}, 1.0) in families["ovserve_servable_state"]
    assert families["ovserve_engine_running_requests"] == [({"model": "tiny"}, 0.0)]
    lag = dict((labels["quantile"], value) for labels, value in families["ovserve_event_loop_lag_seconds"])
    assert set(lag) == {"0.5", "0.99"} and all(v >= 0 for v in lag.values())
    assert families["ovserve_http_requests_in_flight"][0][1] >= 0
