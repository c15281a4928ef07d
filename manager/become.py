"""The root helper through which an executor in owner mode starts a job's command as its owner.

The executor (root) starts it with no environment, in /, as
`python -I -S ... PARENT REPORT ENVIRONMENT UID GID GROUPS CWD COMMAND...` (`argv`), and its
Popen returns once this helper runs, still as root: nothing the owner may stop, or signal at all,
stands between the executor and the return of Popen. The helper then reads the job's environment
from the file ENVIRONMENT (a memfd: the environment the job was submitted with never becomes the
helper's own, so none of its variables, LD_PRELOAD or PYTHONPATH say, acts on this root process),
takes the owner's groups, gid and uid (setgroups, setresgid, setresuid), checks they took and that
it cannot become root again, asks to be killed when the executor dies (PR_SET_PDEATHSIG, which a
change of ids clears, so after it; at once if the executor died before), enters CWD with the
owner's rights and execs COMMAND (looked up in the job's PATH) with the job's environment.

It tells the executor how far it went through the pipe REPORT (close-on-exec here, so an exec that
succeeds closes it): RAN just before the exec, then a FAILED line if that exec, or anything before
it, failed (`failure` reads it back). The executor reads it without ever waiting on it.

Import-light (os, sys; ctypes for prctl, imported while root): it starts once for every job (-S:
without the site packages, -I: nothing of the environment or the current directory). It costs
some 10 ms a job (a Python start, 8 ms, ctypes 3 ms), none of which the executor's loop waits for.
"""

import _signal  # loaded at start, as signal is not
import os
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9
RAN = b"ran\n"
FAILED = b"failed"
EXIT_FAILED = 127
"""Its exit status when it could not run the command (the executor reports the failure instead)."""
STAGES = {"start": "the start helper failed", "ids": "could not take the owner's ids",
          "pdeathsig": "could not ask to die with the executor"}


def argv(parent: int, report: int, environment: int, uid: int, gid: int, groups, cwd: str, command) -> list[str]:
    """The helper's command line (its file descriptors as the helper has them, see pass_fds). It
    imports this file by the name `become` (after the standard library, from its compiled copy)
    rather than run it as a script, which Python would compile every time."""
    start = f"import sys; sys.path.append({os.path.dirname(os.path.abspath(__file__))!r}); import become; become.main()"
    return [sys.executable, "-I", "-S", "-c", start, str(parent), str(report), str(environment), str(uid), str(gid),
            ",".join(map(str, groups)), cwd, *command]


def encode_environment(environment: dict[str, str]) -> bytes:
    """`environment` as environ holds it (NAME=VALUE, each ending in NUL); ValueError as Popen's."""
    entries = []
    for name, value in environment.items():
        name, value = os.fsencode(name), os.fsencode(value)
        if not name or b"=" in name:
            raise ValueError("illegal environment variable name")
        if b"\0" in name or b"\0" in value:
            raise ValueError("embedded null byte")
        entries.append(name + b"=" + value + b"\0")
    return b"".join(entries)


def failure(said: bytes, command: str, cwd: str) -> str | None:
    """What kept the command from running, from what the helper wrote to REPORT (None: nothing did)."""
    for line in said.splitlines():
        if line.startswith(FAILED):
            _, stage, code, text = (line.decode(errors="replace").split("\t", 3) + ["", "", ""])[:4]
            if stage in ("chdir", "exec") and code.isdigit():
                return str(OSError(int(code), os.strerror(int(code)), cwd if stage == "chdir" else command))
            return f"{STAGES.get(stage, stage)}: {text}"
    return None


def _say(report: int, stage: str, code: int = 0, text: str = "") -> None:
    text = " ".join(text.split())
    try:  # noqa: SIM105 - contextlib is one import more
        os.write(report, b"\t".join([FAILED, stage.encode(), str(code).encode(), text.encode(errors="replace")]))
    except OSError:
        pass  # the executor is gone


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _decode_environment(data: bytes) -> dict[bytes, bytes]:
    found = {}
    for entry in data.split(b"\0"):
        if entry:
            name, _, value = entry.partition(b"=")
            found[name] = value
    return found


def _become(uid: int, gid: int, groups: list[int]) -> str:
    """Take the ids; what is wrong if they did not all take ("" when they did)."""
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        return f"the ids did not take: uids {os.getresuid()}, gids {os.getresgid()}"
    if sorted(set(os.getgroups())) != sorted(set(groups)):
        return f"the groups did not take: {os.getgroups()}"
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return ""
        return "it could become root again after taking the uid"
    return ""


def _prctl():
    """prctl(2) (Linux), loaded as root: once the owner, the helper may not read the interpreter's
    files (it may live in root's home), so it imports nothing more."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def prctl(option: int, value: int) -> None:
        if libc.prctl(option, value, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")

    return prctl


def _die_with(parent: int, prctl) -> None:
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), SIGKILL)


def _restore_signals() -> None:
    """What Python ignores at start (as Popen's restore_signals): the command gets the defaults."""
    for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ"):
        if hasattr(_signal, name):
            _signal.signal(getattr(_signal, name), _signal.SIG_DFL)


def _exec(command: list[str], environment: dict[bytes, bytes], path: list[str]):
    """execvpe(3) in the folders of `path` (os.execvpe's lookup, which would import a module)."""
    if "/" in command[0]:
        os.execve(command[0], command, environment)
    first = last = None
    for folder in path:
        try:
            os.execve(os.path.join(folder, command[0]), command, environment)
        except (FileNotFoundError, NotADirectoryError) as err:
            last = err
        except OSError as err:
            last = err
            first = first or err
    raise first or last or FileNotFoundError(2, os.strerror(2), command[0])


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    parent, report, environment_fd, uid, gid = map(int, args[:5])
    groups = [int(group) for group in args[5].split(",") if group]
    cwd, command = args[6], args[7:]
    os.set_inheritable(report, False)  # closed by the exec of the command: the executor sees it ran
    stage = "start"
    try:
        environment = _decode_environment(_read_all(environment_fd))
        path = os.get_exec_path(environment)
        prctl = _prctl()
        stage = "ids"
        wrong = _become(uid, gid, groups)
        if wrong:
            _say(report, stage, text=wrong)
            os._exit(EXIT_FAILED)
        stage = "pdeathsig"
        _die_with(parent, prctl)
        stage = "chdir"
        os.chdir(cwd)
        stage = "exec"
        os.write(report, RAN)
        _restore_signals()
        _exec(command, environment, path)
    except OSError as err:
        _say(report, stage, err.errno or 0, str(err))
    except BaseException as err:  # noqa: BLE001 - whatever it is, the executor hears of it
        _say(report, stage, text=f"{type(err).__name__}: {err}")
    os._exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
