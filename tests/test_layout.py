"""The layout of docs/design.md: code folders map into `villagelink` without shadowing
the standard library's `platform` or graphql-core's `graphql`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_FOLDERS = ("platform", "tenants", "graphql", "jobs", "storage")


def test_code_folders_have_no_top_level_init():
    for folder in CODE_FOLDERS:
        assert (ROOT / folder).is_dir(), folder
        assert not (ROOT / folder / "__init__.py").exists(), f"{folder}/__init__.py shadows"


def test_imports_from_the_repository_root():
    probe = (
        "import platform, graphql, sysconfig, os\n"
        "stdlib = sysconfig.get_paths()['stdlib']\n"
        "assert os.path.dirname(platform.__file__) == stdlib, platform.__file__\n"
        "assert hasattr(platform, 'python_version')\n"
        "assert hasattr(graphql, 'graphql_sync') and 'site-packages' in graphql.__file__\n"
        "import villagelink.platform.app, villagelink.graphql.gateway, villagelink.tenants.models\n"
        "here = os.path.join(os.getcwd(), 'platform')\n"
        "assert villagelink.platform.app.__file__.startswith(here)\n"
        "print('ok')\n"
    )
    # `-c` puts the current directory first on sys.path: the case that would shadow.
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_code_package_is_declared_in_setup_cfg():
    """A subpackage missing from setup.cfg would be absent from a wheel install."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = set(config["options"]["packages"].split())
    found = set()
    for folder in CODE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            package = path.parent.relative_to(ROOT).parts
            if "__pycache__" not in package:
                found.add("villagelink." + ".".join(package))
    assert found <= declared, found - declared
