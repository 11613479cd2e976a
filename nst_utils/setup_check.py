"""Is this Python ready for the course? One line per package, ``[OK]`` or ``[FAIL]``.

The list of packages and their oldest versions comes from the installed package's own
metadata (``pyproject.toml``, the one list; ``environment.yml`` is checked against it by the
tests), so it cannot drift from what ``pip install`` asks for.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement
from packaging.version import Version

DISTRIBUTION = "nst-course"
IMPORT_NAMES = {"pillow": "PIL"}
NOT_INSTALLED = (
    f"[FAIL] {DISTRIBUTION} is not installed in this Python, so its list of packages is "
    'unknown. Run  pip install -e ".[dev]"  in the repository root.'
)


def requirements(extras: tuple[str, ...] = ("notebook",)) -> list[Requirement]:
    """The course's requirements: the core ones plus those of ``extras``.

    Raises ``PackageNotFoundError`` when the course is not installed (a clone on ``sys.path``).
    """
    out = []
    for text in requires(DISTRIBUTION) or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras):
            out.append(req)
    return out


def check_install(extras: tuple[str, ...] = ("notebook",), verbose: bool = True) -> list[str]:
    """Import every package the course needs and compare versions with the oldest allowed.

    Prints ``[OK] name version`` or ``[FAIL] name: what to do`` per package (when
    ``verbose``) and returns the names that failed (empty when all is well).
    """
    try:
        wanted = requirements(extras)
    except PackageNotFoundError:
        if verbose:
            print(NOT_INSTALLED)
        return [DISTRIBUTION]
    problems = []
    for req in wanted:
        module = IMPORT_NAMES.get(req.name.lower(), req.name.replace("-", "_"))
        try:
            import_module(module)
            found = version(req.name)
        except (ImportError, PackageNotFoundError) as err:
            problems.append(req.name)
            line = (
                f'[FAIL] {req.name}: {err}. Run  pip install -e ".[dev]"  in the repository root.'
            )
        else:
            if req.specifier and Version(found) not in req.specifier:
                problems.append(req.name)
                line = f"[FAIL] {req.name} {found} does not satisfy {req}; upgrade it."
            else:
                line = f"[OK]   {req.name} {found}"
        if verbose:
            print(line)
    if verbose:
        print("\nAll packages ready." if not problems else f"\nFix these first: {problems}")
    return problems
