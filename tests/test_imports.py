"""No import cycle among jaxcnn's modules: the package's import graph, read from the source, is a DAG.

Every jaxcnn/**/*.py is parsed (not imported), and every import of a jaxcnn module is an edge,
function-level imports included: a cycle hidden inside a function still ties two modules together.
"""

import ast

from helpers import ROOT

PACKAGE = ROOT / "jaxcnn"


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path, modules: set[str]) -> set[str]:
    """The jaxcnn modules that `path` imports anywhere in its body (absolute or relative imports)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from ..data import y
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from jaxcnn import train` imports the module jaxcnn.train; `from jaxcnn.x import f`, jaxcnn.x.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # The longest jaxcnn module the name refers to (a.b.c -> a.b when c is a function).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != "jaxcnn":
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the jaxcnn modules it imports."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported_modules(p, modules) for p in paths}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph()
    assert {"jaxcnn.build", "jaxcnn.evaluate", "jaxcnn.checkpoint"} <= graph["jaxcnn.train"]
    assert "jaxcnn.build" in graph["jaxcnn.evaluate"]
    assert "jaxcnn.data.input" in graph["jaxcnn.evaluate"]  # `from jaxcnn.data import input as ...`
    assert "jaxcnn.train" in graph["jaxcnn.main"]  # imported inside main(): function level counts


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_jaxcnn_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_train_and_evaluate_do_not_import_each_other():
    graph = import_graph()
    assert "jaxcnn.models" not in graph["jaxcnn.registry"]  # the package imports the families
    assert "jaxcnn.train" not in graph["jaxcnn.evaluate"]
    assert "jaxcnn.train" not in graph["jaxcnn.build"] and "jaxcnn.evaluate" not in graph["jaxcnn.build"]
