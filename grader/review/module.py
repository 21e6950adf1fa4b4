"""One parsed module of the candidate's, and what the checks ask of its syntax tree: parents, scopes, bindings.

Everything here walks the tree with `ast.walk` (a queue), never by recursion: an expression nested deep
enough for Python to parse must not overflow our own stack.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from grader.review.tree import SourceFile

Scope = ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
_SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_UPPER = re.compile(r"_*[A-Z][A-Z0-9_]*")
_BINDERS = {
    ast.Assign, ast.AnnAssign, ast.NamedExpr, ast.AugAssign, ast.arg, ast.ExceptHandler, ast.For, ast.AsyncFor,
    ast.comprehension, ast.withitem, ast.Import, ast.ImportFrom,
}
_UNKNOWN = ast.Constant(value=...)
"""The value of a binding that is not an assignment (an argument, a loop variable): never a constant."""


@dataclass
class Module:
    """A parsed module: the file, its lines, its tree, each node's parent and each scope's bindings."""

    source: SourceFile
    tree: ast.Module
    lines: list[str]
    nodes: list[ast.AST] = field(default_factory=list)
    """Every node but operators and contexts, breadth first: the rules read this list, never walk the tree again."""
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    bindings: dict[tuple[int, str], list[ast.expr]] = field(default_factory=dict)
    imported: set[str] = field(default_factory=set)

    @property
    def path(self) -> str:
        return self.source.path

    @classmethod
    def parse(cls, source: SourceFile) -> Module | str:
        """The parsed module, or why it does not parse (one line); a MemoryError is the caller's to handle."""
        try:
            tree = ast.parse(source.text, filename=source.path)
        except SyntaxError as exc:
            return f"line {exc.lineno or 0}: {exc.msg}"
        except RecursionError:
            return "it is nested too deeply for Python's parser"
        except ValueError as exc:
            return str(exc)
        module = cls(source, tree, source.text.splitlines())
        module._index()
        return module

    def _index(self) -> None:
        nodes, parents = self.nodes, self.parents
        nodes.append(self.tree)
        index = 0
        while index < len(nodes):
            node = nodes[index]
            index += 1
            for name in node._fields:
                value = getattr(node, name, None)
                if isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST) and item._fields:
                            parents[item] = node
                            nodes.append(item)
                elif isinstance(value, ast.AST) and value._fields:
                    parents[value] = node
                    nodes.append(value)
        for node in nodes:
            if type(node) not in _BINDERS:
                continue
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value)
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                self._bind(node.target, node.value)
            elif isinstance(node, ast.AugAssign):
                self._bind(node.target, ast.BinOp(left=ast.Constant(value=""), op=node.op, right=node.value))
            elif isinstance(node, ast.arg | ast.ExceptHandler):
                for bound in _targets_of(node):
                    self._bind(bound, _UNKNOWN, self.scope_of(node))
            elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension | ast.withitem):
                for bound in _targets_of(node):
                    self._bind(bound, _UNKNOWN)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    self.imported.add(name)
                    self._bind(ast.Name(id=name, ctx=ast.Store()), _UNKNOWN, self.scope_of(node))

    def _bind(self, target: ast.AST, value: ast.expr, scope: Scope | None = None) -> None:
        if isinstance(target, ast.Name):
            key = (id(scope or self.scope_of(target)), target.id)
            self.bindings.setdefault(key, []).append(value)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._bind(element, _UNKNOWN, scope or self.scope_of(target))

    def scope_of(self, node: ast.AST) -> Scope:
        """The function, class or module whose names `node` binds or reads (a def's own name: the outer one)."""
        current = self.parents.get(node)
        while current is not None and not isinstance(current, _SCOPES):
            current = self.parents.get(current)
        return current if current is not None else self.tree  # type: ignore[return-value]

    def ancestors(self, node: ast.AST) -> list[ast.AST]:
        found: list[ast.AST] = []
        current = self.parents.get(node)
        while current is not None:
            found.append(current)
            current = self.parents.get(current)
        return found

    def values_of(self, name: str, at: ast.AST) -> list[ast.expr]:
        """What `name`, read at `at`, may be bound to: its own scope's assignments, else the module's."""
        scope = self.scope_of(at)
        local = self.bindings.get((id(scope), name))
        if local is not None:
            return local
        return self.bindings.get((id(self.tree), name), [])

    def is_module_level(self, node: ast.AST) -> bool:
        return self.scope_of(node) is self.tree

    def in_main_guard(self, node: ast.AST) -> bool:
        return any(isinstance(up, ast.If) and is_main_test(up.test) for up in self.ancestors(node))

    def in_function(self, node: ast.AST) -> bool:
        return any(isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) for up in self.ancestors(node))

    def in_condition(self, node: ast.AST) -> bool:
        """Under an `if` other than the main guard, or an `x if c else y`: the code decided when it applies."""
        return any(
            (isinstance(up, ast.If) and not is_main_test(up.test)) or isinstance(up, ast.IfExp)
            for up in self.ancestors(node)
        )

    def enclosing_names(self, node: ast.AST) -> list[str]:
        """The names of the classes and functions around `node`, innermost first."""
        return [
            up.name for up in self.ancestors(node) if isinstance(up, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        ]

    def is_constant(self, node: ast.AST, _seen: frozenset[str] = frozenset()) -> bool:
        """Known when the code is written: a literal, a module's UPPER_CASE constant, a name bound only to
        literals, `Model.__tablename__`; and anything built from those alone."""
        pending: list[ast.AST] = [node]
        while pending:
            current = pending.pop()
            if isinstance(current, ast.Constant):
                if current is _UNKNOWN:
                    return False
                continue
            if isinstance(current, ast.JoinedStr | ast.Tuple | ast.List | ast.BinOp | ast.FormattedValue):
                pending.extend(
                    child for child in ast.iter_child_nodes(current) if not isinstance(child, ast.operator | ast.expr_context)
                )
                continue
            if isinstance(current, ast.Attribute) and (current.attr == "__tablename__" or _UPPER.fullmatch(current.attr)):
                continue
            if isinstance(current, ast.Name) and self._constant_name(current, _seen):
                continue
            return False
        return True

    def _constant_name(self, name: ast.Name, seen: frozenset[str]) -> bool:
        if name.id in seen:
            return False
        values = self.values_of(name.id, name)
        if not values:
            return bool(_UPPER.fullmatch(name.id))
        if all(value is _UNKNOWN for value in values) and name.id in self.imported:
            return bool(_UPPER.fullmatch(name.id))
        return all(self.is_constant(value, seen | {name.id}) for value in values)

    def string_value(self, node: ast.AST) -> tuple[str, int] | None:
        """The text of a string literal, or of a name bound once to one, and the line it starts on."""
        if isinstance(node, ast.Name):
            values = self.values_of(node.id, node)
            node = values[0] if len(values) == 1 else node
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value, node.lineno
        return None


def dotted(node: ast.AST) -> str:
    """`os.environ.get` for that attribute chain; "" when it is not names and attributes only."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


def last_name(node: ast.AST) -> str:
    """The last part of a dotted name, or of the function a call calls: `app` for `current.app`."""
    if isinstance(node, ast.Call):
        node = node.func
    return dotted(node).rsplit(".", 1)[-1]


def line_of(node: ast.AST) -> int:
    return int(getattr(node, "lineno", 0))


def is_main_test(test: ast.expr) -> bool:
    """`__name__ == "__main__"`, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [side.id for side in sides if isinstance(side, ast.Name)]
    texts = [side.value for side in sides if isinstance(side, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"]


def is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _targets_of(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.arg):
        return [ast.Name(id=node.arg, ctx=ast.Store())]
    if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
        return [node.target]
    if isinstance(node, ast.withitem):
        return [node.optional_vars] if node.optional_vars is not None else []
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [ast.Name(id=node.name, ctx=ast.Store())]
    return []
