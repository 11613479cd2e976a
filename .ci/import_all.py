"""Import every module of the installed nst_utils wheel; fail if one is missing from it.

Usage: python import_all.py SOURCE_DIR   (SOURCE_DIR: the repository's nst_utils/ folder)
Run from outside the repository so that the installed copy, not the source tree, is found.
"""

import importlib
import sys
from pathlib import Path

source = Path(sys.argv[1])
import nst_utils  # noqa: E402

installed = Path(nst_utils.__file__).parent
if installed.resolve() == source.resolve():
    sys.exit(f"nst_utils was imported from the source tree {source}, not from the wheel")
names = sorted(
    ".".join(p.relative_to(source.parent).with_suffix("").parts)
    for p in source.rglob("*.py")
    if p.name != "__main__.py"
)
names = [n.removesuffix(".__init__") for n in names]
missing = [
    n
    for n in names
    if not (installed.parent / (n.replace(".", "/") + ".py")).exists()
    and not (installed.parent / n.replace(".", "/") / "__init__.py").exists()
]
if missing:
    sys.exit(f"modules missing from the wheel: {missing}")
for name in names:
    importlib.import_module(name)
print(f"imported {len(names)} modules from {installed}")
