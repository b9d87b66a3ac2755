"""Safe defaults and header checks, in process (serving.auth, serving.guards, serving.cors,
serving.reload, trace files): Authorization parsing, open paths by whole segments, the Host
allow-list, CORS off by default, JSON-only POST bodies, the config API flag and the cap on
--trace_dir files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from serving.auth import bearer_token, is_open_path, key_matches
from serving.cli import build_parser, settings_from_args
from serving.guards import HostPolicy, host_name, media_type
from serving.settings import Settings
from serving.trace_routes import TRACES

KEY = "sk-test-key"
Make = Callable[[Settings], Any]
PROMPT = {"model": "m", "prompt": "hi"}


# -- Authorization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER {KEY}", f"Bearer   {KEY}", f"bEaReR\t{KEY} ", f" Bearer {KEY}"]
)
def test_the_scheme_is_case_insensitive_and_any_whitespace_separates(value: str) -> None:
    assert key_matches(value, KEY)


NON_UTF8 = b"Bearer \xff\xfe".decode("utf-8", "surrogateescape")  # what aiohttp hands over for such bytes


@pytest.mark.parametrize("value", ["", "Bearer", f"Bearer{KEY}", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY} x", NON_UTF8, "\udcff"])
def test_wrong_or_malformed_values_never_match_and_never_raise(value: str) -> None:
    assert not key_matches(value, KEY)


def test_a_non_utf8_key_compares_as_its_bytes() -> None:
    key = "\xe9t\xe9"  # a key of non-ASCII text matches only its own UTF-8 bytes
    assert key_matches("Bearer " + key, key)
    assert not key_matches("Bearer " + "\xe9t\xe9".encode().decode("latin-1"), key)
    assert bearer_token("Bearer  a b ") == "a b" and bearer_token("Token a") is None


async def test_a_non_utf8_header_is_a_401(make_client: Make) -> None:
    client = await make_client(Settings(api_key=KEY))
    response = await client.get("/v3/models", headers={"Authorization": "Bearer \u00ff"})  # sent as Latin-1 byte 0xff
    assert response.status == 401 and (await response.json())["error"]["type"] == "authentication_error"
    assert (await client.get("/v3/models", headers={"Authorization": f"bearer  {KEY}"})).status == 200


# -- open paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "entries", "is_open"),
    [
        ("/v2/health/live", ("/v2/health/",), True),
        ("/v2/health", ("/v2/health/",), True),
        ("/v2/health/live", ("/v2/health",), True),
        ("/v2/healthy", ("/v2/health",), False),
        ("/v2/healthy", ("/v2/health/",), False),
        ("/v2/models/pub/infer", ("/v2/models/pub",), True),
        ("/v2/models/public2/infer", ("/v2/models/pub",), False),
        ("/metrics", ("/metrics",), True),
        ("/metricsx", ("/metrics",), False),
        ("/v2/health/../../v3/models", ("/v2/health/",), False),
        ("/v2/health/./live", ("/v2/health/",), False),
        ("/v3/models", ("/",), True),
        ("/v3/models", (), False),
    ],
)
def test_open_paths_match_whole_segments(path: str, entries: tuple[str, ...], is_open: bool) -> None:
    assert is_open_path(path, entries) is is_open


async def test_an_open_entry_does_not_open_a_longer_name(make_client: Make) -> None:
    client = await make_client(Settings(api_key=KEY, api_key_open_paths=("/v2/models/m",)))
    assert (await client.get("/v2/models/m")).status == 200
    assert (await client.get("/v2/models/m2")).status == 401  # was open (string prefix): 404


# -- Host ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("localhost:8000", "localhost"),
        ("[::1]:80", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("Evil.Example.", "evil.example"),
        ("127.0.0.2", "127.0.0.2"),
    ],
)
def test_host_names(host: str, name: str) -> None:
    assert host_name(host) == name


LOOPBACK_HOSTS = ["localhost", "localhost:8000", "127.0.0.1:8000", "127.1.2.3", "[::1]:8000", "app.localhost:1"]
FOREIGN_HOSTS = ["evil.example", "evil.example:8000", "localhost.evil.example", "192.168.1.10:8000", "[::2]", "x"]


@pytest.mark.parametrize("bind", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_bound_to_loopback_only_loopback_names_are_admitted(bind: str) -> None:
    policy = HostPolicy.of("", bind)
    assert all(policy.admits(h) for h in LOOPBACK_HOSTS)
    assert not any(policy.admits(h) for h in FOREIGN_HOSTS)


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.0.0.5"])
def test_bound_elsewhere_any_host_is_admitted(bind: str) -> None:
    assert all(HostPolicy.of("", bind).admits(h) for h in LOOPBACK_HOSTS + FOREIGN_HOSTS)


def test_allowed_hosts_adds_names_and_domains() -> None:
    policy = HostPolicy.of("api.example.com:443, .corp.example", "0.0.0.0")
    assert policy.admits("API.example.com:8000") and policy.admits("corp.example") and policy.admits("a.corp.example")
    assert policy.admits("localhost:1") and not policy.admits("evil.example") and not policy.admits("xcorp.example")
    assert HostPolicy.of("*", "127.0.0.1").admits("evil.example")


async def test_a_foreign_host_is_refused_in_the_apis_shape(make_client: Make) -> None:
    client = await make_client(Settings())
    response = await client.get("/v3/models", headers={"Host": "evil.example:8000"})
    error = (await response.json())["error"]
    assert response.status == 403 and error["code"] == "host_not_allowed" and "--allowed_hosts" in error["message"]
    response = await client.get("/v2/health/live", headers={"Host": "evil.example"})
    assert response.status == 403 and isinstance((await response.json())["error"], str)  # KServe's shape
    assert (await client.get("/v3/models", headers={"Host": "localhost:8000"})).status == 200


# -- CORS ------------------------------------------------------------------------------------


async def test_cors_is_off_by_default(make_client: Make) -> None:
    client = await make_client(Settings())
    response = await client.get("/v3/models", headers={"Origin": "https://evil.example"})
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = await client.options("/v3/completions", headers=preflight)
    assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers
    response = await client.post("/v3/completions", json=PROMPT, headers={"Origin": "https://evil.example"})
    error = (await response.json())["error"]
    assert response.status == 403 and error["code"] == "origin_not_allowed" and "--allowed_origins" in error["message"]
    assert (await client.post("/v3/completions", json=PROMPT)).status == 200  # no Origin: not a browser


async def test_a_post_from_the_servers_own_origin_is_not_cross_origin(make_client: Make) -> None:
    """The web console's calls: a browser sends Origin on a same-origin POST too."""
    client = await make_client(Settings())
    own = f"http://{client.host}:{client.port}"
    assert (await client.post("/v3/completions", json=PROMPT, headers={"Origin": own})).status == 200
    fetched = {"Origin": "http://localhost:1", "Sec-Fetch-Site": "same-origin"}  # as a browser says it behind a proxy
    assert (await client.post("/v3/completions", json=PROMPT, headers=fetched)).status == 200
    for origin in (f"https://{client.host}:{client.port}", f"http://{client.host}:1", "null"):
        response = await client.post("/v3/completions", json=PROMPT, headers={"Origin": origin})
        assert response.status == 403, origin
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert (await client.post("/v3/completions", json=PROMPT, headers=cross)).status == 403


