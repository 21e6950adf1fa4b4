"""Passwords that a copied database gives away: hashed with a fast general-purpose hash, or kept as given.

`grader:weak-password-hash` has two halves. A fast hash over a password (`hashlib.sha256(password.encode())`)
shows in one module, so `weak_hashes` runs as each module is parsed. A password stored or compared as plain
text (`user.password = form.password.data`) needs the whole app: in a view it is the fault when `password` is
a column of a model, and the usual idiom when a model makes `password` a property whose setter hashes it
(Flasky's `@password.setter`), so `plain_passwords` first gathers what every model class says about its
attributes, and stays quiet about a name that any class routes through a property, a validator or a listener.

A password is a name or attribute so spelt (`password`, `passwd`, `pwd`, `passphrase`), or a request field so
keyed (`data["password"]`, `form.get("password")`); `password_hash`, `reset_password_token` and the like are not.
Only app code is read: tests and migrations never get this rule, and class bodies (a `password = db.Column(...)`
or a `PasswordField`) define fields rather than store values.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from grader.review.findings import SECURITY, Finding, finding
from grader.review.module import Module, dotted, keyword, last_name, line_of

RULE = "grader:weak-password-hash"
_PASSWORD = re.compile(r"password|passwd|pwd|passphrase", re.IGNORECASE)
_NOT_PASSWORD = re.compile(
    r"hash|digest|crypt|token|salt|reset|expir|(^|_)(at|on|date|time|version|count|attempts?|length|len|policy|min|max|rules?)(_|$)",
    re.IGNORECASE,
)
"""Names that mention a password but hold something else: its hash, a reset token, when it was changed."""
_HASHED = re.compile(r"hash|digest|crypt|hmac|sha\d|md5|argon|pbkdf|blake", re.IGNORECASE)
"""A stored value so named is a hash already (`user.password = hashed`), whatever the column is called."""
_STORED = {"password", "passwd", "pwd"}
_FAST = {
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
    "shake_128", "shake_256", "blake2b", "blake2s", "new",
}
"""hashlib's general-purpose hashes (`new` takes any of them by name); `pbkdf2_hmac` and `scrypt` are slow KDFs."""
_READERS = {"get", "pop", "getlist"}
_STRIPS = {"strip", "lstrip", "rstrip"}
_STRING_METHODS = {"encode", "decode", "strip", "lstrip", "rstrip", "lower", "upper", "format", "join", "replace"}
_COLUMNS = {"Column", "mapped_column", "column_property"}
_PROPERTIES = {"property", "hybrid_property", "cached_property", "synonym"}
_MODEL_BASES = {"Model", "Base", "DeclarativeBase", "SQLModel", "Document"}
_USER_CLASS = re.compile(r"user|account|member|customer|admin|person|profile", re.IGNORECASE)
_NOT_MODEL = re.compile(r"form|config|settings|schema|serializer|args|options|credential|client|mail|smtp", re.IGNORECASE)
"""Owners whose password is a form field, a setting or a credential for another service, not a user's."""

FAST_WHY = ("A fast hash ({fn}) is applied to a password: whoever copies the database can try billions of guesses a "
            "second against each hash, even salted, and unsalted it gives equal hashes for equal passwords (and falls to "
            "precomputed tables). Use werkzeug's generate_password_hash (scrypt or pbkdf2), argon2 or bcrypt.")
PLAIN_WHY = ("The password is {how}: the database then holds the passwords themselves, so whoever copies it can log in as "
             "every user (and, as people reuse passwords, elsewhere). Store generate_password_hash(password) and check "
             "it with check_password_hash.")


# --- fast hashes, one module at a time ----------------------------------------------------------------------


