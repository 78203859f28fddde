import pytest

from pipeline.expected import parse_expected, read_expected


def test_parse_groups_signers_by_document():
    text = "\ufeffdocument,signer_id\nlease.pdf,s2\nlease.pdf,s1\nnda 1.pdf,s3\nlease.pdf,s1\n"
    assert parse_expected(text) == {"lease.pdf": ("s1", "s2"), "nda 1.pdf": ("s3",)}


def test_missing_column_names_the_header():
    with pytest.raises(ValueError, match=r"header must have columns .* got \['doc', 'signer'\]"):
        parse_expected("doc,signer\na.pdf,s1\n", source="x.csv")


def test_empty_cell_names_the_line():
    with pytest.raises(ValueError, match="x.csv line 3"):
        parse_expected("document,signer_id\na.pdf,s1\nb.pdf,\n", source="x.csv")


def test_read_from_file_and_none(tmp_path):
    path = tmp_path / "expected.csv"
    path.write_text("document,signer_id\nvertrag-ä.pdf,müller\n", encoding="utf-8")
    assert read_expected(str(path)) == {"vertrag-ä.pdf": ("müller",)}
    assert read_expected(None) == {}
