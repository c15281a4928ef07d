"""Formatting job rows for `jobjournal jobs`: named formats, headers, and derived fields."""

from __future__ import annotations

import datetime
import pwd
import re
import string
import time

from jobjournal.common.ids import f58

FORMATS = {
    "default": "{id.f58:>14} {username:<8.8} {name:<10.10} {status_abbrev:>2} {ntasks:>6} {nnodes:>6} "
    "{runtime:>8} {info}",
    "long": "{id.f58:>14} {username:<8.8} {name:<10.10} {queue:<8.8} {status:<9} {ntasks:>6} {nnodes:>6} "
    "{runtime:>8} {t_submit_iso:<19} {info}",
    "deps": "{id.f58:>14} {queue:<8.8} {name:<10.10} {urgency:<3} {priority:<12} {state:<8.8} {dependencies}",
    "endreason": "{id.f58:>14} {queue:<8.8} {username:<8.8} {name:<10.10} {status_abbrev:>2} "
    "{t_inactive_iso:<19} {inactive_reason}",
    "ids": "{id.f58}",
}
"""Named formats, after flux jobs' (deps has no dependencies to show: jobjournal has none)."""
HEADERS = {
    "id": "JOBID", "id.f58": "JOBID", "id.dec": "JOBID", "id.hex": "JOBID", "username": "USER",
    "status_abbrev": "ST", "t_submit_iso": "SUBMITTED", "runtime": "TIME", "t_inactive_iso": "INACTIVE",
    "inactive_reason": "INACTIVE-REASON",
}
ABBREV = {
    "NEW": "N", "DEPEND": "D", "PRIORITY": "P", "SCHED": "S", "RUN": "R", "CLEANUP": "C",
    "COMPLETED": "CD", "FAILED": "F", "CANCELED": "CA", "TIMEOUT": "TO",
}
ROW_FIELDS = ("username", "status", "status_abbrev", "runtime", "t_submit_iso", "t_inactive_iso", "info",
              "inactive_reason", "dependencies")
"""Fields derived from a job's attributes (besides the attributes themselves, and id.f58/.dec/.hex)."""


MAX_WIDTH = 1000
"""The widest field an `-o` format may ask for."""
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class JobIdText:
    """A job id that formats as f58 by default, with .f58, .dec and .hex forms."""

    def __init__(self, job_id: int):
        self.dec, self.f58, self.hex = str(job_id), f58(job_id), f"{job_id:#018x}"

    def __format__(self, spec: str) -> str:
        return format(self.f58, spec)


class FormatError(ValueError):
    """An `-o` format that cannot print a job: an unknown name or field, a bad spec."""


def resolve_format(text: str, sample: dict) -> str:
    """The template of a named format, or the template given, checked against a `sample` row (so a
    bad field is an error before any output)."""
    template = FORMATS.get(text, text)
    widest = max((int(number) for _, _, spec, _ in _fields(template) for number in re.findall(r"\d+", spec or "")),
                 default=0)
    if widest > MAX_WIDTH:
        raise FormatError(f"a width or precision of {widest} in {text!r}: at most {MAX_WIDTH}")
    if "{" not in template:
        raise FormatError(f"unknown format {text!r}: give one of {', '.join(FORMATS)}, or a template like "
                          "'{id} {state}' (-o help lists the fields)")
    try:
        format_row(template, sample, 0.0)
    except ValueError as err:
        raise FormatError(f"{err} (-o help lists the fields)") from err
    return template


def _fields(template: str):
    try:
        return list(string.Formatter().parse(template))
    except ValueError as err:
        raise FormatError(f"bad format {template!r}: {err} (-o help lists the fields)") from err


def help_text(attributes) -> str:
    """What `-o help` prints: the named formats, then every field."""
    lines = ["named formats:"] + [f"  {name:<10} {template}" for name, template in FORMATS.items()]
    lines += ["fields:", "  id (also id.f58, id.dec, id.hex)"]
    lines += [f"  {name}" for name in attributes if name != "id"]
    lines += [f"  {name} (derived)" for name in ROW_FIELDS]
    return "\n".join(lines)


