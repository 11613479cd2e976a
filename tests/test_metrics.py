"""Reading pages: OCR and the character error rate (nst_utils.metrics)."""

import os
import shutil
import sys
import warnings

import pytest
from PIL import Image

from nst_utils import metrics, pages
from nst_utils.errors import BadInputError, NSTError
from nst_utils.metrics import character_error_rate, ocr_engine
from nst_utils.pages import render_page


def test_pages_still_offers_what_notebook_06_imports_from_it():
    assert pages.character_error_rate is metrics.character_error_rate
    assert pages.ocr_engine is metrics.ocr_engine


@pytest.mark.parametrize(
    ("predicted", "truth", "expected"),
    [
        ("abc", "abc", 0.0),
        ("abcdefghiX", "abcdefghij", 0.1),
        ("", "abcde", 1.0),
        ("ab", "abcd", 0.5),
        ("a  b\nc ", " a b c", 0.0),  # whitespace runs and line breaks count as one space
        ("abcabc", "abc", 1.0),
    ],
)
def test_character_error_rate(predicted, truth, expected):
    assert character_error_rate(predicted, truth) == pytest.approx(expected)


def test_character_error_rate_refuses_empty_truth_and_non_strings():
    with pytest.raises(BadInputError, match="truth"):
        character_error_rate("abc", " \n")
    with pytest.raises(BadInputError, match="strings"):
        character_error_rate(None, "abc")


def test_ocr_engine_is_none_with_a_warning_when_no_engine_exists(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # makes "import rapidocr" fail
    monkeypatch.setenv("PATH", "")  # and no tesseract program
    with pytest.warns(UserWarning, match=r"pip install 'nst-course\[ocr\]'.*tesseract-ocr"):
        assert ocr_engine() is None


def fake_tesseract(folder, script: str) -> None:
    program = folder / "tesseract"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)


def test_ocr_engine_falls_back_to_tesseract(monkeypatch, tmp_path):
    """Without RapidOCR, a tesseract program on the PATH reads the page: it gets a PNG on
    stdin (saved here by the fake program) and its stdout is the text."""
    monkeypatch.setitem(sys.modules, "rapidocr", None)
    fake_tesseract(tmp_path, f'cat > "{tmp_path}/page.png"\necho "read: $1 $2"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")  # found first
    ocr = ocr_engine()
    page, _ = render_page(0, (60, 90), font_size=10)
    assert ocr.__name__ == "tesseract_read" and ocr(page) == "read: stdin stdout"
    assert Image.open(tmp_path / "page.png").size == (90, 60)
    fake_tesseract(tmp_path, 'echo "Error: no language data" >&2\nexit 1\n')
    with pytest.raises(NSTError, match="tesseract failed \\(exit 1\\): Error: no language data"):
        ocr(page)


@pytest.mark.slow
def test_ocr_engine_reads_clean_lines():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ocr = ocr_engine()
    if ocr is None:
        pytest.skip("no OCR engine installed: pip install 'nst-course[ocr]'")
    lines, text = render_page(0, (96, 192), font_size=14)  # OCR upscales: keep it small
    assert character_error_rate(ocr(lines), text) < 0.1


@pytest.mark.skipif(not shutil.which("tesseract"), reason="Tesseract is not installed")
@pytest.mark.slow
def test_tesseract_reads_clean_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr", None)
    ocr = ocr_engine()
    lines, text = render_page(0, (96, 192), font_size=14)
    assert ocr.__name__ == "tesseract_read"
    assert character_error_rate(ocr(lines), text) < 0.1
