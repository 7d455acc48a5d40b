"""Plain progress lines for logs: rate-limited, never silent about the start and the end of a stage."""

from freqindex.progress import LineProgress


def test_line_progress_is_rate_limited_and_reports_the_end():
    now = [0.0]
    out: list[str] = []
    p = LineProgress(out.append, min_interval_s=5, clock=lambda: now[0])
    for t, done in ((0, 0), (1, 1), (2, 1), (6, 2), (7, 3), (8, 8), (9, 8)):
        now[0] = t
        p("read + tokenize", done, 8)
    now[0] = 9
    p("write shards", 0, 2)
    p("write shards", 2, 2)
    assert out == [
        "read + tokenize: 0/8 tasks (0 s)",
        "read + tokenize: 2/8 tasks (6 s)",
        "read + tokenize: 8/8 tasks (8 s)",
        "write shards: 0/2 tasks (0 s)",
        "write shards: 2/2 tasks (0 s)",
    ]
