import numpy as np
import pytest

from frontier.routing.datasets import DataError, load_groups, load_outcomes, load_prompts


def _write(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_outcomes_accept_booleans_and_scores(tmp_path):
    path = _write(tmp_path, 'prompt,a,b\n"multi\nline",True,false\nq2,1,0.25\nq3,0,TRUE\n')
    o = load_outcomes(path, "a", "b")
    assert o.prompts == ["multi\nline", "q2", "q3"]
    assert np.array_equal(o.light, [1.0, 1.0, 0.0]) and np.array_equal(o.reasoning, [0.0, 0.25, 1.0])
    assert len(o.sha256) == 64
    assert load_prompts(path) == ["multi\nline", "q2", "q3"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("prompt,a,b\nq1,True,True\nq2,yes,True\n", r"row 1, column 'a'.*'yes'"),
        ("prompt,a,b\nq1,True,1.5\n", r"row 0, column 'b'.*'1.5'"),
        ("prompt,a,b\nq1,True,\n", r"row 0, column 'b'"),
        ("prompt,a,b\nq1,True,True\n ,True,True\n", r"row 1, column 'prompt': empty prompt"),
        ("prompt,a\nq1,True\n", r"missing column\(s\) \['b'\]"),
        ("prompt,a,b\n", r"no data rows"),
    ],
)
def test_malformed_files_name_row_and_column(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_outcomes(_write(tmp_path, text), "a", "b")


def test_missing_file_and_missing_prompt_column(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_prompts(tmp_path / "absent.csv")
    with pytest.raises(DataError, match=r"missing column\(s\) \['prompt'\]"):
        load_prompts(_write(tmp_path, "text\nhello\n"))


def test_a_pool_with_several_columns_gets_their_mean_and_groups_load_as_strings(tmp_path):
    path = _write(tmp_path, "prompt,domain,a1,a2,b\nq1,math,1,0,True\nq2,7,0.5,0.5,0\n")
    o = load_outcomes(path, ["a1", "a2"], ("b",))
    assert np.allclose(o.light, [0.5, 0.5]) and np.array_equal(o.reasoning, [1.0, 0.0])
    assert list(load_groups(path, "domain")) == ["math", "7"]
    with pytest.raises(DataError, match=r"row 1, column 'a2'"):
        load_outcomes(_write(tmp_path, "prompt,a1,a2,b\nq1,1,0,1\nq2,1,x,1\n"), ["a1", "a2"], "b")
    with pytest.raises(DataError, match="at least one outcome column"):
        load_outcomes(path, [], "b")
