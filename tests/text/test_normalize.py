from hypothesis import given, settings
from hypothesis import strategies as st

from freqindex.text.normalize import get_normalizer, simple_document, simple_query
from tests.reference import ref_normalize


def test_simple_examples():
    assert simple_document("Hello,  World!") == "hello world"
    assert simple_document("ﬁne  Straße\t\n(ok)") == "fine strasse ok"
    assert simple_document("ＡＢＣ") == "abc"  # NFKC folds full-width letters
    assert simple_document("…!!!") == ""
    assert simple_document("don't") == "don t"


def test_query_keeps_one_edge_space():
    assert simple_query(" Dog ") == " dog "
    assert simple_query("  dog\t") == " dog "
    assert simple_query("dog") == "dog"
    assert simple_query("dog,") == "dog "
    assert simple_query("!!") == " "
    assert simple_query("") == ""


def test_stored_document_is_padded():
    n = get_normalizer("simple")
    assert n.stored_document("A cat.") == " a cat "
    assert get_normalizer("none").stored_document(" A cat. ") == " A cat. "


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_simple_matches_reference(text):
    assert simple_document(text) == ref_normalize(text)
    assert simple_query(text).strip() == ref_normalize(text, keep_edges=True).strip()


def test_unknown_normalizer_lists_valid_names():
    import pytest

    from freqindex.errors import UsageError

    with pytest.raises(UsageError, match="none, simple"):
        get_normalizer("fancy")
