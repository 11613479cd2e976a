"""The set-up check (nst_utils.setup_check) and the one list of dependencies it reads:
pyproject.toml, which environment.yml must follow."""

import re
import sys
from importlib.metadata import PackageNotFoundError
from pathlib import Path

from packaging.requirements import Requirement

from nst_utils import setup_check
from nst_utils.setup_check import NOT_INSTALLED, check_install, requirements

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def declared(*groups: str) -> dict[str, str]:
    """PyPI name -> version specifier of pyproject's core list and the named extras."""
    texts = PROJECT["dependencies"] + [
        text for group in groups for text in PROJECT["optional-dependencies"][group]
    ]
    reqs = [Requirement(text) for text in texts]
    return {req.name.lower(): str(req.specifier) for req in reqs if req.name != PROJECT["name"]}


def test_check_install_reads_this_pyproject():
    found = {req.name.lower(): str(req.specifier) for req in requirements()}
    assert found == declared("notebook"), (
        "the installed metadata is not this pyproject.toml's: run  pip install -e .  again"
    )
    assert {req.name.lower() for req in requirements(extras=())} == set(declared())


def test_check_install_passes_in_the_test_environment(capsys):
    assert check_install() == []
    out = capsys.readouterr().out
    assert re.search(r"^\[OK\]   torch \d+\.\d+", out, re.MULTILINE), out
    assert out.count("[OK]") == len(declared("notebook")) and "All packages ready." in out


def test_old_or_missing_packages_fail_saying_what_to_do(monkeypatch, capsys):
    wanted = [Requirement("torch>=999"), Requirement("no-such-package>=1")]
    monkeypatch.setattr(setup_check, "requirements", lambda extras: wanted)
    assert check_install() == ["torch", "no-such-package"]
    out = capsys.readouterr().out
    assert re.search(r"^\[FAIL\] torch \S+ does not satisfy torch>=999; upgrade it\.$", out, re.M)
    assert "[FAIL] no-such-package: No module named 'no_such_package'. Run  pip install" in out
    assert out.endswith("Fix these first: ['torch', 'no-such-package']\n")


def test_without_the_installed_package_it_says_how_to_install(monkeypatch, capsys):
    def requires(name: str) -> None:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(setup_check, "requires", requires)
    assert check_install() == ["nst-course"]
    assert capsys.readouterr().out == NOT_INSTALLED + "\n"


def test_environment_yml_follows_pyproject():
    text = (ROOT / "environment.yml").read_text().split("\ndependencies:\n")[1]
    conda = dict(re.findall(r"^  - ([A-Za-z][\w.-]*)([<>=!~][^\s#]*)?\s*$", text, re.MULTILINE))
    assert conda.pop("python") == PROJECT["requires-python"]
    assert conda.pop("pip") == ""
    conda = {CONDA_NAMES.get(name, name): spec for name, spec in conda.items()}
    wanted = declared("notebook", "dev")
    wrong = {
        name: (spec, wanted.get(name)) for name, spec in conda.items() if wanted.get(name) != spec
    }
    assert not wrong, f"environment.yml differs from pyproject.toml (yml, pyproject): {wrong}"
    missing = set(declared()) - set(conda)
    assert not missing, f"environment.yml lacks core dependencies {sorted(missing)}"
    assert re.findall(r"^  - pip:\n((?:      - .*\n)+)", text, re.MULTILINE) == [
        '      - -e ".[dev]"\n'
    ]
