"""Our own rules over the whole app: what no linter knows about a Flask app, each with why it matters.

Every rule is conservative: it reports what the code plainly shows, at the line that shows it. These need
every module (the factory, the routes, how the app is run, the forms); the rules that read one module at a
time are in `configuration.py` (debug, the secret key, CSRF switched off), `injection.py` (SQL, markup) and
`passwords.py` (fast hashes over passwords; its half on passwords kept as given reads every model).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from grader.review import flaskapp
from grader.review.configuration import DEBUG_WHY
from grader.review.findings import CORRECTNESS, MAINTAINABILITY, ROBUSTNESS, SECURITY, Finding, finding
from grader.review.module import Module, dotted
from grader.review.texts import CSRF_MENTION, Command, Template, post_forms

ROUTES_MODULE_LINES = 200
MIN_ROUTES_FOR_BLUEPRINTS = 5
"""An app with a handful of routes does not need blueprints; flask-notes has fifteen."""
_SAME_SITE = re.compile(r"SAMESITE[\"']?\s*[=:,]\s*[\"'](Lax|Strict)", re.IGNORECASE)


@dataclass
class Project:
    """The parsed app code (tests and migrations apart), its templates and the commands that run it."""

    modules: list[Module]
    migrations: list[Module] = field(default_factory=list)
    templates: list[Template] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    debug_settings: list[tuple[str, int]] = field(default_factory=list)
    production_server: bool = False
    text_lines: dict[str, list[str]] = field(default_factory=dict)


def app_factory(project: Project) -> list[Finding]:
    """`grader:no-app-factory`: the app is made at import time, or the "factory" hands back that global app."""
    real, fake, globals_made = False, [], []
    module_flask = {m.path: _module_level_apps(m) for m in project.modules}
    every_global = {name for names in module_flask.values() for name in names}
    for module in project.modules:
        globals_made += [(module, call) for call in flaskapp.calls(module, flaskapp.FLASK) if module.is_module_level(call)]
        for node in module.nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                kind = _factory_kind(module, node, module_flask[module.path], every_global)
                real = real or kind == "real"
                if kind == "fake":
                    fake.append((module, node))
    if real:
        return []
    why = ("Flask's documented pattern is a create_app() that builds and returns a new app, so each test gets a fresh "
           "app with its own config and extensions are bound with init_app")
    if fake:
        module, node = fake[0]
        return [finding("grader:no-app-factory", MAINTAINABILITY, module.path, node.lineno, module.lines,
                        f"`{node.name}()` returns the app created at import time, not a new one: every call gets the same "
                        f"app and configuration, so the factory is only a name. {why}.")]
    if globals_made:
        module, call = globals_made[0]
        return [finding("grader:no-app-factory", MAINTAINABILITY, module.path, call.lineno, module.lines,
                        f"No application factory: the app is created when this module is imported. {why}; one global app "
                        "makes every test share one app and one configuration.")]
    return []


def _module_level_apps(module: Module) -> set[str]:
    return {
        name for call in flaskapp.calls(module, flaskapp.FLASK) if module.is_module_level(call)
        for name in flaskapp.assigned_names(module, call)
    }


def _factory_kind(module: Module, func: ast.FunctionDef | ast.AsyncFunctionDef, own: set[str], every: set[str]) -> str:
    """`real` (makes and returns an app), `fake` (hands back a global one) or "" (not a factory)."""
    body = [node for node in ast.walk(func) if node is not func]
    creates = any(isinstance(node, ast.Call) and dotted(node.func) in flaskapp.FLASK for node in body)
    local = {arg.arg for arg in ast.walk(func.args) if isinstance(arg, ast.arg)} | {
        target.id for node in body if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and module.scope_of(target) is func
    }
    returned = [node.value for node in body if isinstance(node, ast.Return) and node.value is not None]
    returns_global = any(
        isinstance(value, ast.Name) and value.id not in local
        and (value.id in own or (value.id in module.imported and value.id in every))
        for value in returned
    )
    named = bool(flaskapp.FACTORY_NAME.fullmatch(func.name))
    uses_global = named and not creates and any(
        isinstance(node, ast.Name) and node.id in own and node.id not in local for node in body
    )
    if creates and returned and not returns_global:
        return "real"
    if returns_global or uses_global:
        return "fake"
    return "real" if named and returned else ""


def route_layout(project: Project) -> tuple[list[Finding], int, int]:
    """`grader:routes-in-one-module`, and the counts of routes and blueprints for the metrics."""
    per_module = {m.path: (m, flaskapp.routes(m)) for m in project.modules}
    with_routes = [(m, found) for m, found in per_module.values() if found]
    total = sum(len(found) for _, found in with_routes)
    blueprints = sum(len(flaskapp.calls(m, flaskapp.BLUEPRINT)) for m in project.modules)
    if not with_routes:
        return [], 0, blueprints
    module, found = max(with_routes, key=lambda item: len(item[1]))
    one_big = len(with_routes) == 1 and len(module.lines) > ROUTES_MODULE_LINES
    no_blueprint = blueprints == 0 and total >= MIN_ROUTES_FOR_BLUEPRINTS
    if not (one_big or no_blueprint):
        return [], total, blueprints
    parts = []
    if one_big:
        parts.append(f"all {total} routes are in {module.path} ({len(module.lines)} lines)")
    if no_blueprint:
        parts.append(f"no Blueprint groups the {total} routes")
    joined = "; ".join(parts)
    message = (joined[0].upper() + joined[1:] + ": every change to any endpoint lands in the same place, and a reviewer "
               "cannot see the app's parts. Blueprints per area (api, pages, auth) registered in create_app() keep "
               "each part small and testable on its own.")
    layout = finding("grader:routes-in-one-module", MAINTAINABILITY, module.path, found[0].line, module.lines, message)
    return [layout], total, blueprints


def development_server(project: Project) -> list[Finding]:
    """`grader:development-server` and the `debug=True` of app.run (`grader:debug-mode`)."""
    found: list[Finding] = []
    runs = [run for module in project.modules for run in flaskapp.runs(module)]
    scripts = {target: run for run in runs if run.where != "import" for target in flaskapp.module_targets(run.module.path)}
    deployed_scripts = set()
    for run in runs:
        if run.where == "import":
            found.append(finding("grader:development-server", CORRECTNESS, run.module.path, run.call.lineno, run.module.lines,
                                 "`app.run()` runs when this module is imported: `gunicorn wsgi:app` or `flask --app` "
                                 "loading it start Flask's development server instead and never return. Put it under "
                                 "`if __name__ == \"__main__\":`."))
    for command in project.commands:
        lines = project.text_lines.get(command.path, [])
        script = scripts.get(command.target) if command.kind != "flask-run" else None
        if command.kind != "flask-run" and script is None:
            continue
        if command.deployed:
            what = "`flask run`" if script is None else f"`{command.target}`, which calls app.run() (line {script.call.lineno})"
            found.append(finding("grader:development-server", ROBUSTNESS, command.path, command.line, lines,
                                 f"The app is started with {what}: Flask's development server, one process, not "
                                 "hardened, and documented as not for deployment. Serve it with Gunicorn (or Waitress)."))
        if script is not None and (command.deployed or not project.production_server):
            deployed_scripts.add(script.module.path)
        if command.debug and command.deployed:
            found.append(finding("grader:debug-mode", SECURITY, command.path, command.line, lines, DEBUG_WHY))
    found += _readme_dev_server(project, scripts)
    for run in runs:
        if run.debug:
            serious = run.where == "import" or run.module.path in deployed_scripts
            found.append(finding("grader:debug-mode", SECURITY if serious else MAINTAINABILITY, run.module.path,
                                 run.call.lineno, run.module.lines,
                                 DEBUG_WHY if serious else "`debug=True` is written into app.run(): whoever starts the app "
                                 "as a script gets the Werkzeug debugger, which runs any Python sent from the browser. "
                                 "Only `python` runs this line (Gunicorn does not), but take it from FLASK_DEBUG instead."))
    for path, line in project.debug_settings:
        found.append(finding("grader:debug-mode", SECURITY, path, line, project.text_lines.get(path, []), DEBUG_WHY))
    return found


def _readme_dev_server(project: Project, scripts: dict[str, flaskapp.Run]) -> list[Finding]:
    """The README's only way to run the app is the development server (and nothing names a production one)."""
    if project.production_server or any(c.deployed and (c.kind == "flask-run" or c.target in scripts) for c in project.commands):
        return []
    for command in project.commands:
        if not command.deployed and command.path.lower().startswith("readme") and (
            command.kind == "flask-run" or command.target in scripts
        ):
            return [finding("grader:development-server", MAINTAINABILITY, command.path, command.line,
                            project.text_lines.get(command.path, []),
                            "The README's way to run the app is Flask's development server, and nothing in the "
                            "repository names a production server (Gunicorn, Waitress): the candidate may not know "
                            "the difference.")]
    return []


def csrf_forms(project: Project) -> list[Finding]:
    """`grader:csrf-missing`: POST forms and nothing in the code or the templates that protects them."""
    found: list[Finding] = []
    mentioned = any(CSRF_MENTION.search(m.source.text) for m in project.modules) or any(
        CSRF_MENTION.search(t.text) for t in project.templates
    )
    forms = sorted(((t, line) for t in project.templates for line in post_forms(t)), key=lambda item: (item[0].path, item[1]))
    if forms and not mentioned:
        template, line = forms[0]
        same_site = any(_SAME_SITE.search(m.source.text) for m in project.modules)
        found.append(finding(
            "grader:csrf-missing", SECURITY, template.path, line, template.source_lines(),
            f"{len(forms)} HTML form(s) send POST and nothing protects them from cross-site request forgery (no "
            "CSRFProtect, FlaskForm or csrf_token): another site can make a logged-in user's browser submit them. "
            + ("SameSite cookies blunt this in current browsers, but not in every client. " if same_site else "")
            + "Flask-WTF's CSRFProtect adds the check.",
        ))
    return found
