# Databricks notebook source
# MAGIC %md
# MAGIC # Lab kit: blanks and checks
# MAGIC
# MAGIC Every lab starts with `%run` of this notebook and ends with `%run` of its checks.
# MAGIC It defines two things, in plain Python so they behave the same on Databricks and on
# MAGIC the local runtime:
# MAGIC
# MAGIC - `FILL_IN`, the blank you replace with your code. Using it (calling it, reading an
# MAGIC   attribute, testing it) raises `BlankNotFilledError`, so a cell you have not done yet says
# MAGIC   so instead of failing somewhere obscure.
# MAGIC - `Lab`, a list of checks. Each check runs once, prints PASS or FAIL with a hint that
# MAGIC   points at the idea (never the answer), and `lab.summary()` prints the table.
# MAGIC
# MAGIC When the environment variable `LABKIT_RESULTS` names a file, `summary()` also writes
# MAGIC the results there as JSON: that is how `nox -s grade -- PATH` reads them locally.
# MAGIC On Databricks the variable is unset and nothing is written.

# COMMAND ----------

import json as _labkit_json
import os as _labkit_os


class BlankNotFilledError(NotImplementedError):
    """A lab blank (``FILL_IN``) was used before the learner replaced it."""


class _FillIn:
    """The blank of a lab. Any use raises :class:`BlankNotFilledError`."""

    def __repr__(self):
        return "FILL_IN"

    def _refuse(self, *args, **kwargs):
        raise BlankNotFilledError("a FILL_IN is still in this cell: replace it with your code")

    __call__ = _refuse
    __bool__ = _refuse
    __iter__ = _refuse
    __len__ = _refuse
    __getitem__ = _refuse
    __add__ = __radd__ = __sub__ = __mul__ = __truediv__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = _refuse

    def __getattr__(self, name):
        # Private and dunder lookups (display hooks, pickling) see an ordinary object.
        if name.startswith("_"):
            raise AttributeError(name)
        return self._refuse()


FILL_IN = _FillIn()


def is_blank(value):
    """True when ``value`` is still the lab's blank (``FILL_IN``) or ``None``."""
    return value is None or isinstance(value, _FillIn)


class Lab:
    """The checks of one lab: ``@lab.check(title, hint)`` on a function, then ``summary()``.

    A check passes when its function returns without raising (a return value of
    ``False`` fails it). An ``AssertionError``'s message is shown to the learner, so
    write it as feedback ("expected 3 regions, found 5"), not as the solution.
    """

    def __init__(self, name):
        self.name = name
        self.results = []

    def check(self, title, hint):
        def run(fn):
            detail = ""
            try:
                passed = fn() is not False
                if not passed:
                    detail = "the check returned False"
            except BlankNotFilledError:
                passed, detail = False, "not done yet: a FILL_IN is still there"
            except AssertionError as exc:
                passed, detail = False, str(exc) or "an expectation was not met"
            except Exception as exc:  # the learner's code may fail in any way
                passed, detail = False, f"{type(exc).__name__}: {exc}"
            self.results.append({"check": title, "passed": passed, "detail": detail, "hint": hint})
            print(("PASS  " if passed else "FAIL  ") + title)
            if not passed:
                print(f"      {detail}\n      hint: {hint}")
            return fn

        return run

    def summary(self):
        passed = sum(r["passed"] for r in self.results)
        width = max([len(r["check"]) for r in self.results] + [5])
        print(f"\n{self.name}: {passed} of {len(self.results)} checks pass\n")
        print(f"{'check':<{width}}  result")
        print(f"{'-' * width}  ------")
        for r in self.results:
            print(f"{r['check']:<{width}}  {'PASS' if r['passed'] else 'FAIL'}")
        target = _labkit_os.environ.get("LABKIT_RESULTS")
        if target:
            with open(target, "w", encoding="utf-8") as out:
                _labkit_json.dump({"lab": self.name, "checks": self.results}, out, indent=1)
        return passed == len(self.results)
