"""The shard writer's metadata lines against the JSON encoder they replace."""

from __future__ import annotations

import json

from freqindex.suffix.stage import metadata_lines


def test_metadata_lines_equal_json_dumps():
    source = '/data/dir "quoted"/é\\ü\t\u2028.jsonl'
    lines = [1, None, 7, 2**40]
    ext_ids = ['a"b\\c\n\x01', None, "日本語 \u2029 😀", ""]
    got = metadata_lines(41, source, lines, ext_ids)
    expected = [
        (
            json.dumps(
                {"doc_id": 41 + i, "source": source, "line": line, "id": ext},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            + "\n"
        ).encode()
        for i, (line, ext) in enumerate(zip(lines, ext_ids))
    ]
    assert got == expected
    assert metadata_lines(0, source, [], []) == []
