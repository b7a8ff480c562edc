"""The typed errors form one tree under BcirError, and a stop request is one type that no file error handler takes."""

import pytest

from model.data.csv_input import CsvError, CsvPathError
from model.errors import (
    BcirError,
    Cancelled,
    ConfigError,
    DataError,
    ImageReadError,
    JobError,
    ModelFileError,
    RegistryError,
    TruncatedFileError,
    failure_reason,
)


def test_every_typed_error_is_a_bcir_error_and_data_errors_share_a_branch():
    for kind in (DataError, ModelFileError, RegistryError, JobError, ConfigError, Cancelled):
        assert issubclass(kind, BcirError), kind
        assert kind.__doc__ and kind.__doc__.strip(), kind
    for kind in (ImageReadError, TruncatedFileError, CsvError, CsvPathError):
        assert issubclass(kind, DataError), kind
    assert str(CsvError("/data/a.csv", "empty\nfile")) == "a.csv: empty file"  # the message text is as before


def test_a_stop_request_is_not_an_os_error():
    """Before, a stop was an InterruptedError, an OSError: every per-file ``except OSError`` had to let it through."""
    assert not issubclass(Cancelled, OSError)
    assert str(Cancelled()) == "stopped on request" and str(Cancelled("evaluation cancelled")) == "evaluation cancelled"
    assert failure_reason(Cancelled("inference cancelled")) == "inference cancelled"
    with pytest.raises(Cancelled):
        try:
            raise Cancelled("inference cancelled")
        except OSError:  # what a handler of unreadable files catches
            pytest.fail("a stop request was taken for a file error")
