"""The test requirements: in CI a missing reference library stops the run instead of skipping its tests."""

from __future__ import annotations

import sys
import types

import pytest

from tests import conftest


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_ci_refuses_to_start_without_a_reference_library(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    # albumentations imports cv2: present here, whether or not this process imported it already.
    monkeypatch.setitem(sys.modules, "albumentations", types.ModuleType("albumentations"))
    with pytest.raises(
        pytest.UsageError,
        match=r"CI is set and the test requirements opencv-python-headless, hypothesis are missing; .*"
        r'pip install -e "\.\[test\]"',
    ):
        conftest.pytest_configure(None)


@pytest.mark.parametrize("value", [None, "", "0", "false"])
def test_outside_ci_a_missing_library_only_skips_the_tests_that_need_it(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    monkeypatch.setitem(sys.modules, "cv2", None)
    conftest.pytest_configure(None)  # no error: the tests that need cv2 call pytest.importorskip
    with pytest.raises(pytest.skip.Exception, match="cv2"):
        pytest.importorskip("cv2")
