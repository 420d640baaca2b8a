"""The import layers hold without tricks: no project import is hidden inside a function.

``lint-imports`` (make lint) checks the layers and cycles declared in
pyproject.toml, but it sees an import inside a function like any other, so an
import moved into a function to dodge a cycle would still be reported; this
test forbids the trick itself. Django's ``AppConfig.ready`` is the one place a
project module is imported late on purpose (signals and checks register there).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "ingestion", "processing", "api", "dataflow")


def _project_module(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return "." * node.level + (node.module or "")
        names = [node.module or ""]
    else:
        names = [alias.name for alias in node.names]
    return next((name for name in names if name.split(".")[0] in PACKAGES), None)


def _late_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []

    def visit(node: ast.AST, function: str | None, in_type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name, in_type_checking)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, function, True)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                module = _project_module(child)
                if module and function not in (None, "ready") and not in_type_checking:
                    found.append(f"{path.relative_to(root)}:{child.lineno} imports {module} inside {function}()")
            else:
                visit(child, function, in_type_checking)

    visit(tree, None, False)
    return found


def test_no_project_module_is_imported_inside_a_function() -> None:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    assert len(files) > 100
    late = [line for path in files for line in _late_imports(path)]
    assert late == []


def test_the_check_sees_a_late_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from core.context import client_ip_var\n\n"
        "class App:\n    def ready(self):\n        from . import checks\n\n"
        "def f():\n    from processing.services.runs import run_execute\n    import json\n    return run_execute\n"
    )
    assert _late_imports(sample, root=tmp_path) == ["sample.py:8 imports processing.services.runs inside f()"]
