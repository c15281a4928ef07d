"""`jobjournal user`: the people (or groups) of a store with `identity=acl`: an ACL user each,
mapped to a uid (common/identity.py). Needs the admin role."""

from __future__ import annotations

import contextlib
import json

import click
import redis as redis_lib

from jobjournal.common import identity, keys
from jobjournal.context import App, pass_app


@click.group()
def user() -> None:
    """People and groups: an ACL user each, mapped to a uid (JOBJOURNAL_IDENTITY=acl)."""


@user.command("add")
@click.argument("name")
@click.option("--uid", type=click.IntRange(0, 2**32 - 1), required=True, help="The uid its requests act as.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Its Redis password.")
@pass_app
def add(app: App, name, uid, password) -> None:
    """Create (or reset) the ACL user NAME for a person, acting as UID."""
    _not_a_role(name)
    redis = app.redis
    rules = identity.person_rules(name, redis7=_major_version(redis) >= 7)
    redis.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)
    redis.hset(keys.users(), name, uid)
    saved = _save(redis)
    click.echo(f"user {name}: uid {uid}" + ("" if saved else
               " (not saved: this server has no aclfile; ACL SETUSER lasts until it restarts)"))


@user.command("remove")
@click.argument("name")
@pass_app
def remove(app: App, name) -> None:
    """Delete the ACL user NAME and its uid."""
    _not_a_role(name)
    redis = app.redis
    redis.execute_command("ACL", "DELUSER", name)
    redis.hdel(keys.users(), name)
    _save(redis)
    click.echo(f"user {name} removed")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def list_(app: App, as_json) -> None:
    """The known users and their uids."""
    users = {name.decode(): int(uid) for name, uid in sorted(app.redis.hgetall(keys.users()).items())}
    if as_json:
        click.echo(json.dumps(users))
        return
    for name, uid in users.items():
        click.echo(f"{name:<20} {uid}")


def _not_a_role(name: str) -> None:
    if name in identity.ROLES:
        raise click.UsageError(f"{name!r} is one of the shipped roles (deploy/users.acl), not a person")
    if not identity.USER_NAME.fullmatch(name):
        raise click.UsageError(f"{name!r} is not a user name (letters, digits, '_', '.', '-'; at most 64)")


def _major_version(redis) -> int:
    return int(str(redis.info("server")["redis_version"]).split(".")[0])


def _save(redis) -> bool:
    """ACL SAVE where the server has an aclfile; False where it has none."""
    with contextlib.suppress(redis_lib.ResponseError):
        redis.execute_command("ACL", "SAVE")
        return True
    return False


COMMANDS = [user]
