"""The docs stand alone: every file, folder, module and test they name is in the repository, no
link leaves it, and the README's layout names every top-level folder. No Redis needed."""

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CHECKED_ENDINGS = (".py", ".lua", ".md", ".conf", ".acl")
"""A backticked word ending so (or in '/') is taken for a path in the repository."""
NOT_SOURCE = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
              ".mypy_cache", ".jobjournal"}
"""Folders that are not part of the repository (made by tools, or ignored by git)."""
PACKAGE_DIRS = {"jobjournal": "jobjournal", "jobjournal.common": "common", "jobjournal.manager": "manager",
                "jobjournal.lister": "lister"}
"""Installed package -> its source folder (pyproject.toml's package-dir)."""
SOURCE_PACKAGES = ("common", "manager", "lister", "jobjournal")

FENCED = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"[\w.\-/]+")
MODULE = re.compile(r"jobjournal(\.\w+)+")
WEB = ("http://", "https://", "mailto:")


def _text(doc: Path) -> str:
    return doc.read_text()


def _prose(doc: Path) -> str:
    """The text outside fenced code blocks (command examples are not references)."""
    return FENCED.sub("", _text(doc))


def _links(doc: Path) -> list[str]:
    return LINK.findall(_prose(doc))


def _code_words(doc: Path) -> list[str]:
    """Every whitespace-separated word of every inline code span."""
    return [word for span in CODE.findall(_prose(doc)) for word in span.split()]


def _path_refs(doc: Path) -> list[tuple[str, str]]:
    """(path, name after '::' or '') for each backticked word that names a file or folder."""
    refs = []
    for word in _code_words(doc):
        path, _, name = word.partition("::")
        if path and PATH.fullmatch(path) and path.endswith((*CHECKED_ENDINGS, "/")):
            refs.append((path, name))
    return refs


@cache
def _repo_files() -> tuple[Path, ...]:
    """Every file of the repository, relative to its root."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in NOT_SOURCE and not name.endswith(".egg-info")]
        found += [(Path(folder) / name).relative_to(ROOT) for name in files]
    return tuple(found)


def _exists_by_name(path: str) -> bool:
    """A bare name (`post_events.lua`, `lua/`): some file or folder of that name in the repository."""
    name = path.rstrip("/")
    if path.endswith("/"):
        return any(name in file.parts[:-1] for file in _repo_files())
    return any(file.name == name for file in _repo_files())


def _inside_repo(path: str, base: Path) -> bool:
    return ".." not in Path(path).parts and not path.startswith("/") and (base / path).resolve().is_relative_to(ROOT)


def _defines(source: Path, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", source.read_text(), re.M) is not None


@cache
def _test_names() -> frozenset[str]:
    pattern = re.compile(r"^\s*def (test_\w+)", re.M)
    return frozenset(name for file in (ROOT / "tests").rglob("test_*.py") for name in pattern.findall(file.read_text()))


def _module_file(dotted: str) -> tuple[Path | None, list[str]]:
    """The source file of the longest importable prefix of `jobjournal.x.y.Name`, and the names after it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        package = PACKAGE_DIRS.get(prefix)
        if package is not None:
            return ROOT / package / "__init__.py", parts[cut:]
        parent = PACKAGE_DIRS.get(".".join(parts[: cut - 1]))
        if parent is not None and (ROOT / parent / f"{parts[cut - 1]}.py").exists():
            return ROOT / parent / f"{parts[cut - 1]}.py", parts[cut:]
    return None, parts


def _ids(docs):
    return [str(doc.relative_to(ROOT)) for doc in docs]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_relative_link_names_a_file_or_folder_in_the_repository(doc):
    problems = []
    for target in _links(doc):
        if target.startswith((*WEB, "#")):
            continue
        path = target.split("#")[0]
        if not _inside_repo(path, doc.parent):
            problems.append(f"link {target!r} leaves the repository")
        elif not (doc.parent / path).exists():
            problems.append(f"link {target!r} names nothing")
    assert not problems, f"{doc.name}: {problems}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_backticked_path_names_a_file_or_folder_in_the_repository(doc):
    problems = []
    for path, _ in _path_refs(doc):
        if not _inside_repo(path, ROOT):
            problems.append(f"`{path}` leaves the repository")
        elif "/" in path.rstrip("/") and not (ROOT / path).exists():
            problems.append(f"`{path}` is not in the repository")
        elif "/" not in path.rstrip("/") and not _exists_by_name(path):
            problems.append(f"no file or folder named `{path}` in the repository")
    assert not problems, f"{doc.name}: {problems}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_no_link_or_code_span_leaves_the_repository(doc):
    outside = [word for word in [*_links(doc), *_code_words(doc)] if "../" in word or word.startswith("file:")]
    assert not outside, f"{doc.name} names paths outside the repository: {outside}"
    assert "../" not in _prose(doc), f"{doc.name} refers to a path outside the repository"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_function_or_test_named_after_a_path_is_defined_there(doc):
    problems = []
    for path, name in _path_refs(doc):
        source = ROOT / path
        if name and path.endswith(".py") and not (source.is_file() and _defines(source, name)):
            problems.append(f"`{path}::{name}` is not defined there")
    for word in _code_words(doc):
        if word.startswith("::") and word[2:] not in _test_names():
            problems.append(f"no test named {word[2:]!r} in tests/")
    assert not problems, f"{doc.name}: {problems}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_jobjournal_module_named_exists_and_defines_the_name_after_it(doc):
    problems = []
    for word in _code_words(doc):
        if not MODULE.fullmatch(word):
            continue
        source, names = _module_file(word)
        if source is None or not source.exists():
            problems.append(f"no module `{word}`")
        elif names and not re.search(rf"\b{re.escape(names[0])}\b", source.read_text()):
            problems.append(f"`{word}`: no module or name {names[0]!r} in {source.relative_to(ROOT)}")
    assert not problems, f"{doc.name}: {problems}"


def _layout_rows() -> list[str]:
    readme = _text(ROOT / "README.md")
    section = readme.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def _top_level_folders() -> set[str]:
    """The repository's top-level folders: those git tracks files in (those on disk outside a checkout)."""
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        listed = "\n".join(str(path) for path in _repo_files())
    return {line.split("/", 1)[0] for line in listed.splitlines() if "/" in line}


def test_the_readme_layout_names_every_top_level_folder():
    named = {row.rstrip("/") for row in _layout_rows()}
    missing = _top_level_folders() - named
    assert not missing, f"README.md's Layout table lacks {sorted(missing)}"
    assert all((ROOT / name).is_dir() for name in named), f"README.md's Layout table names {sorted(named)}"


def test_the_readme_opens_with_the_two_set_up_commands():
    lines = _text(ROOT / "README.md").splitlines()
    assert lines[0].startswith("# ") and lines[2] == "```"
    assert lines[3].startswith("make demo") and lines[4].startswith("make test") and lines[5] == "```"


def test_the_design_names_every_module_and_lua_script():
    design = _text(ROOT / "docs" / "design.md")
    sources = [path for package in SOURCE_PACKAGES for path in sorted((ROOT / package).rglob("*"))
               if path.suffix in (".py", ".lua") and "__pycache__" not in path.parts]
    unnamed = [str(path.relative_to(ROOT)) for path in sources
               if f"`{path.relative_to(ROOT)}`" not in design and path.name != "__init__.py"]
    assert not unnamed, f"docs/design.md does not say what these do: {unnamed}"