async def test_cors_any_origin_only_when_asked(make_client: Make) -> None:
    client = await make_client(Settings(allowed_origins="*"))
    response = await client.post("/v3/completions", json=PROMPT, headers={"Origin": "https://app.example"})
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    # A page may read why fields were ignored, the trace id and Retry-After.
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Ovserve-Ignored-Fields", "X-Ovserve-Trace-Id", "Retry-After"} <= exposed


# -- media type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"), [(None, ""), ("application/json", "application/json"), ("Application/JSON; charset=utf-8", "application/json")]
)
def test_media_type(value: str | None, kind: str) -> None:
    assert media_type(value) == kind


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])
async def test_post_bodies_must_be_json(make_client: Make, content_type: str | None) -> None:
    client = await make_client(Settings())
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"model": "m", "prompt": "hi"}'
    response = await client.post("/v3/completions", data=body, headers=headers, skip_auto_headers=("Content-Type",))
    error = (await response.json())["error"]
    assert response.status == 415 and error["code"] == "unsupported_media_type" and "application/json" in error["message"]
    response = await client.post("/v3/completions", data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status == 200


@pytest.mark.parametrize(("content_type", "accepted"), [("application/octet-stream", True), (None, True), ("text/plain", False)])
async def test_kserve_infer_takes_what_tritonclient_sends(make_client: Make, content_type: str | None, accepted: bool) -> None:
    client = await make_client(Settings())
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v2/models/m/infer", data=b"{}", headers=headers, skip_auto_headers=("Content-Type",))
    body = await response.json()
    assert isinstance(body["error"], str)  # KServe's shape either way
    assert (response.status != 415) is accepted, body


# -- config API ------------------------------------------------------------------------------


async def test_the_config_api_is_off_unless_enabled(make_client: Make) -> None:
    client = await make_client(Settings())
    for method, path in (("GET", "/v1/config"), ("POST", "/v1/config/reload")):
        response = await client.request(method, path)
        error = (await response.json())["error"]
        assert response.status == 404 and error["code"] == "config_api_off" and "--enable_config_api" in error["message"]
    client = await make_client(Settings(enable_config_api=True, api_key=KEY))
    assert (await client.get("/v1/config")).status == 401
    assert (await client.post("/v1/config/reload")).status == 401
    assert (await client.get("/v1/config", headers={"Authorization": f"Bearer {KEY}"})).status == 200


def test_flags_and_their_defaults() -> None:
    parser = build_parser()
    settings = settings_from_args(parser.parse_args(["--model_path", "x"]))
    assert (settings.allowed_origins, settings.allowed_hosts, settings.enable_config_api, settings.trace_dir_max_files) == (
        "",
        "",
        False,
        1000,
    )
    flags = ["--model_path", "x", "--allowed_hosts", "a.example", "--enable_config_api", "--trace_dir_max_files", "0"]
    settings = settings_from_args(parser.parse_args(flags))
    assert (settings.allowed_hosts, settings.enable_config_api, settings.trace_dir_max_files) == ("a.example", True, 0)


# -- trace files -----------------------------------------------------------------------------


async def test_trace_files_are_capped_and_foreign_files_kept(make_client: Make, tmp_path: Path) -> None:
    old = tmp_path / "0123456789abcdef.json"  # an earlier run's trace: counted, deleted first
    old.write_text("{}")
    os.utime(old, (1, 1))
    foreign = [tmp_path / "notes.json", tmp_path / "0123456789abcdeg.json", tmp_path / "keep.txt"]
    for path in foreign:
        path.write_text("mine")
    client = await make_client(Settings(trace="all", trace_dir=tmp_path, trace_dir_max_files=2))
    ids = []
    for _ in range(4):
        response = await client.post("/v3/completions", json=PROMPT)
        ids.append(response.headers["X-Ovserve-Trace-Id"])
        await client.app[TRACES].flush()
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"{i}.json" for i in ids[-2:]} | {p.name for p in foreign}


async def test_no_cap_with_zero(make_client: Make, tmp_path: Path) -> None:
    client = await make_client(Settings(trace="all", trace_dir=tmp_path, trace_dir_max_files=0))
    for _ in range(3):
        await client.post("/v3/completions", json=PROMPT)
    await client.app[TRACES].flush()
    assert len(list(tmp_path.iterdir())) == 3
