"""The engine's layout as docs/architecture.md states it, checked on the source (no toolchain needed).

Imports flow one way (base -> sources/bpf -> rules -> flows -> report ->
cli), never in a cycle (the command table's module names count as
imports), never into a host (dnf, libdnf5, rpmlint); each rule
id that has a module of its own is spelled in that one module; no module
grows past 600 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "rpm_bpf"

# Lower layers never import higher ones. Within a layer, imports are free (but acyclic).
LAYERS = (
    ("rpm_bpf", "rpm_bpf.errors", "rpm_bpf.model"),
    ("rpm_bpf.rules.registry",),
    ("rpm_bpf.findings",),
    ("rpm_bpf.sources", "rpm_bpf.bpf"),
    ("rpm_bpf.rules",),
    ("rpm_bpf.flows",),
    ("rpm_bpf.report",),
    ("rpm_bpf.cli", "rpm_bpf.samples", "rpm_bpf.__main__"),
)


def _module(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = (-1, -1)  # (length of the longest matching prefix, layer)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), index)
    assert best[1] >= 0, module
    return best[1]


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function bodies and TYPE_CHECKING blocks too)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module(p): p for p in sorted(ENGINE.rglob("*.py"))}
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def _named_commands() -> set[str]:
    """The modules cli/main.py's command table names as strings: imports all the same."""
    from rpm_bpf.cli.main import COMMANDS

    return {f"rpm_bpf.cli.{where.partition(':')[0]}" for _, _, where in COMMANDS}


GRAPH["rpm_bpf.cli.main"] |= _named_commands()


def test_command_table_names_existing_modules():
    assert _named_commands() <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module):
    upward = sorted(i for i in GRAPH[module] if _layer(i) > _layer(module))
    assert upward == [], f"{module} (layer {_layer(module)}) imports from a higher layer: {upward}"


def test_no_import_cycle():
    seen: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> None:
        seen[module] = 1
        for target in sorted(GRAPH[module]):
            if seen.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(target) :], target]))
            if target not in seen:
                visit(target, [*stack, target])
        seen[module] = 2

    for module in sorted(GRAPH):
        if module not in seen:
            visit(module, [module])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_engine_imports_no_host(module):
    hosts = {"dnf", "libdnf5", "rpmlint"}
    assert {i.split(".")[0] for i in _imports(MODULES[module])} & hosts == set()


@pytest.mark.parametrize(
    ("rule", "home"),
    [
        ("bpf-name-conflict", "rpm_bpf.rules.clash"),
        ("bpfdir-unowned", "rpm_bpf.rules.ownership"),
        ("bpf-program-unpackaged", "rpm_bpf.rules.loaded"),
        ("bpf-object-writable", "rpm_bpf.rules.attributes"),
        ("bpf-object-not-root-owned", "rpm_bpf.rules.attributes"),
        ("bpf-object-executable", "rpm_bpf.rules.attributes"),
        ("bpf-object-config", "rpm_bpf.rules.attributes"),
        ("bpf-object-outside-bpfdir", "rpm_bpf.rules.placement"),
        ("bpf-object-exempt-location", "rpm_bpf.rules.placement"),
        ("bpf-object-missing", "rpm_bpf.rules.installed"),
        ("bpf-object-modified", "rpm_bpf.rules.installed"),
        ("bpf-object-attrs-changed", "rpm_bpf.rules.installed"),
        ("bpf-object-unowned", "rpm_bpf.rules.installed"),
        ("bpf-package-unreadable", "rpm_bpf.rules.unreadable"),
        ("bpf-app-dir-conflict", "rpm_bpf.rules.appdirs"),
        ("bpf-app-dir-file", "rpm_bpf.rules.appdirs"),
        ("bpf-app-dir-unnamed", "rpm_bpf.rules.appdirs"),
        ("bpf-cache-left-behind", "rpm_bpf.rules.appdirs"),
        ("bpf-cache-stale", "rpm_bpf.rules.appdirs"),
    ],
)
def test_rule_spelled_in_its_home_only(rule, home):
    spelled = sorted(m for m, p in MODULES.items() if f'"{rule}"' in p.read_text())
    assert spelled == [home]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_policy_applied_only_in_flows(module):
    text = MODULES[module].read_text()
    if ".apply(" in text and module != "rpm_bpf.rules.policy":
        assert module.startswith("rpm_bpf.flows."), f"{module} applies the policy"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    assert len(MODULES[module].read_text().splitlines()) <= 600
