"""`freqindex serve`: the real server in a subprocess on a free loopback port, spoken to over HTTP.

Every endpoint against the CLI on the same index, property-based requests from the OpenAPI spec
(schemathesis: no 5xx), auth with a non-loopback bind, SQL escapes, path traversal, body limits, a runaway
query cancelled with 504 while the server stays healthy, and SIGTERM finishing an in-flight request.
"""

from __future__ import annotations

import importlib.util
import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings

from freqindex import settings
from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from tests.conftest import GSM8K_TEST, GSM8K_TRAIN, REPO, WIKITEXT, cli, free_port
from tests.reference import read_jsonl_docs, read_lines_docs

HAS_EMBED = importlib.util.find_spec("sentence_transformers") is not None


class Server:
    def __init__(self, *dirs, host="127.0.0.1", extra=()):
        pytest.importorskip("fastapi", reason="the serve extra is not installed")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "freqindex.cli",
                "serve",
                *map(str, dirs),
                "--host",
                host,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *extra,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("server did not come up")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    from freqindex.vectors.stage import run_embedding

    root = tmp_path_factory.mktemp("serve")
    texts = read_lines_docs(WIKITEXT)[:300] + read_jsonl_docs(GSM8K_TRAIN, "question")[:300]
    (root / "c.jsonl").write_text(
        "".join(json.dumps({"id": f"d{k}", "text": t}) + "\n" for k, t in enumerate(texts))
    )
    build_index(BuildConfig(inputs=(str(root / "c.jsonl"),), output=str(root / "main")), run_in_process)
    if HAS_EMBED:  # without the embed extra, every test but the neighbours one still runs
        run_embedding(str(root / "main"), run_in_process)
    (root / "other").mkdir()
    (root / "o.txt").write_text("a second index with its own text\nanother line of it\n")
    build_index(
        BuildConfig(inputs=(str(root / "o.txt"),), output=str(root / "other" / "second"), text_per_line=True),
        run_in_process,
    )
    return root


@pytest.fixture(scope="module")
def server(index_dir):
    s = Server(index_dir / "main", index_dir / "other" / "second")
    yield s
    s.stop()


def post(server, path, body, **kw):
    return httpx.post(server.url + path, json=body, timeout=120, **kw)


def _shard_bytes(index: Path) -> int:
    """The bytes of an index's sa/ files as its manifest lists them (what `serve --preload` reads)."""
    files = json.loads((index / "manifest.json").read_text())["files"]
    return sum(meta["size"] for rel, meta in files.items() if rel.startswith("sa/"))


def test_preload_reads_every_shard_file_and_healthz_reports_it(server, index_dir):
    assert "preload" not in httpx.get(server.url + "/healthz").json()  # off unless asked for
    dirs = (index_dir / "main", index_dir / "other" / "second")
    s = Server(*dirs, extra=("--preload",))
    try:
        deadline = time.time() + 120
        while (pre := httpx.get(s.url + "/healthz").json()["preload"])["state"] == "running":
            assert time.time() < deadline, pre
            time.sleep(0.2)
        want = sum(_shard_bytes(d) for d in dirs)
        assert pre["state"] == "done" and pre["bytes"] == pre["total_bytes"] == want, (pre, want)
        r = post(s, "/v1/count", {"index": "main", "query": " the "})
        assert (
            r.status_code == 200
            and r.json()["results"]
            == post(server, "/v1/count", {"index": "main", "query": " the "}).json()["results"]
        )
    finally:
        s.stop()
    err = s.proc.stderr.read()
    assert f"preloading {want / 1e9:.2f} GB of shard files" in err and "preloaded" in err, err


def test_indexes_health_and_metrics(server):
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    names = {i["name"]: i for i in httpx.get(server.url + "/v1/indexes").json()}
    assert set(names) == {"main", "second"}
    assert names["main"]["has_vectors"] and names["main"]["documents"] == 600
    spec = httpx.get(server.url + "/openapi.json").json()
    for p in (
        "/v1/count",
        "/v1/docs",
        "/v1/concepts",
        "/v1/neighbors",
        "/v1/contamination",
        "/v1/sql",
        "/metrics",
    ):
        assert p in spec["paths"], p
    post(server, "/v1/count", {"index": "main", "query": "the"})
    m = httpx.get(server.url + "/metrics").text
    assert 'freqindex_http_requests_total{method="POST",route="/v1/count",status="200"}' in m
    assert "freqindex_http_request_seconds_bucket" in m


