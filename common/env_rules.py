"""The environment a job is submitted with, from the submitter's and `--env` rules (as Flux's
`flux submit --env`, `--env-remove`; docs/flux-differences.md says what differs).

By default a job gets a copy of the submitter's whole environment. Rules then apply in order:
- `-PATTERN` removes the variables whose names match the glob PATTERN (`--env=-*`: all of them);
- `NAME=VALUE` sets a variable; `$NAME` and `${NAME}` in VALUE expand from the environment so far;
- `PATTERN` (no `=`) copies in the submitter's variables whose names match (after a removal).
`--env-remove=PATTERN` is the rule `-PATTERN`.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable, Mapping

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvRuleError(ValueError):
    """A rule that is not one of the forms above."""


def job_environment(submitter: Mapping[str, str], rules: Iterable[str]) -> dict[str, str]:
    environment = dict(submitter)
    for rule in rules:
        apply_rule(environment, submitter, rule)
    return environment


def apply_rule(environment: dict[str, str], submitter: Mapping[str, str], rule: str) -> None:
    if not rule or rule == "-":
        raise EnvRuleError(f"empty environment rule {rule!r}")
    if rule.startswith("-"):
        for name in fnmatch.filter(list(environment), rule[1:]):
            del environment[name]
        return
    name, sep, value = rule.partition("=")
    if sep:
        if not _NAME.match(name):
            raise EnvRuleError(f"{name!r} is not a variable name (in {rule!r})")
        environment[name] = string.Template(value).safe_substitute(environment)
        return
    environment.update({found: submitter[found] for found in fnmatch.filter(list(submitter), rule)})