def weak_hashes(module: Module) -> list[Finding]:
    """A hashlib md5/sha*/blake2 (or `hashlib.new`) over a password: its first argument or a later `.update()`."""
    modules, functions = _hashlib_names(module)
    found: dict[int, Finding] = {}
    for node in module.nodes:
        if not isinstance(node, ast.Call):
            continue
        fn = _fast_hash(module, node, modules, functions)
        value = _hashed_value(node, fn) if fn else None
        if value is None and isinstance(node.func, ast.Attribute) and node.func.attr == "update" and node.args:
            fn = _hasher_of(module, node.func.value, modules, functions)
            value = node.args[0] if fn else None
        if value is not None and node.lineno not in found and mentions_password(module, value):
            found[node.lineno] = finding(RULE, SECURITY, module.path, node.lineno, module.lines, FAST_WHY.format(fn=fn))
    return list(found.values())


def _hashlib_names(module: Module) -> tuple[set[str], dict[str, str]]:
    """The names hashlib is imported as, and its hash functions imported by name (local name -> hashlib's)."""
    modules, functions = {"hashlib"}, {}
    for node in module.nodes:
        if isinstance(node, ast.Import):
            modules.update(alias.asname or alias.name for alias in node.names if alias.name == "hashlib")
        elif isinstance(node, ast.ImportFrom) and node.module == "hashlib" and not node.level:
            functions.update({alias.asname or alias.name: alias.name for alias in node.names if alias.name in _FAST})
    return modules, functions


def _fast_hash(module: Module, call: ast.Call, modules: set[str], functions: dict[str, str]) -> str:
    """How the message names the fast hash `call` makes (`hashlib.sha256`, `hashlib.new('md5')`), or ""."""
    name = dotted(call.func)
    head, _, tail = name.rpartition(".")
    fn = tail if head in modules and tail in _FAST else functions.get(name, "")
    if fn != "new":
        return f"hashlib.{fn}" if fn else ""
    algorithm = module.string_value(call.args[0]) if call.args else None
    return f"hashlib.new({algorithm[0]!r})" if algorithm else "hashlib.new"


def _hashed_value(call: ast.Call, fn: str) -> ast.expr | None:
    if fn.startswith("hashlib.new"):
        return call.args[1] if len(call.args) > 1 else keyword(call, "data")
    return call.args[0] if call.args else keyword(call, "data") or keyword(call, "string")


def _hasher_of(module: Module, receiver: ast.expr, modules: set[str], functions: dict[str, str]) -> str:
    """The fast hash the receiver of an `.update()` is: `hashlib.sha256()` itself, or a name bound to one."""
    if isinstance(receiver, ast.Call):
        return _fast_hash(module, receiver, modules, functions)
    if not isinstance(receiver, ast.Name):
        return ""
    for value in module.values_of(receiver.id, receiver):
        if isinstance(value, ast.Call) and hasattr(value, "lineno"):
            fn = _fast_hash(module, value, modules, functions)
            if fn:
                return fn
    return ""


def password_name(name: str) -> bool:
    """`password`, `new_pwd`, `form.passphrase`: a name for a password, not for its hash or its reset token."""
    return bool(_PASSWORD.search(name)) and not _NOT_PASSWORD.search(name)


def mentions_password(module: Module, node: ast.AST, depth: int = 0, seen: set[int] | None = None) -> bool:
    """A password name, attribute or request field anywhere in `node`, or in what a name in it is bound to
    (an expression built from strings, not the answer of a call: `user = authenticate(name, password)` is a user).

    Each binding is read once (`seen`), so names bound to names bound to names cost no more than the code is long."""
    seen = set() if seen is None else seen
    for part in ast.walk(node):
        if isinstance(part, ast.Name):
            if password_name(part.id):
                return True
            if depth >= 3:
                continue
            for value in module.values_of(part.id, part):
                if id(value) in seen or not hasattr(value, "lineno") or not _built_from_strings(value):
                    continue
                seen.add(id(value))
                if mentions_password(module, value, depth + 1, seen):
                    return True
        elif isinstance(part, ast.Attribute) and password_name(part.attr):
            return True
        elif _field_key(part, password_name):
            return True
    return False


