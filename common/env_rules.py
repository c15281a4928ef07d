"""The environment a job is submitted with, from the submitter's and `--env` rules (as Flux's
`flux submit --env`, `--env-remove`; docs/flux-differences.md says what differs).

By default a job gets a copy of the submitter's whole environment but its jobjournal credentials
(`is_credential`): a `JOBJOURNAL_*_URL` that holds a password (`JOBJOURNAL_REDIS_URL`,
`JOBJOURNAL_QUEUE_REDIS_URL`: in the URL, or as its `password=` query), a `JOBJOURNAL_*` variable
whose name says PASSWORD, PASSWD, SECRET or TOKEN, and `REDISCLI_AUTH`. A job's environment is kept
in Redis and read by every executor, and a job that held its submitter's Redis password could act
as the submitter; so it goes only where asked for by name. Rules then apply in order:
- `-PATTERN` removes the variables whose names match the glob PATTERN (`--env=-*`: all of them);
- `NAME=VALUE` sets a variable; `$NAME` and `${NAME}` in VALUE expand from the environment so far;
- `PATTERN` (no `=`) copies in the submitter's variables whose names match (after a removal); a
  credential only when PATTERN is its exact name (`--env JOBJOURNAL_REDIS_URL` puts it back on
  purpose; `--env 'JOBJOURNAL_*'` does not).
`--env-remove=PATTERN` is the rule `-PATTERN`.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN")
_GLOB = re.compile(r"[*?\[]")
CREDENTIAL_VARIABLES = frozenset({"REDISCLI_AUTH"})
"""Variables outside JOBJOURNAL_* that hold a Redis password (redis-cli's)."""


class EnvRuleError(ValueError):
    """A rule that is not one of the forms above."""


def url_has_password(url: str) -> bool:
    """Whether a URL holds a password: `scheme://user:PASSWORD@...` or a `password=` query."""
    try:
        parts = urlsplit(url)
        return bool(parts.password) or any(name == "password" and value for name, value in parse_qsl(parts.query))
    except ValueError:  # not a URL urlsplit can read: it may hold anything
        return "@" in url


def is_credential(name: str, value: str) -> bool:
    """Whether the variable holds jobjournal's (or redis-cli's) Redis credentials."""
    if name in CREDENTIAL_VARIABLES:
        return True
    if not name.startswith("JOBJOURNAL_"):
        return False
    return bool(_SECRET_NAME.search(name)) or (name.endswith("_URL") and url_has_password(value))


def job_environment(submitter: Mapping[str, str], rules: Iterable[str]) -> dict[str, str]:
    environment = {name: value for name, value in submitter.items() if not is_credential(name, value)}
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
    if not _GLOB.search(rule):  # a name: that variable, credential or not
        if rule in submitter:
            environment[rule] = submitter[rule]
        return
    environment.update({found: submitter[found] for found in fnmatch.filter(list(submitter), rule)
                        if not is_credential(found, submitter[found])})
