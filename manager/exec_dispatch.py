"""How the manager hands jobs to executors, and how each side knows the other is genuine.

On the queue Redis (standalone, beside rq's queues):
- `keys.exec_dispatch()`: a stream read by the consumer group `keys.EXEC_GROUP`; an entry is a
  job the manager allocated: `v`, `id` and `token` only (never a command or an environment: the
  executor reads those from the job's own keys in the store). The one who deletes the entry
  (XDEL returns 1) owns it: an executor that takes the job, or the manager canceling it first.
- `keys.exec_executors()`: each executor's slots, running jobs and last beat (`ExecutorInfo`).
- `keys.exec_secret()`: the manager's secret. A job's token is an HMAC of its id under it, so an
  executor can tell a dispatch from a forged entry; an executor's report carries an HMAC of its
  whole content (`signed`), so the manager can tell it from a forged inbox message, and one
  report (readable in the inbox) cannot be turned into another. With ACLs on only the manager and
  executor roles read it (deploy/users.acl).
- `keys.exec_taken(id)`: set (NX) by the executor that takes the job: a job runs once, whatever is
  dispatched again.
"""

from __future__ import annotations

import msgspec
import redis as redis_lib

from jobjournal.common import keys, macs, messages

VERSION = b"1"
EXECUTOR_TTL = 5.0
"""Seconds an executor counts as live after its last beat."""
KILL_KEY_TTL = 3600
TAKEN_TTL = 7 * 86400


class ExecutorInfo(msgspec.Struct, kw_only=True):
    slots: int
    """Jobs it runs at once."""
    running: int = 0
    beat: float = 0.0
    host: str = ""
    pid: int = 0


_decode_info = msgspec.json.Decoder(ExecutorInfo).decode


def secret(queues) -> bytes:
    """The dispatch secret, created by the first process that asks."""
    return macs.shared_secret(queues, keys.exec_secret())


def token_for(key: bytes, job_id: int) -> str:
    """The job's dispatch token (job ids are never reused, so the id alone names the dispatch)."""
    return macs.mac(key, str(job_id).encode())


def genuine(key: bytes, job_id: int, token: str) -> bool:
    return macs.matches(key, str(job_id).encode(), token)


def _report_content(report: messages.ExecStarted | messages.ExecFinished) -> bytes:
    return messages.encode(msgspec.structs.replace(report, mac="", reply_to=""))


def signed(key: bytes, report: messages.ExecStarted | messages.ExecFinished):
    """The report with its HMAC."""
    return msgspec.structs.replace(report, mac=macs.mac(key, _report_content(report)))


def authentic(key: bytes, report: messages.ExecStarted | messages.ExecFinished) -> bool:
    return macs.matches(key, _report_content(report), report.mac)


def ask_to_kill(queues, job_id: int) -> None:
    """Tell the executor running the job (if any) to kill its command."""
    queues.set(keys.exec_kill(job_id), 1, ex=KILL_KEY_TTL)


def redis_time(queues) -> float:
    """The queue Redis's clock: executors' beats and the manager's liveness checks both use it."""
    seconds, micros = queues.time()
    return seconds + micros / 1e6


def ensure_group(queues) -> None:
    try:
        queues.xgroup_create(keys.exec_dispatch(), keys.EXEC_GROUP, id="0", mkstream=True)
    except redis_lib.ResponseError as err:
        if "BUSYGROUP" not in str(err):
            raise


def dispatch(queues, job_id: int, token: str) -> str:
    """Hand a job to the executors; the entry id."""
    entry_id = queues.xadd(keys.exec_dispatch(), {b"v": VERSION, b"id": str(job_id), b"token": token})
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def take(queues, entry_id: str) -> bool:
    """Own a dispatch entry: True for the one caller that deletes it (an executor taking the job,
    or the manager withdrawing it)."""
    with queues.pipeline(transaction=False) as pipe:
        pipe.xack(keys.exec_dispatch(), keys.EXEC_GROUP, entry_id)
        pipe.xdel(keys.exec_dispatch(), entry_id)
        return pipe.execute()[1] == 1


def claim_job(queues, job_id: int, name: str) -> bool:
    """Mark the job taken by executor `name`; False if it was taken before (it runs once)."""
    return bool(queues.set(keys.exec_taken(job_id), name, nx=True, ex=TAKEN_TTL))


def waiting(queues) -> dict[int, str]:
    """{job id: entry id} of every dispatch no executor has taken yet."""
    found = {}
    for entry_id, fields in queues.xrange(keys.exec_dispatch()):
        try:
            found[int(fields[b"id"])] = entry_id.decode()
        except (KeyError, ValueError):
            continue  # not a dispatch: executors set it aside
    return found


def is_waiting(queues, entry_id: str) -> bool:
    return bool(queues.xrange(keys.exec_dispatch(), entry_id, entry_id, count=1))


def live_executors(queues) -> dict[str, ExecutorInfo]:
    """Executors that beat within EXECUTOR_TTL by the queue Redis's clock (those long gone are
    removed from the hash)."""
    now = redis_time(queues)
    live, stale = {}, []
    for name, raw in queues.hgetall(keys.exec_executors()).items():
        try:
            info = _decode_info(raw)
        except msgspec.DecodeError:
            stale.append(name)
            continue
        if now - info.beat <= EXECUTOR_TTL:
            live[name.decode()] = info
        elif now - info.beat > 10 * EXECUTOR_TTL:
            stale.append(name)
    if stale:
        queues.hdel(keys.exec_executors(), *stale)
    return live


def beat(queues, name: str, info: ExecutorInfo) -> None:
    queues.hset(keys.exec_executors(), name, msgspec.json.encode(info))


def leave(queues, name: str) -> None:
    queues.hdel(keys.exec_executors(), name)
