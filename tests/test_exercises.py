"""The notebooks' self-grading check: not attempted, right and wrong answers."""

import pytest
import torch

from nst_utils.exercises import check


def test_not_attempted_prints_a_note_and_lets_the_notebook_go_on(capsys):
    assert check("gram", None, torch.ones(2, 2)) is None  # nothing shown under the cell
    assert "gram: not attempted yet" in capsys.readouterr().out


def test_a_right_answer_is_confirmed(capsys):
    expected = torch.arange(6.0).reshape(2, 3)
    assert check("gram", expected + 1e-7, expected) is True
    assert check("sizes", [3, 4.0], [3, 4]) is True
    assert capsys.readouterr().out.count("correct.") == 2


def test_a_wrong_answer_says_what_differs_without_the_answer():
    expected = torch.tensor([[1234.5, 2.0], [3.0, 4.0]])
    with pytest.raises(AssertionError, match="shape is \\(4,\\)") as wrong_shape:
        check("gram", torch.ones(4), expected)
    with pytest.raises(AssertionError, match="1 of 4 values are off") as wrong_value:
        check("gram", expected * torch.tensor([[2.0, 1.0], [1.0, 1.0]]), expected)
    for error in (wrong_shape, wrong_value):
        assert "1234" not in str(error.value)  # the expected values are not given away
    with pytest.raises(AssertionError, match="NaN"):
        check("gram", torch.full((2, 2), float("nan")), expected)
    with pytest.raises(AssertionError, match="2 results where 3 are expected"):
        check("fields", [1, 2], [1, 2, 3])
    with pytest.raises(AssertionError, match="item 1: the value is not right yet"):
        check("fields", [1, 5], [1, 2])
    with pytest.raises(AssertionError, match="expected a tensor, got a list"):
        check("gram", [[1.0]], torch.ones(1, 1))


def _check_calls(path):
    import json
    import re

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return re.findall(r"^\s*(assert )?check\(\s*f?\"([^\"{]+)", code, flags=re.M)


def test_every_exercise_has_a_solution_that_must_pass():
    from pathlib import Path

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    with_exercises = [p for p in sorted(notebooks.glob("*.ipynb")) if _check_calls(p)]
    assert with_exercises, "no notebook with self-grading exercises found"
    for path in with_exercises:
        solution = notebooks / "solutions" / f"{path.stem}_solutions.ipynb"
        assert solution.is_file(), f"{path.name} has exercises but no {solution.name}"
        calls = _check_calls(solution)
        # a solution that returned None would only print "not attempted": assert it instead
        loose = [name for solved, name in calls if not solved]
        assert not loose, f"{solution.name}: write `assert check(...)` for {loose}"
        missing = {n for _, n in _check_calls(path)} - {n for _, n in calls}
        assert not missing, f"{solution.name} does not solve {sorted(missing)}"
