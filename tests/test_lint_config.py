"""`make lint` type-checks every domain's actions: the list mypy reads in pyproject.toml
names exactly the `tenants/*/actions.py` on disk, so a new domain cannot slip past it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_checks_every_domains_actions():
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    listed = {name for name in mypy["modules"] if name.startswith("villagelink.tenants.")}
    on_disk = {
        f"villagelink.tenants.{path.parent.name}.actions"
        for path in (ROOT / "tenants").glob("*/actions.py")
    }
    assert on_disk, "no tenants/*/actions.py found: the glob is wrong"
    assert listed == on_disk
