"""The bytes tokenizer describes the vocabulary the engine is opened with."""

import json

from freqindex.text.tokenizers import BytesTokenizer


def test_vocabulary_is_255_ids_as_the_engine_uses(tmp_path):
    """256 byte values minus 0xff, the document separator: ids 0..254, so the engine's vocab_size is 255
    (eos 254). The tokenizer's description in the manifest says the same as the manifest's engine entry."""
    from freqindex.build import build_index, run_in_process
    from freqindex.config import BuildConfig

    tok = BytesTokenizer()
    assert tok.describe() == {"name": "bytes", "width": 1, "dtype": "u8", "vocab_size": 256 - 1}
    (tmp_path / "a.txt").write_text("a dog\n")
    build_index(
        BuildConfig(inputs=(str(tmp_path / "a.txt"),), output=str(tmp_path / "idx"), text_per_line=True),
        run_in_process,
    )
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["tokenizer"]["vocab_size"] == m["engine"]["vocab_size"] == 255
    assert m["engine"]["eos_token_id"] == 254
