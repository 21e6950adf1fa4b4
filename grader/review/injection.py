"""SQL and markup built from strings: the two ways a value from a request becomes code.

A string is only suspect when a part of it is not known when the code is written: an f-string over a table
name kept in a module constant (`f"SELECT * FROM {TABLE}"`) is not an injection, and a parameterised
`text("... WHERE id = :id"), {"id": x}` is the fix, not the fault. See `Module.is_constant` for what counts
as known.
"""

from __future__ import annotations

import ast
import re

from grader.review.findings import SECURITY, Finding, finding
from grader.review.module import Module, dotted, last_name
from grader.review.texts import Template

_EXECUTE = {"execute", "executemany", "executescript", "exec_driver_sql"}
_TEXT_OWNERS = {"sa", "sqlalchemy", "db", "sql", "sqlalchemy.sql"}
_SQL_WORDS = re.compile(r"\b(select|insert|update|delete|create|drop|alter|where|from|into|values|pragma|replace)\b", re.IGNORECASE)
_CLEANERS = {"render_template", "escape", "clean", "linkify"}
_ESCAPES = {"escape", "markupsafe.escape", "flask.escape", "html.escape", "Markup.escape", "markupsafe.Markup.escape"}


def sql_from_strings(module: Module) -> list[Finding]:
    """`grader:sql-from-strings`: a query passed to execute()/text() built with an f-string, %, format or +."""
    found: list[Finding] = []
    text_names = _text_names(module)
    for node in module.nodes:
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = dotted(node.func)
        sink = ""
        if isinstance(node.func, ast.Attribute) and node.func.attr in _EXECUTE:
            sink = f"{node.func.attr}()"
        elif name in text_names or (
            isinstance(node.func, ast.Attribute) and node.func.attr == "text" and dotted(node.func.value) in _TEXT_OWNERS
        ):
            sink = "text()"
        if not sink:
            continue
        built = _built_string(module, node.args[0], sql_required=sink != "text()")
        if built is None:
            continue
        how, line = built
        where = "" if line == node.lineno else f" (run by {sink} at line {node.lineno})"
        found.append(finding(
            "grader:sql-from-strings", SECURITY, module.path, line, module.lines,
            f"SQL built with {how} and passed to {sink}{where}: any part of it that comes from a user becomes part of "
            "the statement (SQL injection). Pass values as parameters, e.g. text(\"... WHERE id = :id\"), {\"id\": x}.",
        ))
    return found


def _text_names(module: Module) -> set[str]:
    """The names SQLAlchemy's text() is imported as in this module."""
    return {
        alias.asname or alias.name for node in module.nodes
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy")
        for alias in node.names if alias.name == "text"
    }


def _built_string(module: Module, node: ast.AST, sql_required: bool, depth: int = 0) -> tuple[str, int] | None:
    """How a string is built from values not known in advance (and its line), or None."""
    if isinstance(node, ast.Name) and depth < 3:
        for value in module.values_of(node.id, node):
            if hasattr(value, "lineno"):
                built = _built_string(module, value, sql_required, depth + 1)
                if built is not None:
                    return built
        return None
    how = ""
    if isinstance(node, ast.JoinedStr):
        how = "an f-string"
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
        how = "% formatting"
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        how = ".format()" if _is_str(node.func.value) else ""
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        how = "string concatenation"
    if not how or module.is_constant(_parts_of(node)):
        return None
    if not _has_string(node) or (sql_required and not _SQL_WORDS.search(_literal_text(node))):
        return None
    return how, getattr(node, "lineno", 0)


def _parts_of(node: ast.AST) -> ast.AST:
    """The values a string is built from, as one tuple the constant test can walk."""
    if isinstance(node, ast.Call):
        return ast.Tuple(elts=[node.func.value, *node.args, *(kw.value for kw in node.keywords)], ctx=ast.Load())  # type: ignore[attr-defined]
    return node


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _has_string(node: ast.AST) -> bool:
    return any(_is_str(n) or isinstance(n, ast.JoinedStr) for n in ast.walk(node))


def _literal_text(node: ast.AST) -> str:
    return " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def unsafe_markup(module: Module) -> list[Finding]:
    """`grader:unsafe-markup` in code: Markup() over a value not known in advance, and a template built from one."""
    found: list[Finding] = []
    for node in module.nodes:
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = last_name(node)
        argument = node.args[0]
        if name == "Markup" and not module.is_constant(argument) and not _escaped(module, argument) and not _rendered(argument):
            found.append(finding(
                "grader:unsafe-markup", SECURITY, module.path, node.lineno, module.lines,
                "Markup() marks this value as safe HTML, so Jinja prints it unescaped: if any part comes from a user, "
                "their script runs in other users' browsers (XSS). Escape the parts with markupsafe.escape first.",
            ))
        elif name == "render_template_string" and not module.is_constant(argument) and _dynamic_template(module, argument):
            found.append(finding(
                "grader:unsafe-markup", SECURITY, module.path, node.lineno, module.lines,
                "The template given to render_template_string() is built from values: if one comes from the request, "
                "its `{{ ... }}` runs on the server (server-side template injection, up to running commands). Keep "
                "the template constant and pass values as variables.",
            ))
    return found


def _escaped(module: Module, node: ast.AST) -> bool:
    """An f-string or concatenation whose every non-constant part is escaped."""
    if isinstance(node, ast.JoinedStr):
        parts = [value.value for value in node.values if isinstance(value, ast.FormattedValue)]
    elif isinstance(node, ast.BinOp):
        parts = [node.left, node.right]
    else:
        return isinstance(node, ast.Call) and dotted(node.func) in _ESCAPES
    return all(module.is_constant(part) or _escaped(module, part) for part in parts)


def _rendered(node: ast.AST) -> bool:
    """HTML made by something that escapes or cleans it: render_template(), escape(), bleach.clean()."""
    name = last_name(node) if isinstance(node, ast.Call) else ""
    return name in _CLEANERS or name.startswith(("sanitiz", "sanitis"))


def _dynamic_template(module: Module, node: ast.AST, depth: int = 0) -> bool:
    """Built with an f-string, % , format or +, or read from the request."""
    if isinstance(node, ast.Name):
        values = module.values_of(node.id, node) if depth < 3 else []
        return any(_dynamic_template(module, v, depth + 1) for v in values if hasattr(v, "lineno"))
    if isinstance(node, ast.JoinedStr | ast.BinOp) or (isinstance(node, ast.Call) and last_name(node) == "format"):
        return True
    return any(isinstance(n, ast.Name) and n.id == "request" for n in ast.walk(node))


def inline_templates(module: Module) -> list[Template]:
    """The constant templates passed to render_template_string, for the template rules (|safe, forms)."""
    found: list[Template] = []
    for node in module.nodes:
        if isinstance(node, ast.Call) and node.args and last_name(node) == "render_template_string":
            text = module.string_value(node.args[0])
            if text is not None:
                found.append(Template(module.path, text[0], text[1], tuple(module.lines)))
    return list({(t.line, t.text): t for t in found}.values())
