"""comotion.errors: the one-line error report of the tools/ scripts."""

import pytest

from comotion.errors import ComotionError, InputError, report_errors


def test_report_errors_prints_one_line_and_returns_2(capsys):
    @report_errors
    def main(argv=None):
        raise InputError(f"{argv[0]}: no such file")

    assert main(["missing.pt"]) == 2
    assert capsys.readouterr().err == "error: missing.pt: no such file\n"


def test_report_errors_passes_results_and_other_exceptions_through():
    assert report_errors(lambda: None)() == 0
    assert report_errors(lambda: 3)() == 3
    with pytest.raises(ZeroDivisionError):
        report_errors(lambda: 1 / 0)()
    assert issubclass(InputError, ComotionError)
