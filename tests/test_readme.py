"""The README is the operator's manual: what it says about settings, the policy file, the command line,
the JSON API and the attack table must be what the code does.

An operator configures, scripts and audits from the README alone. A setting documented with the wrong
default, a command option nobody can find, an API route the table leaves out or an attack that names a
test no longer there are all ways the manual stops being true without any other test noticing, so each
is checked here against the code itself (the settings dataclass, the click tree, the OpenAPI document the
app builds, the test files).
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import MISSING, fields
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest

from vault.api.openapi import build
from vault.cli import cli
from vault.config.policy_file import SECTIONS, GradeRule
from vault.config.settings import RANGES, TOOL_LOCATIONS, Settings, load_settings
from vault.services import demo, demo_content

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# A status code in a sentence: three digits, not part of a longer number, a version or a percentage.
STATUS = re.compile(r"(?<![\d.])([1-5]\d\d)(?![\d%])")


@pytest.fixture(params=["sqlite"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """The route list does not depend on the database: one backend is enough."""
    return str(request.param)


def section(title: str) -> str:
    """The text of the README's `## title` section, up to the next `## ` heading."""
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each Markdown table row of `text` (a `\\|` inside a cell does not split it)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


# --- configuration ----------------------------------------------------------------------------------------

def documented_settings() -> dict[str, str]:
    """`VAULT_*` name (lower case, without the prefix) → the default the table gives for it."""
    found: dict[str, str] = {}
    for cells in table_rows(section("Configuration")):
        names = re.findall(r"`VAULT_([A-Z0-9_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) if len(cells) > 1 else []
        for index, name in enumerate(names):
            # "`30`, `12`" gives each name of the row its own default; prose ("—") is one for all.
            found[name.lower()] = defaults[index] if len(defaults) == len(names) else cells[1]
    return found


def test_every_setting_is_documented_and_every_documented_one_exists():
    documented = set(documented_settings())
    policy = {"grades", "alerts", "working_hours", "departure", "records", "lookups", "rotation", "pool"}
    read = {f.name for f in fields(Settings) if f.name not in policy} | TOOL_LOCATIONS
    assert read - documented == set(), "settings the README's configuration table leaves out"
    assert documented - read == set(), "settings the README documents that the code does not read"
    for name in documented:
        # Every documented name is accepted at start-up (an unknown one stops it).
        value = {"storage": "local", "log_level": "INFO", "timezone": "UTC", "company_language": "en"}.get(name)
        if value is not None:
            load_settings(environ={f"VAULT_{name.upper()}": value})


def test_each_documented_default_is_the_codes_default():
    documented = documented_settings()
    checked = 0
    for item in fields(Settings):
        if item.name not in documented or item.default is MISSING:
            continue
        default = item.default
        if isinstance(default, bool):
            expected = "true" if default else "false"
        elif isinstance(default, int | str) and default != "":
            expected = str(default)
        elif isinstance(default, Path):
            expected = f"./{default}"
        else:
            continue  # no value: the table says in words what happens ("—", "generated into the data folder")
        assert documented[item.name] == expected, f"VAULT_{item.name.upper()}"
        checked += 1
    assert checked >= 25


def test_each_numeric_settings_range_is_in_its_row():
    """The table gives the range start-up enforces (vault.config.settings.RANGES) in the setting's row."""
    rows = {name.lower(): cells for cells in table_rows(section("Configuration"))
            for name in re.findall(r"`VAULT_([A-Z0-9_]+)`", cells[0])}
    for name, (low, high) in RANGES.items():
        assert f"{low}–{high}" in " ".join(rows[name]), f"VAULT_{name.upper()} should say {low}–{high}"


def readme_policy() -> dict[str, Any]:
    block = re.search(r"```toml\n(.*?)```", section("Configuration"), re.S)
    assert block is not None, "the configuration section shows a policy file"
    return tomllib.loads(block.group(1))


def test_the_policy_file_shown_is_valid_and_names_every_key():
    shown = readme_policy()
    settings = load_settings({"policy": shown}, environ={})  # a shown key that does not exist stops this
    in_force = settings.policy_sections()
    assert set(shown) == set(SECTIONS)
    for name in SECTIONS:
        if name == "grades":
            continue
        assert set(shown[name]) == set(in_force[name]), f"[{name}]"
    listed = re.search(r"\[grades\.3\]\s*# any of: (.*?)\n\[", section("Configuration"), re.S)
    assert listed is not None
    assert set(re.findall(r"[a-z_]+", listed.group(1))) == {f.name for f in fields(GradeRule)}


# --- command line -----------------------------------------------------------------------------------------

def cli_tree(command: click.Command, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """Every command's path → its options (both spellings of a flag pair; never --help)."""
    options = {opt for param in command.params if isinstance(param, click.Option)
               for opt in (*param.opts, *param.secondary_opts)}
    tree = {path: options}
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            tree.update(cli_tree(sub, (*path, name)))
    return tree


def documented_commands() -> dict[tuple[str, ...], set[str]]:
    """Each `vault …` written in the command-line section → the options written with it."""
    documented: dict[tuple[str, ...], set[str]] = {}
    for span in re.findall(r"`(vault [^`]*)`", section("Command line")):
        words = re.sub(r"[\[\]()]|\\\|", " ", span).split()[1:]
        command: click.Command = cli
        path: tuple[str, ...] = ()
        options: set[str] = set()
        for word in words:
            if word.startswith("--"):
                options.update(part for part in word.split("/") if part.startswith("--"))
            elif isinstance(command, click.Group) and word in command.commands:
                documented.setdefault(path, set()).update(options)  # `vault --operator NAME user …`
                options = set()
                command, path = command.commands[word], (*path, word)
        documented.setdefault(path, set()).update(options)
    return documented


def test_every_command_and_option_is_in_the_command_line_section():
    tree, documented = cli_tree(cli), documented_commands()
    for path, options in tree.items():
        is_group = bool([other for other in tree if other[:len(path)] == path and other != path])
        if is_group and not options:
            continue  # a group without options of its own is documented through its commands
        assert path in documented, f"`vault {' '.join(path)}` is not in the README"
        missing = options - documented[path]
        assert not missing, f"`vault {' '.join(path)}`: {sorted(missing)} not in the README"
    for path, options in documented.items():
        assert path in tree, f"the README documents `vault {' '.join(path)}`, which does not exist"
        assert options <= tree[path], f"`vault {' '.join(path)}`: {sorted(options - tree[path])} do not exist"


# --- JSON API ---------------------------------------------------------------------------------------------

def routes_of(cell: str) -> list[tuple[str, str]]:
    """(method, path with every parameter written `{}`) for each route a table cell names.

    A cell abbreviates: `POST …/resolve` or a bare `/release` continues the last full path of the cell up
    to its last parameter, a span without a method keeps the last method, and `approve\\|refuse` is two.
    """
    routes: list[tuple[str, str]] = []
    method, base = "", ""
    for span in re.findall(r"`([^`]*)`", cell):
        match = re.match(r"(GET|POST|PATCH|PUT|DELETE) (\S+)", span)
        if match:
            method, path = match.groups()
        elif span.startswith(("/", "…/")):
            path = span
        else:
            continue
        if path.startswith("{"):
            continue  # `{page_url …}`: the real path follows in parentheses
        path = path.split("?")[0].removeprefix("…")
        if path.startswith("/api/"):
            base = path[:path.rfind("}") + 1] or path
        else:
            path = base + path
        head, _, last = path.rpartition("/")
        for alternative in last.split("\\|"):
            routes.append((method, re.sub(r"\{[^}]*\}", "{}", f"{head}/{alternative}")))
    return routes


@cache
def literals() -> frozenset[str]:
    """Every string constant in vault/: a code the README names must be one of them."""
    found: set[str] = set()
    for source in (ROOT / "vault").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return frozenset(found)


def test_every_api_route_is_in_the_api_section_with_the_statuses_it_answers(app):
    document = build(app)
    served = {(method.upper(), re.sub(r"\{[^}]*\}", "{}", path)): set(operation["responses"])
              for path, item in document["paths"].items() for method, operation in item.items()}
    documented: set[tuple[str, str]] = set()
    for cells in table_rows(section("JSON API")):
        routes = routes_of(cells[0])
        documented.update(routes)
        said = " | ".join(cells[1:])
        for route in routes:
            assert route in served, f"the README documents {route}, which the API does not serve"
        if routes:
            answered = set().union(*(served[route] for route in routes))
            statuses = set(STATUS.findall(said))
            assert statuses <= answered, f"{routes}: the README gives {sorted(statuses - answered)}"
        for code in re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", said):
            assert code in literals(), f"{routes}: `{code}` appears nowhere in the code"
    assert set(served) - documented == set(), "routes the README's API table leaves out"


# --- attack table and test references ---------------------------------------------------------------------

@cache
def defined_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))


