"""Read the student's cells (never run them) and flag what a human should look at.

Three kinds of flag, none of which changes a score (verdicts are judged outside the kernel,
see ``grading.verdicts``):

- ``reference``: a solution cell uses the reference implementation of what it must implement
  (``grading.references.FORBIDDEN``), through any alias or import form;
- ``tamper``: code that rewires the grading machinery: assigns or deletes attributes of
  imported modules (``np.allclose = ...``, ``builtins.print = ...``, ``sys.excepthook = ...``),
  edits ``sys.modules`` or ``__builtins__``, touches IPython's traceback / display hooks,
  uses ``helpers.checks`` or writes check records;
- ``suspicious``: process, network and database access, dynamic code (``exec``, ``eval``,
  ``__import__``, ``importlib``), ``ctypes``, signals.

Static reading can be evaded (code built from strings is only seen as ``exec``): the report
says so, and the score never depends on it.
"""

from __future__ import annotations

import ast

from grading.references import EVERYWHERE, forbidden_for
from helpers.checks._core import RECORD_MIMETYPE

SUSPICIOUS = (
    "os._exit", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.system", "os.popen",
    "os.execv", "os.execve", "os.execvp", "os.execl", "os.execlp", "os.spawnv", "os.spawnl",
    "os.setsid", "os.setuid", "os.chroot", "subprocess", "socket", "sqlite3", "ctypes",
    "signal", "importlib", "multiprocessing", "shutil.rmtree", "urllib", "http", "requests",
    "builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__",
    "builtins.globals", "gc.get_referrers", "sys.settrace", "sys.setprofile",
)
HOOKS = ("showtraceback", "_showtraceback", "showsyntaxerror", "excepthook", "displayhook",
         "display_pub", "set_custom_exc", "CustomTB", "ast_transformers", "input_transformers",
         "input_transformers_post", "run_cell", "run_ast_nodes", "events", "_record",
         "RECORD_MIMETYPE", "REGISTRY", "rejudge", "session", "iopub_socket", "send_response")
BUILTIN_NAMES = ("exec", "eval", "compile", "__import__", "globals", "setattr", "delattr",
                 "getattr", "open", "breakpoint")
RECORD_MARK = RECORD_MIMETYPE.rsplit(".", 1)[0]   # "application/vnd.day6": any record type


def to_python(source):
    """Cell source as plain Python (IPython magics turned into calls), or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - fall back to the raw source
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _matches(qual, names):
    return next((n for n in names if qual == n or qual.startswith(n + ".")), None)


class _Resolver:
    """Tracks what local names refer to (imports and simple aliases), cell after cell."""

    def __init__(self):
        self.aliases = {"__builtins__": "builtins"}

    def qual(self, node):
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in BUILTIN_NAMES:
                return f"builtins.{node.id}"
            return None
        if isinstance(node, ast.Attribute):
            base = self.qual(node.value)
            return f"{base}.{node.attr}" if base else None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "getattr" and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            base = self.qual(node.args[0])
            return f"{base}.{node.args[1].value}" if base else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "__import__" and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
        return None

    def learn(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if a.name == "*":
                        self._star(node.module)
                    else:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                q = self.qual(node.value)
                if q:
                    self.aliases[node.targets[0].id] = q

    def _star(self, module):
        if not module.startswith("helpers"):
            return
        try:
            import importlib

            mod = importlib.import_module(module)
        except Exception:  # noqa: BLE001
            return
        for name in getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")]):
            self.aliases[name] = f"{module}.{name}"


def analyze(cells, assignment):
    """Flags for a notebook's student cells.

    ``cells``: list of ``(name, source, grade_id_of_solution_or_None, trusted)`` in notebook
    order; trusted cells (the instructor's locked test cells) only teach the resolver.
    Returns a list of ``{"kind", "cell", "detail"}``.
    """
    resolver = _Resolver()
    flags = []
    seen = set()

    def flag(kind, cell, detail):
        if (kind, cell, detail) not in seen:
            seen.add((kind, cell, detail))
            flags.append({"kind": kind, "cell": cell, "detail": detail})

    for name, source, solution_id, trusted in cells:
        tree = to_python(source)
        if tree is None:
            continue
        if trusted:
            resolver.learn(tree)
            continue
        forbidden = forbidden_for(assignment, solution_id) if solution_id else EVERYWHERE
        resolver.learn(tree)
        imports = {id(n) for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)}
        import_children = set()
        for n in ast.walk(tree):
            if id(n) in imports:
                import_children.update(id(c) for c in ast.walk(n))
        for node in ast.walk(tree):
            if id(node) in import_children:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    RECORD_MARK in node.value:
                flag("tamper", name, "writes check records (the recorded-answers mimetype)")
            if isinstance(node, ast.Attribute) and node.attr in HOOKS:
                flag("tamper", name, f"touches `{node.attr}` (IPython/kernel or checker "
                     "internals)")
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
                targets = node.targets if isinstance(node, ast.Assign | ast.Delete) \
                    else [node.target]
                for target in targets:
                    for t in ast.walk(target):
                        _check_target(t, resolver, name, flag)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("setattr", "delattr") and node.args:
                q = resolver.qual(node.args[0])
                if q:
                    flag("tamper", name, f"{node.func.id}() on `{q}`")
            if isinstance(node, ast.Subscript):
                q = resolver.qual(node.value)
                if q in ("sys.modules", "builtins"):
                    if isinstance(getattr(node, "ctx", None), ast.Store | ast.Del):
                        flag("tamper", name, f"edits `{q}`")
            if isinstance(node, ast.Name | ast.Attribute | ast.Call):
                q = resolver.qual(node)
                if not q:
                    continue
                parts = q.split(".")
                if q.startswith("helpers.checks.") and any(p.startswith("_") and
                                                           not p.startswith("__")
                                                           for p in parts[2:]):
                    flag("tamper", name, f"uses `{q}` (checker internals)")
                    continue
                hit = _matches(q, forbidden)
                if hit:
                    kind = "tamper" if _matches(hit, EVERYWHERE) else "reference"
                    what = "the checkers" if kind == "tamper" else "a reference implementation"
                    flag(kind, name, f"uses `{q}` ({what})")
                    continue
                hit = _matches(q, SUSPICIOUS)
                if hit:
                    flag("suspicious", name, f"uses `{q}`")
    return flags


def _check_target(t, resolver, name, flag):
    if isinstance(t, ast.Attribute) and isinstance(t.ctx, ast.Store | ast.Del):
        base = resolver.qual(t.value)
        if base:
            flag("tamper", name, f"rebinds `{base}.{t.attr}` (monkeypatching a module)")
    elif isinstance(t, ast.Name) and t.id == "__builtins__":
        flag("tamper", name, "rebinds `__builtins__`")


def notebook_cells(nb, trusted_ids=()):
    """``analyze``'s input from an nbformat notebook: code cells with their roles."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
        gid = meta.get("grade_id")
        trusted = gid in trusted_ids
        solution = gid if meta.get("solution") and not trusted else None
        out.append((gid or f"cell {i}", cell.source, solution, trusted))
    return out
