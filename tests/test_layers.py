"""The package's layers, as its folders show them (data → models/losses → training → runs →
reports, recommend, tuning): no module imports one of a higher layer at import time, and the module-level
imports have no cycle. Function-level imports (a command line's error handling) are not counted."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "seqrec"
# layer of each top-level part of the package (lower imports nothing higher)
LAYERS = {
    "": 0,  # the package's __init__: importing any part of seqrec loads nothing above what it imports
    "errors": 0, "atomic": 0, "seeding": 0, "locks": 0, "resources": 0, "resolvers": 0, "devices": 0,
    "options": 0,  # checks options against constructor signatures: data, models, losses use it
    "data": 1,
    "models": 2, "losses": 2, "evaluation": 2,
    "training": 3,
    "runs": 4,  # one train.py run: its folder, resume, trackers, sweeps
    "config": 4,  # the schema reads the constructors of models, losses, trainer and trackers
    "runs.pipeline": 5, "runs.cli": 5,
    "report": 6, "recommend": 6, "tune": 6, "analysis": 6,
}  # fmt: skip


def _module_imports() -> dict[str, set[str]]:
    """Module name → the seqrec modules its module-level statements import."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqrec"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("seqrec")}
        out[name] = deps
    return out


def _part(module: str) -> str:
    """The most specific key of :data:`LAYERS` naming ``module`` (``seqrec.runs.pipeline`` →
    ``runs.pipeline``, ``seqrec.config.schema`` → ``config``), or "" for the package itself."""
    parts = module.split(".")[1:]
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return ".".join(parts[:end])
    return ""


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__init__", "__pycache__"}
    assert parts <= set(LAYERS), f"give these a layer: {sorted(parts - set(LAYERS))}"


def test_no_module_imports_a_higher_layer():
    wrong = [
        f"{module} (layer {LAYERS[_part(module)]}) imports {dep} (layer {LAYERS[_part(dep)]})"
        for module, deps in _module_imports().items()
        if _part(module) in LAYERS
        for dep in deps
        if _part(dep) in LAYERS and LAYERS[_part(dep)] > LAYERS[_part(module)]
    ]
    assert not wrong, "\n".join(wrong)


def test_module_level_imports_have_no_cycle():
    imports = _module_imports()

    def known(dep: str) -> str | None:  # `from seqrec.data.spec import X` is the module seqrec.data.spec
        while dep not in imports and "." in dep:
            dep = dep.rsplit(".", 1)[0]
        return dep if dep in imports else None

    graph = {m: {known(d) for d in deps} - {None, m} for m, deps in imports.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " → ".join(path[path.index(module) :] + [module]))
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_a_function_over_60_lines_says_why_on_the_line_above_it():
    long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if not lines[first - 2].strip().startswith("# long:"):
                    size = node.end_lineno - node.lineno + 1
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({size} lines)")
    assert not long, "split these, or give a one-line `# long: <reason>` above them:\n" + "\n".join(long)