def test_every_test_the_readme_names_exists():
    """`tests/x/test_y.py::name`, `test_y.py::name` (a file name unique under tests/) and, later on the
    same line, `::name` of the file named last."""
    by_name: dict[str, list[Path]] = {}
    for found in (ROOT / "tests").rglob("test_*.py"):
        by_name.setdefault(found.name, []).append(found)
    reference = re.compile(r"((?:[A-Za-z0-9_]+/)*test_[A-Za-z0-9_]+\.py)?::([A-Za-z0-9_]+)"
                           r"|((?:[A-Za-z0-9_]+/)*test_[A-Za-z0-9_]+\.py)")
    files = names = 0
    for number, line in enumerate(README.splitlines(), 1):
        current: Path | None = None
        for match in reference.finditer(line):
            if written := match.group(1) or match.group(3):
                if written.startswith("tests/"):
                    candidates = [ROOT / written] if (ROOT / written).is_file() else []
                else:
                    candidates = [p for p in by_name.get(Path(written).name, []) if p.as_posix().endswith(written)]
                assert len(candidates) == 1, f"README line {number}: {written} names no single test file"
                current = candidates[0]
                files += 1
            if match.group(2):
                assert current is not None, f"README line {number}: ::{match.group(2)} follows no file"
                assert match.group(2) in defined_in(current), \
                    f"README line {number}: {current.relative_to(ROOT)}::{match.group(2)} does not exist"
                names += 1
    assert files > 50 and names > 100


# --- the demo ---------------------------------------------------------------------------------------------

def test_the_demo_is_the_size_the_run_table_says():
    row = next(cells for cells in table_rows(section("Run")) if cells[0] == "`make run`")
    people, customers, files = map(int, re.search(r"(\d+) people .*?, (\d+) customers, (\d+) files", row[1]).groups())
    assert (people, customers, files) == (len(demo.USERS), len(demo_content.CUSTOMERS), len(demo_content.files()))
