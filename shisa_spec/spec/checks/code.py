"""Check ``code_function``: the answer's Python function computes Fibonacci numbers.

The code is extracted (``extract.python_blocks``), the function found by ``ast``, and run only
in ``sandbox.run_function`` (a jail where one can be made). ``sandbox: strict`` (or
``sandbox.set_strict``, from ``--sandbox strict``) refuses to run it without a jail: the check
fails with that reason. The detail ends with the sandbox mode that ran, and the evidence has it.
Both indexings are accepted, as the prompt's "k個目" allows either, but consistently for every k:
0-based f(k) = F(k) with F(0)=0, F(1)=1, or 1-based f(k) = F(k-1).

If the code fails while being defined (a demo driver such as ``k = int(input())`` at top
level), it is run again with only its imports, functions, classes and literal assignments, as
a grader would test the function rather than the demo; the detail says so.
"""

from __future__ import annotations

import ast

from shisa_spec.spec import sandbox as _sandbox
from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.extract import one_arg_functions, parse_python, python_blocks

_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["k_values"],
    "properties": {
        "k_values": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1, "maximum": 10000}},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        "function": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "memory_mb": {"type": "integer", "minimum": 64},
        "sandbox": {"enum": ["auto", "strict"]},
    },
}


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _choose(blocks: list[str], function: str | None) -> tuple[str | None, str | None, str]:
    """(source, function name, why not or which block) for the first block that parses and defines the function.

    An answer often shows a usage example before or after the definition: the block that defines
    the function is the one tested, and the detail names it when there were several.
    """
    problems = []
    for i, src in enumerate(blocks):
        which = f"code block {i + 1} of {len(blocks)}" if len(blocks) > 1 else ""
        module, err = parse_python(src)
        if module is None:
            problems.append(f"the code does not parse: {err}")
            continue
        names = one_arg_functions(module)
        if function:
            if function in names:
                return src, function, which
            problems.append(f"no one-argument function {function!r} (found {', '.join(names) or 'none'})")
        elif names:
            return src, next((n for n in names if "fib" in n.lower()), names[0]), which
        else:
            problems.append("the code defines no function of one argument")
    return None, None, problems[0] if problems else "no Python code in the answer"


def definitions_only(source: str) -> str | None:
    """The source's imports, functions, classes and literal assignments, or None if that changes nothing."""
    module = ast.parse(source)
    keep = [
        n
        for n in module.body
        if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        or (isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and _literal(n.value))
    ]
    return ast.unparse(ast.Module(body=keep, type_ignores=[])) if len(keep) < len(module.body) else None


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _same(got: dict, want: int) -> bool:
    v = got.get("value")
    return "value" in got and not isinstance(v, bool) and isinstance(v, (int, float)) and v == want


@register("code_function", _SCHEMA)
def code_function(
    output: Output, k_values: list[int], timeout_s: float = 5, function: str | None = None, memory_mb: int = 512, sandbox: str = "auto"
) -> Verdict:
    v = _code_function(output, k_values, timeout_s, function, memory_mb, sandbox == "strict" or _sandbox.strict())
    mode = v.evidence.get("sandbox")
    return Verdict(v.passed, f"{v.detail} [sandbox: {mode}]", v.evidence) if mode else v


def _code_function(output: Output, k_values: list[int], timeout_s: float, function: str | None, memory_mb: int, strict: bool) -> Verdict:
    source, name, why = _choose(python_blocks(output.text), function)
    if source is None:
        return Verdict(False, why, {})
    where = f" ({why})" if why else ""
    run = lambda src: _sandbox.run_function(src, name, [[k] for k in k_values], timeout_s=timeout_s, memory_mb=memory_mb, require_jail=strict)  # noqa: E731
    res, note = run(source), ""
    if res.error and res.error.startswith("while defining the code") and (defs := definitions_only(source)):
        retry = run(defs)
        if not retry.error:
            res, note = retry, f" (top-level code failed: {res.error.split(': ', 1)[1]}; tested the definitions alone)"
    note += where
    ev = {"function": name, "results": res.results, "error": res.error, "timed_out": res.timed_out, "note": note.strip(), "block": why,
          "sandbox": res.sandbox}
    if res.error:
        return Verdict(False, f"{name}() could not be run: {res.error}", ev)
    errors = [(k, r["error"]) for k, r in zip(k_values, res.results) if "error" in r]
    if errors:
        k, e = errors[0]
        more = f" (and {len(errors) - 1} more calls failed)" if len(errors) > 1 else ""
        return Verdict(False, f"{name}({k}) raised {e}{more}{note}", ev)
    for base, offset in (("0-based", 0), ("1-based", 1)):
        if all(_same(r, fib(k - offset)) for k, r in zip(k_values, res.results)):
            return Verdict(True, f"{name}(k) returns the k-th Fibonacci number ({base}) for k in {k_values}{note}", {**ev, "indexing": base})
    got = [r.get("value", r.get("repr")) for r in res.results]
    return Verdict(
        False,
        f"{name}(k) for k={k_values} returned {got}; expected {[fib(k) for k in k_values]} (0-based) or {[fib(k - 1) for k in k_values]} (1-based){note}",
        ev,
    )
