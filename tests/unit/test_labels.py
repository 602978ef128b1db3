"""Labels read one way in every format: a typed number (parquet, hub) is read as its text
would be, and integer ids that would build mostly empty classes are refused."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.data.labels import label_value, names_from
from nlpseq.data.sources import Rows
from nlpseq.errors import NlpseqError

NAMES = st.sets(st.sampled_from(["0", "1", "2", "5", "10", "-1", "1.0", "pos", "neg"]))
CHECKS = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@CHECKS
@given(st.integers(-20, 20), NAMES)
def test_a_typed_integer_label_reads_as_the_same_integer_written_in_a_text_file(value, names):
    assert label_value(value, names) == label_value(str(value), names)


@CHECKS
@given(st.integers(-20, 20), NAMES)
def test_a_float_holding_an_integer_reads_as_that_integer_unless_its_text_is_a_name(value,
                                                                                    names):
    expected = str(float(value)) if str(float(value)) in names else label_value(value, names)
    assert label_value(float(value), names) == expected


@pytest.mark.parametrize("raw", [None, float("nan"), float("inf"), "", "  ", "\ufeff"])
def test_nan_and_blank_labels_are_empty(raw):
    assert label_value(raw, {"nan", "inf"}) is None


def rows(count: int) -> Rows:
    return Rows(dataset=None, source="t.tsv", lines=list(range(2, count + 2)))


@pytest.mark.parametrize("ids, classes", [
    ([0, 1, 0, 1], 2),
    ([1, 2, 3, 4, 5], 6),  # star ratings: class 0 empty
    ([0, 4], 5),  # a small file that misses classes 1..3 of 0..4
    ([0, 1, 12], 13),  # 10 empty classes: the most allowed beside fewer filled ones
    (list(range(0, 60, 2)), 59),  # 29 empty, 30 filled
])
def test_integer_ids_name_the_classes_0_to_max(ids, classes):
    assert names_from(ids, rows(len(ids))) == [str(i) for i in range(classes)]


@pytest.mark.parametrize("ids, message", [
    ([0, 1, 13, 0], r"t.tsv, line 4: the label 13 makes 14 classes \(integer labels are class "
                    r"ids 0..max\), 11 of them without a training row; fix the label, or set "
                    r"data.label_names to name every class$"),
    ([0, 1] * 3 + [100000], r"t.tsv, line 8: the label 100000 makes 100001 classes .* 99998 of "
                            r"them without a training row"),
    (list(range(0, 63, 3)), r"line 22: the label 60 makes 61 classes .* 40 of them without"),
])
def test_integer_ids_leaving_most_classes_empty_are_refused_at_the_largest(ids, message):
    with pytest.raises(NlpseqError, match=message):
        names_from(ids, rows(len(ids)))


@CHECKS
@given(st.lists(st.integers(0, 200), min_size=1, max_size=30))
def test_a_head_is_never_much_larger_than_the_classes_the_data_holds(ids):
    try:
        names = names_from(ids, rows(len(ids)))
    except NlpseqError as err:
        assert str(err).startswith(f"t.tsv, line {ids.index(max(ids)) + 2}: the label {max(ids)}")
        return
    assert len(names) <= len(set(ids)) + max(10, len(set(ids)))
