"""Prometheus scrapes of a real server's /metrics."""

from __future__ import annotations

import http.client

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.server import Server


class Families(dict[str, list[tuple[str, dict[str, str], float]]]):
    """family -> [(sample name, labels, value)], and each family's type in `types`."""

    types: dict[str, str]


def scrape(server: Server) -> Families:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/plain")
        text = response.read().decode()
    finally:
        conn.close()
    parsed = list(text_string_to_metric_families(text))
    families = Families({f.name: [(s.name, s.labels, s.value) for s in f.samples] for f in parsed})
    families.types = {f.name: f.type for f in parsed}
    return families


def value(families: Families, sample: str, **labels: str) -> float:
    """The one sample named `sample` whose labels include `labels` (0 when there is none)."""
    family = sample
    for suffix in ("_total", "_count", "_sum", "_bucket"):
        family = family.removesuffix(suffix)
    found = [v for name, ls, v in families.get(family, []) if name == sample and labels.items() <= ls.items()]
    assert len(found) <= 1, (sample, labels, found)
    return found[0] if found else 0.0
