"""Where a module makes, routes and runs its Flask app, read from the syntax tree.

Names are matched the way Flask code is written (`app = Flask(__name__)`, `bp = Blueprint(...)`,
`@bp.get("/x")`, `app.run()`), with the usual names (`app`, `bp`, `*_bp`) recognised even when the object is
imported: a route decorator on an unusual name is missed rather than a `requests.get` counted.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from grader.review.module import Module, dotted, is_true, keyword, last_name

FLASK = {"Flask", "flask.Flask"}
BLUEPRINT = {"Blueprint", "flask.Blueprint", "APIBlueprint", "flask_smorest.Blueprint", "smorest.Blueprint"}
FACTORY_NAME = re.compile(r"(create|make|build|new)_?(flask_)?app(lication)?", re.IGNORECASE)
_ROUTER_NAME = re.compile(r"app|application|bp|blueprint|api|ns|.*_(bp|blueprint|api)|(bp|blueprint)_.*")
APP_NAME = re.compile(r"app|application|flask_app|.*_app")
_METHODS = {"get", "post", "put", "patch", "delete"}


@dataclass(frozen=True)
class Route:
    line: int
    node: ast.AST


@dataclass(frozen=True)
class Run:
    """An `app.run(...)` call: `where` is `import` (runs when the module is imported), `main` or `function`."""

    module: Module
    call: ast.Call
    where: str

    @property
    def debug(self) -> bool:
        return is_true(keyword(self.call, "debug"))


def calls(module: Module, names: set[str]) -> list[ast.Call]:
    return [node for node in module.nodes if isinstance(node, ast.Call) and dotted(node.func) in names]


def assigned_names(module: Module, call: ast.Call) -> list[str]:
    parent = module.parents.get(call)
    if isinstance(parent, ast.Assign) and parent.value is call:
        return [target.id for target in parent.targets if isinstance(target, ast.Name)]
    if isinstance(parent, ast.AnnAssign | ast.NamedExpr) and parent.value is call and isinstance(parent.target, ast.Name):
        return [parent.target.id]
    return []


def app_names(module: Module) -> set[str]:
    """Names of Flask apps in this module: made by Flask() or a factory, and the usual names."""
    names = {"app", "application"}
    for node in module.nodes:
        if isinstance(node, ast.Call) and (dotted(node.func) in FLASK or FACTORY_NAME.fullmatch(last_name(node))):
            names.update(assigned_names(module, node))
    return names


def router_names(module: Module) -> set[str]:
    names = app_names(module)
    for call in calls(module, BLUEPRINT):
        names.update(assigned_names(module, call))
    return names


def routes(module: Module) -> list[Route]:
    """Each URL rule the module declares: route decorators and add_url_rule / add_resource calls."""
    routers = router_names(module)
    found: list[Route] = []
    for node in module.nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute):
                    receiver = last_name(decorator.func.value)
                    method = decorator.func.attr
                    known = receiver in routers or bool(_ROUTER_NAME.fullmatch(receiver))
                    if (method == "route" and receiver != "self") or (method in _METHODS and known):
                        found.append(Route(decorator.lineno, decorator))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("add_url_rule", "add_resource"):
                found.append(Route(node.lineno, node))
    return sorted(found, key=lambda route: route.line)


def runs(module: Module) -> list[Run]:
    """The module's `app.run(...)` calls, and where each runs."""
    apps = app_names(module)
    found: list[Run] = []
    for node in module.nodes:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run"):
            continue
        receiver = node.func.value
        made_here = isinstance(receiver, ast.Call) and (
            dotted(receiver.func) in FLASK or bool(FACTORY_NAME.fullmatch(last_name(receiver)))
        )
        name = last_name(receiver) if isinstance(receiver, ast.Name | ast.Attribute) else ""
        if not made_here and not (name in apps or APP_NAME.fullmatch(name)):
            continue
        where = "main" if module.in_main_guard(node) else "function" if module.in_function(node) else "import"
        found.append(Run(module, node, where))
    return found


def module_targets(path: str) -> set[str]:
    """How a command may name this file: `app.py`, `src/app.py`, `python -m pkg.app` or `-m pkg`."""
    names = {path}
    parts = path.split("/")
    names.update("/".join(parts[index:]) for index in range(1, len(parts)))
    dotted_path = path.removesuffix(".py").replace("/", ".")
    names.add(dotted_path.removesuffix(".__main__"))
    names.add(dotted_path.removeprefix("src."))
    names.add(dotted_path.removeprefix("src.").removesuffix(".__main__"))
    return names