def _built_from_strings(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        func = node.func
        return (isinstance(func, ast.Attribute) and func.attr in _STRING_METHODS) or dotted(func) in ("str", "bytes")
    return not isinstance(node, ast.Lambda | ast.Await | ast.Yield | ast.YieldFrom)


def _field_key(node: ast.AST, test: Callable[[str], object]) -> bool:
    """`x["password"]` or `x.get("password")`, the key passing `test`."""
    key: ast.AST | None = None
    if isinstance(node, ast.Subscript):
        key = node.slice
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _READERS and node.args:
        key = node.args[0]
    return isinstance(key, ast.Constant) and isinstance(key.value, str) and bool(test(key.value))


# --- passwords stored or compared as given, over the whole app ----------------------------------------------


@dataclass
class _Class:
    """What one class body says about its attributes."""

    name: str
    model: bool = False
    columns: set[str] = field(default_factory=set)
    guarded: set[str] = field(default_factory=set)
    """Attributes whose assignment runs code: a property or hybrid setter, a synonym, `@validates`."""
    custom_init: bool = False


@dataclass
class _Models:
    classes: dict[int, _Class] = field(default_factory=dict)
    """Keyed by the id of the ClassDef."""
    by_name: dict[str, list[_Class]] = field(default_factory=dict)
    columns: set[str] = field(default_factory=set)
    guarded: set[str] = field(default_factory=set)


def plain_passwords(modules: list[Module]) -> list[Finding]:
    """`self.password = password`, `user.password = data["password"]`, `User(password=password)` on a model whose
    `password` is a column, and `user.password == password`: a password kept, or checked, as plain text."""
    models = _models(modules)
    found: list[Finding] = []
    for module in modules:
        lines: set[int] = set()
        for node, how in _plain_sites(module, models):
            line = line_of(node)
            if line not in lines:
                lines.add(line)
                found.append(finding(RULE, SECURITY, module.path, line, module.lines, PLAIN_WHY.format(how=how)))
    return found


def _plain_sites(module: Module, models: _Models) -> list[tuple[ast.AST, str]]:
    sites: list[tuple[ast.AST, str]] = []
    for node in module.nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_stored_attribute(module, t, models) for t in targets) and _as_given(module, node.value):
                if module.in_function(node):
                    sites.append((node, "stored as given"))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            left, right = node.left, node.comparators[0]
            for stored, other in ((left, right), (right, left)):
                if _stored_attribute(module, stored, models) and _as_given(module, other) and module.in_function(node):
                    sites.append((node, "compared as plain text"))
                    break
        elif isinstance(node, ast.Call) and any(kw.arg in _STORED for kw in node.keywords):
            classes = models.by_name.get(last_name(node.func), [])
            for kw in node.keywords:
                if kw.arg in _STORED and _column_of_all(classes, kw.arg, models) and _as_given(module, kw.value):
                    if module.in_function(node):
                        sites.append((kw, "stored as given"))
    return sites


def _stored_attribute(module: Module, node: ast.AST, models: _Models) -> bool:
    """`self.password` in a model (or a plain user class), `user.password` where some model maps `password`."""
    if not (isinstance(node, ast.Attribute) and node.attr in _STORED) or node.attr in models.guarded:
        return False
    owner = node.value
    if isinstance(owner, ast.Name) and owner.id == "self":
        around = next((up for up in module.ancestors(node) if isinstance(up, ast.ClassDef)), None)
        facts = models.classes.get(id(around)) if around is not None else None
        if facts is None or _NOT_MODEL.search(facts.name):
            return False
        return node.attr in models.columns if facts.model else bool(_USER_CLASS.search(facts.name))
    name = last_name(owner)
    return bool(name) and not _NOT_MODEL.search(name) and node.attr in models.columns


def _column_of_all(classes: list[_Class], name: str, models: _Models) -> bool:
    """Every class so named is a model mapping `name` as a plain column, with the constructor SQLAlchemy gives it."""
    return bool(classes) and name not in models.guarded and all(
        c.model and name in c.columns and not c.custom_init for c in classes
    )