def header(fmt: str) -> str:
    parts = []
    for literal, field, spec, _ in string.Formatter().parse(fmt):
        parts.append(literal)
        if field is not None:
            title = HEADERS.get(field, field.split(".")[0].upper())
            parts.append(format(title, _alignment(spec or "")))
    return "".join(parts).rstrip()


def _alignment(spec: str) -> str:
    """The part of a format spec that also fits a header string: fill, alignment, width."""
    out = ""
    for char in spec:
        if char.isdigit() or char in "<>^":
            out += char
        else:
            break
    return out


def format_row(fmt: str, job: dict, now: float | None = None) -> str:
    fields = {**job, **derived(job, now or time.time())}
    fields["id"] = JobIdText(job["id"])
    try:
        return fmt.format(**{k: _shown(v) for k, v in fields.items()}).rstrip()
    except (KeyError, AttributeError, ValueError, IndexError, TypeError) as err:
        raise ValueError(f"bad format {fmt!r}: {err}") from err


def _shown(value):
    """A field as a terminal may show it: None as "", control characters (escape sequences in a job
    name, say) escaped, so a listing cannot move the cursor or retitle the terminal."""
    if value is None:
        return ""
    if isinstance(value, str) and CONTROL.search(value):
        return CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), value)
    return value


def derived(job: dict, now: float) -> dict:
    state, result = job.get("state"), job.get("result")
    status = result if state == "INACTIVE" and result else state
    return {
        "username": username(job.get("userid", -1)),
        "status": status,
        "status_abbrev": ABBREV.get(status, "?"),
        "runtime": duration_text(runtime(job, now)),
        "t_submit_iso": iso_time(job.get("t_submit")),
        "t_inactive_iso": iso_time(job.get("t_inactive")),
        "info": info(job),
        "inactive_reason": inactive_reason(job),
        "dependencies": "",
    }


def inactive_reason(job: dict) -> str:
    """Why an inactive job ended, as flux jobs' endreason says it."""
    if job.get("state") != "INACTIVE":
        return ""
    if job.get("exception_occurred") and job.get("exception_severity") == 0:
        note = job.get("exception_note") or ""
        kind = job.get("exception_type") or "exception"
        reason = {"cancel": "Canceled", "timeout": "Timeout"}.get(kind, f"Exception: {kind}")
        return f"{reason}: {note}" if note else reason
    status = job.get("waitstatus") or 0
    if status & 0x7F:
        return f"Killed by signal {status & 0x7F}"
    return f"Exit {status >> 8}"


def runtime(job: dict, now: float) -> float:
    start = job.get("t_run")
    if not start:
        return 0.0
    return (job.get("t_cleanup") or now) - start


def info(job: dict) -> str:
    if job.get("state") in ("RUN", "CLEANUP"):
        return job.get("nodelist") or ""
    if job.get("exception_occurred") and job.get("exception_severity") == 0:
        return f"{job.get('exception_type')}: {job.get('exception_note') or ''}".rstrip(": ")
    if job.get("state") == "SCHED" and job.get("priority") == 0:
        return "held"
    status = job.get("waitstatus")
    if status:
        return f"exit {status >> 8}" if status & 0x7F == 0 else f"signal {status & 0x7F}"
    return job.get("nodelist") or ""


def duration_text(seconds: float) -> str:
    if seconds <= 0:
        return "0s"
    if seconds < 60:
        return f"{seconds:.3f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def ago(seconds: float) -> str:
    """'12s ago', '3m ago', '2h ago', '5d ago' ('in 3m' for the future)."""
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)}{unit}"
            break
    else:
        text = f"{int(seconds)}s"
    return f"in {text}" if future else f"{text} ago"


def username(userid: int) -> str:
    try:
        return pwd.getpwuid(userid).pw_name
    except (KeyError, OverflowError, TypeError):
        return str(userid)


def iso_time(timestamp: float | None) -> str:
    """A time as ISO 8601, or "?" for one no calendar can show (a forged or corrupt value)."""
    if not timestamp:
        return ""
    try:
        return datetime.datetime.fromtimestamp(timestamp).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return "?"
