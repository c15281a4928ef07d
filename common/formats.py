"""The version of every entry and document format jobjournal writes, one constant each.

Each is documented in docs/redis-layout.md; a reader accepts its own version and the older ones
it names. Lua scripts get the version they write as an argument (never a literal of their own).
"""

JOURNAL_VERSION = 2
"""Journal entries (`jj:journal`, field `v`): 2: v, seq, id, name, timestamp, context, data
(the redacted jobspec on submit, R on alloc); 1: jobspec and R were fields of their own."""

EVENTLOG_VERSION = 2
"""Eventlog entries (`jj:job:{id}:eventlog`; stated by the submit event's context `version`):
2: name, timestamp, context and data on every entry; 1: jobspec and R fields of their own."""

REPLY_VERSION = 2
"""Full-journal replies (`jj:journal:reply:<consumer>`, field `v`): the version consumers ask for
and the newest a manager writes. 2: about a hundred jobs an entry, entries numbered 1-0, 2-0, ...;
1: one `type=job` entry per job."""

VIEW_VERSION = 4
"""The lister's view (`jj:view:{g<n>}:meta` `version`): 4: a users set names whose sorted sets a
generation has; 3: the job documents in one hash; 2: a JSON document per job (a key each); 1: a
hash per job."""