def _as_given(module: Module, value: ast.expr, depth: int = 0) -> bool:
    """A value not made by a call: a name (bound to no call's answer), an attribute, a subscript, `x.get("password")`."""
    if depth > 3:
        return False
    if isinstance(value, ast.Name):
        if _HASHED.search(value.id):
            return False
        bound = [v for v in module.values_of(value.id, value) if hasattr(v, "lineno")]
        return all(_as_given(module, v, depth + 1) for v in bound)
    if isinstance(value, ast.Attribute):
        return not _HASHED.search(value.attr) and not _HASHED.search(dotted(value))
    if isinstance(value, ast.Subscript):
        return not _field_key(value, _HASHED.search) and not _HASHED.search(dotted(value.value))
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        if value.func.attr in _STRIPS:
            return _as_given(module, value.func.value, depth + 1)
        return value.func.attr in _READERS and bool(value.args) and not _field_key(value, _HASHED.search)
    if isinstance(value, ast.Call) and dotted(value.func) == "str" and len(value.args) == 1:
        return _as_given(module, value.args[0], depth + 1)
    return False


def _models(modules: list[Module]) -> _Models:
    models = _Models()
    for module in modules:
        for node in module.nodes:
            if isinstance(node, ast.ClassDef):
                facts = _class_facts(node)
                models.classes[id(node)] = facts
                models.by_name.setdefault(node.name, []).append(facts)
                models.guarded |= facts.guarded
                if facts.model:
                    models.columns |= facts.columns
            elif isinstance(node, ast.Call) and last_name(node.func) == "listens_for":
                # event.listens_for(User.password, "set", retval=True): a listener that may hash the value
                models.guarded.update(a.attr for a in node.args if isinstance(a, ast.Attribute))
    return models


def _class_facts(node: ast.ClassDef) -> _Class:
    facts = _Class(node.name)
    facts.model = any(last_name(base) in _MODEL_BASES for base in node.bases)
    for item in node.body:
        if isinstance(item, ast.Assign | ast.AnnAssign):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            maker = last_name(item.value) if isinstance(item.value, ast.Call) else ""
            if "__tablename__" in names or "__table__" in names:
                facts.model = True
            if maker in _COLUMNS or (isinstance(item, ast.AnnAssign) and _mapped(item.annotation)):
                facts.columns.update(names)
            elif maker in _PROPERTIES:
                facts.guarded.update(names)
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            facts.custom_init |= item.name in ("__init__", "__setattr__")
            if item.name == "__setattr__":
                facts.guarded.update(_STORED)
            for decorator in item.decorator_list:
                _guard(facts, item, decorator)
    if facts.columns and not _NOT_MODEL.search(node.name):
        facts.model = True
    return facts


def _mapped(annotation: ast.expr) -> bool:
    """`Mapped[str]`, `so.Mapped[str]` or the same quoted: a mapped column's annotation (walked, never unparsed:
    an annotation may be nested deeper than a recursive walk survives)."""
    return any(
        (isinstance(n, ast.Name) and n.id == "Mapped") or (isinstance(n, ast.Attribute) and n.attr == "Mapped")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("Mapped["))
        for n in ast.walk(annotation)
    )


def _guard(facts: _Class, func: ast.FunctionDef | ast.AsyncFunctionDef, decorator: ast.expr) -> None:
    """A property (its setter: `@password.setter`, `@password.inplace.setter`) or `@validates("password")`."""
    if isinstance(decorator, ast.Call):
        if last_name(decorator.func) == "validates":
            facts.guarded.update(a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
        return
    name = dotted(decorator)
    if last_name(decorator) in _PROPERTIES:
        facts.guarded.add(func.name)
    elif "." in name and name.rsplit(".", 1)[-1] in ("setter", "expression", "deleter"):
        facts.guarded.add(name.split(".", 1)[0])
