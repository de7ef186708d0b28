"""The one Markdown table builder: layout checked against a hand-written table."""

import pytest

from melos.utils.markdown import markdown_table


def test_table_layout():
    text = markdown_table(["model", "makam", "raga"], [["western", 0.5, "69.9 ± 1.1"], ["multi", 1, ""]])
    assert text == ("| model | makam | raga |\n"
                    "|---|---|---|\n"
                    "| western | 0.5 | 69.9 ± 1.1 |\n"
                    "| multi | 1 |  |")


def test_header_only_and_ragged_rows():
    assert markdown_table(["a"], []) == "| a |\n|---|"
    with pytest.raises(ValueError, match="a row of 1 cells under a header of 2"):
        markdown_table(["a", "b"], [["x"]])