def test_count_docs_concepts_sql_equal_the_cli(server, index_dir):
    idx = index_dir / "main"
    queries = ["the", "how many", "miles AND hours", "apples OR oranges", "never seen phrase xyz"]
    for unit in ("occurrences", "docs"):
        got = post(server, "/v1/count", {"index": "main", "queries": queries, "unit": unit}).json()["results"]
        for q, g in zip(queries, got):
            want = json.loads(cli("count", idx, q, "--unit", unit, "--json", check=0).stdout)
            assert g == want, q
    got = post(server, "/v1/count", {"index": "second", "query": "line"}).json()["results"][0]["count"]
    assert got == 1
    d = post(server, "/v1/docs", {"index": "main", "query": "how many", "limit": 5}).json()
    want = [
        json.loads(ln)
        for ln in cli("docs", idx, "how many", "--limit", "5", "--json", check=0).stdout.splitlines()
    ]
    assert d["docs"] == want and d["total_docs"] >= len(want)
    c = post(
        server,
        "/v1/concepts",
        {"index": "main", "concepts": ["apple", {"concept": "mile", "aliases": ["km"]}]},
    ).json()
    vocab = index_dir / "v.jsonl"
    vocab.write_text('{"concept": "apple"}\n{"concept": "mile", "aliases": ["km"]}\n')
    want = [
        json.loads(ln)
        for ln in cli("concepts", idx, "--concepts", vocab, "--json", check=0).stdout.splitlines()
    ]
    assert sorted((r["concept"], r["occurrences"], r["doc_frequency"]) for r in c["concepts"]) == sorted(
        (r["concept"], r["occurrences"], r["doc_frequency"]) for r in want
    )
    s = post(server, "/v1/sql", {"index": "main", "sql": "SELECT count(*) AS n FROM docs"}).json()
    want = json.loads(cli("sql", idx, "SELECT count(*) AS n FROM docs", "--format", "json", check=0).stdout)
    assert s["rows"] == [want] and s["columns"] == ["n"] and not s["truncated"]
    s = post(server, "/v1/sql", {"index": "main", "sql": "SELECT * FROM range(50)", "max_rows": 10}).json()
    assert len(s["rows"]) == 10 and s["truncated"]


@pytest.mark.skipif(not HAS_EMBED, reason="the embed extra is not installed")
def test_neighbors_and_contamination_equal_the_cli(server, index_dir, tmp_path):
    idx = index_dir / "main"
    evals = [json.loads(ln) for ln in GSM8K_TRAIN.read_text().splitlines()[:3]]
    evals += [json.loads(ln) for ln in GSM8K_TEST.read_text().splitlines()[:3]]
    items = [{"id": f"e{k}", "text": r["question"]} for k, r in enumerate(evals)]
    ev = tmp_path / "ev.jsonl"
    ev.write_text("".join(json.dumps(i) + "\n" for i in items))
    n = post(server, "/v1/neighbors", {"index": "main", "items": items, "k": 3}).json()["neighbors"]
    want = [
        json.loads(ln)
        for ln in cli(
            "neighbors", idx, "--eval", ev, "--fields", "text", "-k", "3", "--json", check=0
        ).stdout.splitlines()
    ]
    assert [(r["item_id"], r["doc_id"]) for r in n] == [(r["item_id"], r["doc_id"]) for r in want]
    assert [r["similarity"] for r in n] == pytest.approx([r["similarity"] for r in want], abs=1e-5)
    body = post(server, "/v1/contamination", {"index": "main", "items": items}).json()
    out = tmp_path / "cont"
    summary = json.loads(
        cli("contamination", idx, "--eval", ev, "--fields", "text", "--out", out, "--json", check=0).stdout
    )
    recs = [json.loads(ln) for ln in (out / "items.jsonl").read_text().splitlines()]
    assert body["summary"]["buckets"] == summary["buckets"]
    assert [(r["id"], r["bucket"], r["coverage"]) for r in body["items"]] == [
        (r["id"], r["bucket"], r["coverage"]) for r in recs
    ]
    assert [r["bucket"] for r in body["items"][:3]] == ["dirty"] * 3  # train questions are in the index


