"""What a forked child may read, and whose memory it may reach: a Landlock domain.

Why: the seccomp filter (`vault.core.confine`) refuses a child the ways out of its process and the ways
to change anything outside it, but not reading. A parser taken over by a crafted file could still open
the embedded default's database file and object folder, and read, through ``/proc/<pid>/mem``, the live
memory of the worker that forked it, of the other workers and of the server's master: memory where other
requests decrypt other customers' files after the fork. What it read it could hand back as a page of its
drawing or the text of an error, which the uploader is shown.

Landlock (Linux 5.13 and later; no privilege needed) lets a process give up rights for good, as seccomp
does, but over the file tree and over other processes:

- a process in a Landlock domain may not trace, nor read the memory, environment or descriptors of, a
  process outside its domain: the worker, its sibling workers, the master. Every forked child is put in
  one, whatever it may read;
- a drawing's or a trace's child may read only the trees it draws with: Python's (the standard library,
  site-packages, the directories of the packages already loaded), the system's libraries and fonts, the
  font directory the deployment names, the temporary directory (where its scratch files are unnamed and
  the upload's copy is one), ``/dev/null`` and ``/dev/urandom``. Not the data folder, not the keyring,
  not a home directory, not ``/proc``;
- the office conversion's child starts LibreOffice, which reads its own installation wherever it is, a
  profile, the system's configuration and ``/proc``: its reads are not fenced, but it is in a domain, so
  the other processes' memory is closed to it and to LibreOffice too (a domain is inherited across exec).

The rules are added through descriptors of the trees (``O_PATH``), read before the domain is entered. Where
Landlock is missing (an older kernel, or one started without it in its list of security modules), `fence`
says so and the child goes on without it: the filter still holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator

# landlock_create_ruleset, landlock_add_rule and landlock_restrict_self: the same numbers on every
# architecture (they came after the numberings were unified).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_ASK_VERSION = 1 << 0  # LANDLOCK_CREATE_RULESET_VERSION
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
# Access rights of the first version (linux/landlock.h).
READ_FILE = 1 << 2
READ_DIR = 1 << 3
_MAKE_BLOCK = 1 << 11
"""Handled, and allowed nowhere, by the office child's domain: nothing it does needs a block device made."""

# The system's trees a drawing reads: shared libraries opened late (codecs, gconv modules), fonts and
# their configuration, locales. /lib and friends are links into /usr on a merged system, trees elsewhere.
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/etc/fonts")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/urandom")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    return libc


@functools.cache
def version() -> int:
    """The Landlock version this kernel offers, 0 where there is none (asked once, in the worker, which
    also finds the standing trees then: a fork only looks at the packages loaded since)."""
    if not sys.platform.startswith("linux"):
        return 0
    found = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_ASK_VERSION))
    if found > 0:
        _standing_trees()
    return max(int(found), 0)


def readable() -> list[tuple[str, int]]:
    """The trees (and single files) a drawing's child may read, each with the rights it gets: see the
    module text. Only what exists; what lies inside a tree already listed is left out.

    Found again only when a module was loaded since (as the worker, calling it before each fork, has
    loaded them all after its first requests): a fork then finds it ready."""
    loaded = len(sys.modules)
    if _found and _found[0] == loaded:
        return _found[1]
    _found[:] = [loaded, _readable()]
    return _found[1]


_found: list = []  # [number of modules loaded, what `readable` found then]


def _readable() -> list[tuple[str, int]]:
    trees, files = list(_standing_trees()), list(_SYSTEM_FILES)
    added = False
    for kind, path in _loaded_packages():
        if not _within(path, trees):  # most are in site-packages: no need to look further
            (trees if kind == "dir" else files).append(os.path.realpath(path))
            added = added or kind == "dir"
    if added:
        trees = _outermost(trees)
    singles = sorted({os.path.realpath(f) for f in files if os.path.isfile(f) or f.startswith("/dev/")})
    return ([(tree, READ_FILE | READ_DIR) for tree in trees]
            + [(single, READ_FILE) for single in singles if not _within(single, trees)])


@functools.cache
def _standing_trees() -> tuple[str, ...]:
    """The system's and Python's trees, which do not change while the worker runs (found once, in it)."""
    dirs = [*_SYSTEM_DIRS, tempfile.gettempdir()]
    paths = sysconfig.get_paths()
    dirs += [paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths]
    if os.environ.get("VAULT_FONT_DIR"):
        dirs.append(os.environ["VAULT_FONT_DIR"])
    return tuple(_outermost(os.path.realpath(d) for d in dirs if os.path.isdir(d)))


def _outermost(trees: Iterable[str]) -> list[str]:
    """The trees, sorted, without those inside another of them."""
    kept: list[str] = []
    for tree in sorted(set(trees)):
        if not _within(tree, kept):
            kept.append(tree)
    return kept


def _within(path: str, trees: list[str]) -> bool:
    return any(path == tree or path.startswith(tree.rstrip("/") + "/") for tree in trees)


def _loaded_packages() -> Iterator[tuple[str, str]]:
    """("dir", path) of each loaded top-level package and ("file", path) of each top-level module loaded
    from a file of its own: the project's packages may live outside site-packages (an editable install),
    and a module the server was started with may sit in a folder holding more than code. Read from each
    module's own namespace: a module's ``__getattr__`` may import."""
    for name, module in list(sys.modules.items()):
        if "." in name or module is None:
            continue
        namespace = getattr(module, "__dict__", {})
        locations = namespace.get("__path__")
        if locations:
            with contextlib.suppress(TypeError):
                yield from (("dir", str(location)) for location in list(locations))
        elif isinstance(namespace.get("__file__"), str):
            yield "file", namespace["__file__"]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LAST_CAPABILITY = 63


def drop_capabilities() -> bool:
    """Give up every capability, for good: a worker run as root passes all of them to its children, and
    with ``CAP_SYS_PTRACE`` a process reads other processes' memory whatever its Landlock domain, with
    ``CAP_DAC_OVERRIDE`` any file whatever its mode. Emptied from the bounding and ambient sets too, and
    ``PR_SET_NO_NEW_PRIVS`` (set by `fence` and by the filter) keeps a program it starts from getting
    them back. Returns whether the sets are empty now."""
    libc = _libc()
    if os.geteuid() == 0:
        for capability in range(_LAST_CAPABILITY + 1):  # past the kernel's last one: EINVAL, ignored
            libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    return libc.capset(ctypes.byref(header), data) == 0


def fence(*, reads: bool) -> bool:
    """Put this process (a fresh fork: one thread) in a Landlock domain; with `reads`, able to read only
    `readable`. Returns whether the domain is in place (False where Landlock is missing)."""
    if version() < 1:
        return False
    libc = _libc()
    handled = READ_FILE | READ_DIR if reads else _MAKE_BLOCK
    attr = _RulesetAttr(handled)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        for path, rights in readable() if reads else ():
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = _PathBeneath(rights, fd)
                libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                             ctypes.c_uint32(0))
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
    finally:
        os.close(ruleset)
