"""docs/architecture.md against the code: every module is on the page under its folder and every
module the page names exists; the layers hold (the core imports neither the live half nor the
converters, the live half never imports the converters) and no modules import each other in a circle."""

from __future__ import annotations

import ast
import re

from expect import ROOT

GUIDE = (ROOT / "docs" / "architecture.md").read_text()
PACKAGES = ("converters", "edge", "edge/commands", "edge/demo", "edge/live", "edge/live/events", "edge/live/outputs")


def _modules(package: str) -> list[str]:
    return sorted(p.name for p in (ROOT / package).glob("*.py") if p.name != "__init__.py")


def _section(package: str) -> str:
    """The page's bullet for `package`: from "- `package/`" to the next bullet."""
    found = re.search(rf"^- `{re.escape(package)}/`(.*?)(?=^- `|\Z)", GUIDE, re.S | re.M)
    assert found, f"docs/architecture.md has no bullet for {package}/"
    return found.group(1)


def test_every_module_is_named_under_its_folder():
    for package in PACKAGES:
        section = _section(package)
        missing = [name for name in _modules(package) if f"`{name}`" not in section]
        assert not missing, f"{package}/ modules not on docs/architecture.md: {missing}"


def test_every_module_the_page_names_exists():
    named = set(re.findall(r"`([a-z_]+\.py)`", GUIDE))
    existing = {name for package in PACKAGES for name in _modules(package)}
    existing |= {p.name for p in ROOT.glob("tests/**/*.py")} | {p.name for p in ROOT.glob("benchmarks/*.py")}
    assert not named - existing, f"docs/architecture.md names modules that do not exist: {named - existing}"


def _imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file, lazy imports included;
    `from edge import cpu` imports edge.cpu, not the package)."""
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in [*ROOT.glob("edge/**/*.py"), *ROOT.glob("converters/*.py")]}
    graph = {}
    for module, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in paths else node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[module] = {i for i in found if i in paths and i != module}
    return graph


def test_the_layers_hold():
    for module, imported in _imports().items():
        if module.startswith("edge.") and not module.startswith("edge.live"):
            assert not {i for i in imported if i.startswith(("edge.live", "converters"))}, module
        if module.startswith("edge.live"):
            assert not {i for i in imported if i.startswith("converters")}, module


def test_no_import_circles():
    graph = _imports()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            assert state.get(target) != "open", "import circle: " + " -> ".join(path + [module, target])
            if target not in state:
                visit(target, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])