def test_concurrent_requests_match_sequential_answers(server):
    """16 threads hammering count/docs/contamination on one index get exactly the sequential answers."""
    words = " ".join(read_lines_docs(WIKITEXT)[:200]).split()
    queries = [" ".join(words[i : i + 1 + i % 3]) for i in range(0, 600, 7)]
    queries = [q for q in queries if any(ch.isalnum() for ch in q)]  # punctuation alone is refused (400)
    want = {
        q: post(server, "/v1/count", {"index": "main", "query": q}).json()["results"][0]["count"]
        for q in queries
    }
    want_docs = post(server, "/v1/docs", {"index": "main", "query": "the", "limit": 20}).json()
    item = {"index": "main", "items": [{"id": "a", "text": read_jsonl_docs(GSM8K_TRAIN, "question")[5]}]}
    want_c = post(server, "/v1/contamination", item).json()["items"]
    bad: list = []

    def worker(k: int):
        with httpx.Client(timeout=120) as c:
            for j, q in enumerate(queries[k::4]):
                r = c.post(server.url + "/v1/count", json={"index": "main", "query": q})
                if r.json()["results"][0]["count"] != want[q]:
                    bad.append(q)
                if (
                    j % 5 == 0
                    and c.post(
                        server.url + "/v1/docs", json={"index": "main", "query": "the", "limit": 20}
                    ).json()
                    != want_docs
                ):
                    bad.append("docs")
                if (
                    j % 9 == 0
                    and c.post(server.url + "/v1/contamination", json=item).json()["items"] != want_c
                ):
                    bad.append("contamination")

    threads = [threading.Thread(target=worker, args=(k % 4,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not bad


def test_invalid_input_gets_clear_4xx(server):
    cases = [
        ({"index": "main"}, 422, "invalid_request"),
        ({"index": "main", "query": ""}, 422, "invalid_request"),
        ({"index": "main", "query": 5}, 422, "invalid_request"),
        ({"index": "main", "query": "x", "unit": "bytes"}, 422, "invalid_request"),
        ({"index": "main", "query": "a AND "}, 400, "bad_query"),
        ({"index": "main", "query": "?.,;"}, 400, "bad_query"),  # only punctuation: nothing to count
        ({"index": "main", "queries": ["the", "!!!"]}, 400, "bad_query"),
        ({"index": "nope", "query": "x"}, 404, "unknown_index"),
        ({"index": "../main", "query": "x"}, 404, "unknown_index"),
        ({"index": "other/second", "query": "x"}, 404, "unknown_index"),
        ({"index": "main", "query": "x", "extra": 1}, 422, "invalid_request"),
        ({"index": "main", "queries": ["x"] * 1001}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = post(server, "/v1/count", body)
        assert r.status_code == status and r.json()["error"] == code, (body, r.text)
        assert "Traceback" not in r.text
    r = httpx.post(
        server.url + "/v1/count",
        content=b'{"index": "main", "query": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    r = httpx.post(
        server.url + "/v1/count", content=b'{"index": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    r = httpx.post(server.url + "/v1/count", content=b"index=main", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = post(server, "/v1/neighbors", {"index": "second", "items": [{"id": "a", "text": "x"}]})
    assert r.status_code == 400 and "no vectors" in r.json()["message"]
    r = post(server, "/v1/neighbors", {"index": "main", "items": [{"id": "a", "text": "x"}], "k": 5000})
    assert r.status_code == 422


def test_sql_is_read_only_and_sandboxed(server):
    attacks = [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/fqx-pwned.csv'",
        "ATTACH '/tmp/fqx-pwned.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access=true",
        "CREATE TABLE t AS SELECT 1",
        "SELECT * FROM glob('/etc/*')",
        "SELECT 1; SELECT 2",
    ]
    for q in attacks:
        r = post(server, "/v1/sql", {"index": "main", "sql": q})
        assert r.status_code == 400 and r.json()["error"] == "bad_query", (q, r.text)
    assert not Path("/tmp/fqx-pwned.csv").exists() and not Path("/tmp/fqx-pwned.duckdb").exists()


def test_body_limits(server):
    from freqindex import settings

    big = {"index": "main", "queries": ["x" * 9000] * 200}
    r = post(server, "/v1/count", big)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"

    def chunks():
        yield b'{"index": "main", "query": "'
        for _ in range(settings.MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(server.url + "/v1/count", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_token_required_off_loopback(index_dir, tmp_path):
    r = cli("serve", index_dir / "main", "--host", "0.0.0.0", "--port", str(free_port()), check=2)
    assert "--token-file" in r.stderr
    tok = tmp_path / "token"
    tok.write_text("s3cret-token-0123456789\n")
    s = Server(index_dir / "main", host="0.0.0.0", extra=("--token-file", str(tok)))
    try:
        assert httpx.get(s.url + "/healthz").status_code == 200
        body = {"index": "main", "query": "the"}
        assert httpx.post(s.url + "/v1/count", json=body).status_code == 401
        assert (
            httpx.post(s.url + "/v1/count", json=body, headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert (
            httpx.get(
                s.url + "/v1/indexes", headers={"Authorization": "Basic s3cret-token-0123456789"}
            ).status_code
            == 401
        )
        assert httpx.get(s.url + "/metrics").status_code == 401
        ok = httpx.post(
            s.url + "/v1/count", json=body, headers={"Authorization": "Bearer s3cret-token-0123456789"}
        )
        assert ok.status_code == 200 and ok.json()["results"][0]["count"] > 0
    finally:
        s.stop()


def test_a_port_that_cannot_be_listened_on_is_one_line_before_loading(index_dir):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        r = cli("serve", index_dir / "main", "--port", str(port), check=2)
        # checked first: an index that is not there is not even looked at
        r2 = cli("serve", index_dir / "not-here", "--port", str(port), check=2)
    assert r.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another process holds it: choose "
        "another --port, or 0 for any free port)"
    ], r.stderr
    assert r2.stderr == r.stderr


def test_runaway_query_504_and_sigterm_finishes_in_flight(index_dir):
    s = Server(index_dir / "main", extra=("--timeout", "2"))
    try:
        slow = "SELECT count(*) FROM range(100000000000) t(x) WHERE x % 7 = 3"
        t = time.time()
        r = post(s, "/v1/sql", {"index": "main", "sql": slow})
        assert r.status_code == 504 and r.json()["error"] == "timeout"
        assert time.time() - t < 30
        assert httpx.get(s.url + "/healthz").status_code == 200
        assert post(s, "/v1/count", {"index": "main", "query": "the"}).status_code == 200
    finally:
        s.stop()
    s = Server(index_dir / "main", extra=("--timeout", "60"))
    got = {}

    def in_flight():  # a few seconds of DuckDB work, then the answer
        got["r"] = post(
            s,
            "/v1/sql",
            {"index": "main", "sql": "SELECT count(*) AS n FROM range(1000000000) t(x) WHERE x % 7 = 3"},
        )

    th = threading.Thread(target=in_flight)
    th.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    th.join(60)
    # uvicorn shuts down gracefully, then re-raises the signal: exit status -SIGTERM (or 0)
    assert s.proc.wait(60) in (0, -signal.SIGTERM)
    assert "r" in got, "the in-flight request was dropped"
    assert got["r"].status_code == 200 and got["r"].json()["rows"][0]["n"] == len(range(3, 1000000000, 7))


def test_openapi_fuzz_no_server_errors(server):
    """Requests generated from the server's own OpenAPI spec (schemathesis + hypothesis): never a 5xx, and
    every error is the documented JSON shape."""
    from hypothesis import given

    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {o.path for o in ops} >= {
        "/v1/count",
        "/v1/docs",
        "/v1/concepts",
        "/v1/neighbors",
        "/v1/contamination",
        "/v1/sql",
    }
    statuses: dict[int, int] = {}
    for op in ops:

        @given(case=op.as_strategy())
        @hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            r = case.call(timeout=120)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (case.method, case.path, r.status_code, r.text[:300])
            if r.status_code >= 400:
                assert set(r.json()) == {"error", "message"}

        run()
    assert statuses.get(200, 0) > 50  # the generated requests reach the real code, not only validation


def test_request_past_the_time_limit_stops_and_frees_the_index(index_dir):
    """A contamination request that needs far longer than the time limit is answered 504, its work stops
    at the next item, and a count on the same index right after is answered long before the slow work
    would have ended (it used to wait for the index's lock until then)."""
    from freqindex.commands.contamination import ContaminationConfig, run_contamination
    from freqindex.evals import EvalItem

    text = " ".join(read_lines_docs(WIKITEXT)[:300])  # the main index holds these lines: every item is dirty
    items = [{"id": f"s{i}", "text": text[i * 2000 : (i + 1) * 2000]} for i in range(len(text) // 2000)]
    # how long the slow request would take, from two of its items timed in this process
    cfg = ContaminationConfig(index_dir=str(index_dir / "main"), fields=("text",), neighbors=None)
    run_contamination(cfg, items=[EvalItem("w", "warm up", {"text": "warm up"})], write=False)
    t = time.monotonic()
    run_contamination(
        cfg, items=[EvalItem(i["id"], i["text"], {"text": i["text"]}) for i in items[:2]], write=False
    )
    per_item = (time.monotonic() - t) / 2
    timeout = max(1.0, 3 * per_item)  # a request waiting for the lock through one item still makes it
    # cycle the items (new ids) until the request needs >= 12 time limits, within the server's body limit
    want_n = max(len(items), math.ceil(12 * timeout / per_item))
    body_cap = int(0.9 * settings.MAX_BODY_BYTES)
    texts = [i["text"] for i in items]
    items, size = [], len(json.dumps({"index": "main", "items": []}))
    while len(items) < want_n:
        nxt = {"id": f"s{len(items)}", "text": texts[len(items) % len(texts)]}
        size += len(json.dumps(nxt)) + 2
        if size > body_cap:
            break
        items.append(nxt)
    full = len(items) * per_item
    assert full > 8 * timeout, (full, timeout, len(items))
    s = Server(index_dir / "main", extra=("--timeout", f"{timeout:.2f}"))
    try:
        w = post(s, "/v1/count", {"index": "main", "query": " the "})
        assert w.status_code == 200, w.text[:300]
        want = w.json()["results"]
        t0 = time.monotonic()
        r = post(s, "/v1/contamination", {"index": "main", "items": items})
        assert r.status_code == 504 and r.json()["error"] == "timeout", r.text[:300]
        quick = post(s, "/v1/count", {"index": "main", "query": " the "})
        answered = time.monotonic() - t0
        assert quick.status_code == 200 and quick.json()["results"] == want
        assert answered < full / 2, (answered, full)
        assert httpx.get(s.url + "/healthz").json()["status"] == "ok"
        small = {"index": "main", "items": items[:1]}
        assert post(s, "/v1/contamination", small).json()["items"][0]["bucket"] == "dirty"
    finally:
        s.stop()


def test_serve_with_two_workers(index_dir, server):
    """`serve --workers 2`: two processes answer (each keeps its own metrics registry, so the creation time
    of a route's counter tells the processes apart) and every answer is right."""
    want = post(server, "/v1/count", {"index": "main", "query": " the ", "unit": "docs"}).json()["results"]
    s = Server(index_dir / "main", extra=("--workers", "2"))
    created: set[str] = set()
    answers: list = []

    def hit(k: int) -> None:
        if k % 2:
            r = httpx.post(
                s.url + "/v1/count", json={"index": "main", "query": " the ", "unit": "docs"}, timeout=60
            )
            answers.append(r.json()["results"])
        else:
            httpx.get(s.url + "/healthz", timeout=60)
        for line in httpx.get(s.url + "/metrics", timeout=60).text.splitlines():
            if line.startswith('freqindex_http_requests_created{method="GET",route="/healthz"'):
                created.add(line.rsplit(" ", 1)[1])

    try:
        deadline = time.monotonic() + 120  # the second worker may still be starting
        while len(created) < 2 and time.monotonic() < deadline:
            threads = [threading.Thread(target=hit, args=(k,)) for k in range(16)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(120)
        assert len(created) == 2, created
        assert answers and all(a == want for a in answers)
    finally:
        s.stop()
