"""The app's configuration as its code writes it: debug mode, the secret key, CSRF protection switched off.

Each rule reads one module (so an interrupted review keeps what the modules read so far found), and stays
quiet where the code decided otherwise: a test or development config, a branch on the environment.
"""

from __future__ import annotations

import ast
import re

from grader.review.findings import MAINTAINABILITY, ROBUSTNESS, SECURITY, Finding, finding
from grader.review.flaskapp import APP_NAME
from grader.review.module import Module, dotted, is_true, last_name, line_of

_DEV_CONTEXT = re.compile(r"dev|test|local|debug|example|sample", re.IGNORECASE)
_DEBUG = re.compile(r"debug", re.IGNORECASE)
_CSRF_SWITCH = re.compile(r"WTF_CSRF_ENABLED")
_SECRET_NAME = re.compile(r"(^|_)SECRET_KEY$", re.IGNORECASE)
_SECRET_VARIABLE = re.compile(r"SECRET", re.IGNORECASE)
_ENV_GET = {"os.environ.get", "environ.get", "os.getenv", "getenv", "os.environ.setdefault", "environ.setdefault"}
_RANDOM = re.compile(r"(os\.)?urandom|(secrets\.)?token_(hex|bytes|urlsafe)|(uuid\.)?uuid[14]|random\.\w+|randbytes")

DEBUG_WHY = ("Debug mode is on where the app is run: the Werkzeug debugger lets anyone who can reach an error page run "
             "Python on the server, and tracebacks show the code and settings. Keep it to local development (FLASK_DEBUG).")


def dev_context(module: Module, node: ast.AST) -> bool:
    """Inside a class or function named for development or tests, or in a module so named."""
    names = [*module.enclosing_names(node), module.path.rsplit("/", 1)[-1].removesuffix(".py")]
    return any(_DEV_CONTEXT.search(name) for name in names)


def debug_settings(module: Module) -> list[Finding]:
    """`grader:debug-mode` set in code: `app.debug = True`, `DEBUG = True`, `config["DEBUG"] = True`."""
    found: list[Finding] = []
    for node, value in _settings(module, _DEBUG, APP_NAME):
        if not is_true(value) or module.in_condition(node) or dev_context(module, node):
            continue
        guarded = module.in_main_guard(node)
        found.append(finding("grader:debug-mode", MAINTAINABILITY if guarded else SECURITY, module.path,
                             line_of(node), module.lines, DEBUG_WHY if not guarded else
                             "Debug mode is switched on when the module runs as a script: fine on a laptop, but take it "
                             "from FLASK_DEBUG so no one ships it."))
    return found


def _settings(module: Module, name: re.Pattern[str], owners: re.Pattern[str] | None = None) -> list[tuple[ast.AST, ast.expr]]:
    """(node, value) of each setting whose name matches: `NAME = v` (module or class), `x.name = v`,
    `x["NAME"] = v`, `f(NAME=v)`, `{"NAME": v}`, `x.setdefault("NAME", v)`; `owners` limits the `x` of `x.name`."""
    found: list[tuple[ast.AST, ast.expr]] = []
    for node in module.nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if _setting_target(module, target, name, owners):
                    found.append((node, node.value))
        elif isinstance(node, ast.Call):
            found += [(kw, kw.value) for kw in node.keywords if kw.arg and name.fullmatch(kw.arg) and kw.arg.isupper()]
            if isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault" and len(node.args) == 2:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and name.fullmatch(first.value):
                    found.append((node, node.args[1]))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                text = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else ""
                if key is not None and text.isupper() and name.fullmatch(text):
                    found.append((key, value))
    return found


def _setting_target(module: Module, target: ast.AST, name: re.Pattern[str], owners: re.Pattern[str] | None) -> bool:
    if isinstance(target, ast.Name):
        in_class = isinstance(module.scope_of(target), ast.ClassDef)
        return bool(name.fullmatch(target.id)) and target.id.isupper() and (in_class or module.is_module_level(target))
    if isinstance(target, ast.Attribute):
        owner = owners is None or bool(owners.fullmatch(last_name(target.value)))
        return owner and bool(name.fullmatch(target.attr)) and target.attr in (target.attr.lower(), target.attr.upper())
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        key = target.slice.value
        return isinstance(key, str) and key.isupper() and bool(name.fullmatch(key)) and last_name(target.value) == "config"
    return False


def hard_coded_secrets(module: Module) -> list[Finding]:
    """`grader:hard-coded-secret`: SECRET_KEY written in the code, a default for it, or random per process."""
    found: list[Finding] = []
    sites = [(node, value) for node, value in _settings(module, _SECRET_NAME) if not dev_context(module, node)]
    for node in module.nodes:
        if isinstance(node, ast.Call) and dotted(node.func) in _ENV_GET and _secret_variable(node):
            sites.append((node, node))
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and _secret_variable(node.values[0]):
            sites.append((node, node))
    for node, value in sites:
        kind, line = _secret_kind(module, value, line_of(node))
        if kind and not dev_context(module, node):
            found.append(finding("grader:hard-coded-secret", ROBUSTNESS if kind == "random" else SECURITY,
                                 module.path, line, module.lines, _SECRET_WHY[kind]))
    return found


_SECRET_WHY = {
    "literal": "SECRET_KEY is written in the code: anyone who can read the repository can sign session cookies and log in "
               "as any user. Read it from the environment and refuse to start without it.",
    "default": "SECRET_KEY falls back to a key written in the code when the environment has none: a deployment that forgets "
               "the variable runs, silently, with a key anyone can read here. Refuse to start without it instead.",
    "random": "SECRET_KEY is random per process: each Gunicorn worker and each restart signs sessions with its own key, so "
              "logins break across workers and restarts. Read one key from the environment.",
}


def _secret_variable(node: ast.AST) -> bool:
    """An environment read (`os.environ.get("SECRET_KEY", ...)`) of a variable named like a secret."""
    if not (isinstance(node, ast.Call) and dotted(node.func) in _ENV_GET and node.args):
        return False
    name = node.args[0]
    return isinstance(name, ast.Constant) and isinstance(name.value, str) and bool(_SECRET_VARIABLE.search(name.value))


def _secret_kind(module: Module, value: ast.AST, line: int, depth: int = 0) -> tuple[str, int]:
    """`literal`, `default` or `random` (and the line that shows it), or "" when the value is read properly."""
    if isinstance(value, ast.Name):
        bound = module.values_of(value.id, value)
        if len(bound) == 1 and hasattr(bound[0], "lineno") and depth < 4:
            kind, _ = _secret_kind(module, bound[0], bound[0].lineno, depth + 1)
            return kind, bound[0].lineno
        return "", line
    if _random(value) and not _env_read(value):
        return "random", line
    if isinstance(value, ast.Constant) and isinstance(value.value, str | bytes) and value.value:
        return "literal", line
    if isinstance(value, ast.Call) and _secret_variable(value):
        default = value.args[1] if len(value.args) > 1 else next((k.value for k in value.keywords if k.arg == "default"), None)
        return _fallback(module, default), line
    if isinstance(value, ast.Call) and dotted(value.func) in _ENV_GET and value.args:
        default = value.args[1] if len(value.args) > 1 else None
        return _fallback(module, default), line
    if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or) and _env_read(value.values[0]):
        return max((_fallback(module, fallback) for fallback in value.values[1:]), key=len), line
    return "", line


def _fallback(module: Module, default: ast.AST | None) -> str:
    if default is None:
        return ""
    if _random(default):
        return "random"
    if isinstance(default, ast.Name):
        text = module.string_value(default)
        return "default" if text and text[0] else ""
    return "default" if isinstance(default, ast.Constant) and isinstance(default.value, str | bytes) and default.value else ""


def _random(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and _RANDOM.fullmatch(dotted(n.func)) for n in ast.walk(node))


def _env_read(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Call) and dotted(n.func) in _ENV_GET)
        or (isinstance(n, ast.Subscript) and dotted(n.value).endswith("environ"))
        for n in ast.walk(node)
    )


def csrf_switched_off(module: Module) -> list[Finding]:
    """`grader:csrf-missing`: WTF_CSRF_ENABLED = False outside a test config, `@csrf.exempt` on a form view."""
    found: list[Finding] = []
    for node, value in _settings(module, _CSRF_SWITCH):
        switched_off = isinstance(value, ast.Constant) and value.value is False
        if switched_off and not dev_context(module, node) and not module.in_condition(node):
            found.append(finding("grader:csrf-missing", SECURITY, module.path, line_of(node), module.lines,
                                 "CSRF protection is switched off (WTF_CSRF_ENABLED = False) outside a test "
                                 "configuration: every form of the app accepts a forged cross-site POST."))
    for node in module.nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            exempt = _exempt_form_view(node)
            if exempt is not None:
                found.append(finding("grader:csrf-missing", SECURITY, module.path, exempt.lineno, module.lines,
                                     f"`{node.name}` reads a submitted form but is exempt from CSRF protection: another "
                                     "site can submit it in a logged-in user's name."))
    return found


def _exempt_form_view(func: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.expr | None:
    """The `@csrf.exempt` of a view that reads `request.form`, or None."""
    exempt = next((
        d for d in func.decorator_list if isinstance(d, ast.Attribute) and d.attr == "exempt" and "csrf" in dotted(d.value).lower()
    ), None)
    if exempt is None:
        return None
    reads_form = any(isinstance(n, ast.Attribute) and n.attr == "form" and dotted(n) == "request.form" for n in ast.walk(func))
    return exempt if reads_form else None
