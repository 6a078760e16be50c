"""Taking from a forked child what a parser taken over by a crafted file could use against everything else.

A child forked to draw or trace an upload (`vault.core.forked`) starts with everything the worker has: its
open connections to the database, the object store and the mail server (already signed in), the database
file itself on SQLite, the files and pipes of other uploads being drawn at the same time, and the rights
to open new connections, write any file the worker may write and start programs. None of it is needed to
turn bytes into pages, and each would let code that took over PDFium or an image decoder reach past the
file it was given: write SQL into the worker's database connection, rewrite the database or plant code
where the next worker would load it, read another upload's pages, send what it read anywhere, or start a
shell. So before the work starts:

- the descriptors it inherited are closed (its own copies only: the worker's stay open): every socket,
  pipe and file open for writing, but its standard streams (under a service manager they may be sockets
  to its log), files open for appending only (logs), and those it is told to keep (its pipe to the parent,
  the upload it draws). What stays is read-only: the fonts it draws with, say;
- shared writable mappings are unmapped (SQLite's WAL index is one: writing there changes the database
  without a call the filter below could see);
- the kernel is told (seccomp, after ``PR_SET_NO_NEW_PRIVS``) to refuse this process, and any thread it
  starts, the calls that make sockets, connect or accept them, start programs, read or write another
  process's memory or take its descriptors (the worker's, closed here, taken back with pidfd_getfd), set
  up io_uring (which can do all of that without those calls), open a named file for writing, or create,
  rename, link, remove or change the mode or owner of anything in the file system.
  Its scratch files are unnamed (O_TMPFILE: in no directory, gone when closed); where the file system
  cannot make those, writing stays allowed and the rest is refused.
  Refused calls fail with EPERM, so Python raises `PermissionError` and the work fails as any other
  failure does; a call made through another architecture's numbering (x86_64's x32 and i386 entries)
  kills the process.

Its memory is a copy of the worker's, keys included. This closes the ways out of the process and the ways
to change anything outside it; what it can see is narrowed next, before the filter: it gives up every
capability and enters a Landlock domain (`vault.core.fence`), which closes other processes' memory to it
and, but for an office conversion's child, every file outside the trees it draws with. The office
converter is a program the child starts, which writes its PDF and whose processes talk through local
sockets, so a conversion's child (`converts`) may start programs, write files and make local (AF_UNIX)
sockets; any other socket is refused to it and to the programs it starts (a filter is inherited across
exec), so LibreOffice, taken over or following a link in the file, reaches no network either.

The filter is the classic BPF program the kernel takes (``linux/filter.h``, ``linux/seccomp.h``): the
architecture is checked first, then the call's number against each refused one, and for the calls that
open files their flags against the ones that write. On a system without seccomp (not Linux, another
architecture, or a kernel built without it) the filter is not installed and `confine` says so; the
descriptors and mappings are dealt with wherever ``/proc/self`` lists them.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import logging
import os
import platform
import re
import socket
import stat
import sys
import tempfile

from vault.core.fence import drop_capabilities, fence, readable
from vault.core.fence import version as fence_version

log = logging.getLogger(__name__)

# prctl(2) options and seccomp(2) constants.
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
# Classic BPF opcodes: load a 32-bit word of the call's data; jump if equal, at least, any bit set; return.
_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JUMP_ANY_BIT = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
# Offsets in struct seccomp_data: the call's number, the architecture, then six 64-bit arguments (the low
# half of each first: both machines here are little-endian).
_NUMBER_AT = 0
_ARCH_AT = 4
_ARGUMENTS_AT = 16
# Flags of open(2) that write, create or truncate (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND).
WRITING_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# O_TMPFILE's own bit (O_TMPFILE is it and O_DIRECTORY): an unnamed file in a directory, never in the file
# system's tree (linking it there is a refused call), and gone when closed. The drawing writes its
# scratch copies so (Python's `tempfile.TemporaryFile` does where the file system can).
UNNAMED_FILE = getattr(os, "O_TMPFILE", 0) & ~os.O_DIRECTORY

# Refused to every child: other processes' memory and descriptors (pidfd_getfd would take the worker's own
# database socket, where ptrace is not restricted), and io_uring (which makes sockets and opens files
# without the calls below).
_PROCESS_CALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
                  "io_uring_setup", "io_uring_enter", "io_uring_register")
# Refused to a drawing; a conversion may make local (AF_UNIX) sockets only, as LibreOffice's processes talk
# through them, and start programs (LibreOffice itself).
_SOCKET_CALLS = ("socket", "socketpair", "connect", "bind", "listen", "accept", "accept4")
_PROGRAM_CALLS = ("execve", "execveat")
_NETWORK_AND_PROCESSES = (*_PROCESS_CALLS, *_SOCKET_CALLS, *_PROGRAM_CALLS)
_REFUSED_CALLS = (
    *_NETWORK_AND_PROCESSES,
    # changes to the file system (opening is judged by its flags, below)
    "creat", "truncate", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat",
    "symlink", "symlinkat", "unlink", "unlinkat", "mknod", "mknodat", "chmod", "fchmodat", "fchmodat2",
    "chown", "lchown", "fchownat", "openat2", "open_by_handle_at",
)
# The calls that open a file by name, and which argument holds their flags.
_OPENING_CALLS = (("open", 1), ("openat", 2))
# Per machine: the kernel's name for its architecture (AUDIT_ARCH_*), the calls' numbers (a call this
# machine does not have is absent: arm64 has only the *at forms), and the first number of another
# numbering reachable from the same process (x86_64's x32 calls), if any.
_MACHINES: dict[str, tuple[int, dict[str, int], int | None]] = {
    "x86_64": (0xC000003E, {
        "open": 2, "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53,
        "execve": 59, "truncate": 76, "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86,
        "unlink": 87, "symlink": 88, "chmod": 90, "chown": 92, "lchown": 94, "ptrace": 101, "mknod": 133,
        "openat": 257, "mkdirat": 258, "mknodat": 259, "fchownat": 260, "unlinkat": 263, "renameat": 264,
        "linkat": 265, "symlinkat": 266, "fchmodat": 268, "accept4": 288, "open_by_handle_at": 304,
        "process_vm_readv": 310, "process_vm_writev": 311, "renameat2": 316, "execveat": 322,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "pidfd_open": 434,
        "openat2": 437, "pidfd_getfd": 438, "fchmodat2": 452,
    }, 0x40000000),
    "aarch64": (0xC00000B7, {
        "mknodat": 33, "mkdirat": 34, "unlinkat": 35, "symlinkat": 36, "linkat": 37, "renameat": 38,
        "truncate": 45, "fchmodat": 53, "fchownat": 54, "openat": 56, "ptrace": 117, "socket": 198,
        "socketpair": 199, "bind": 200, "listen": 201, "accept": 202, "connect": 203, "execve": 221,
        "accept4": 242, "open_by_handle_at": 265, "process_vm_readv": 270, "process_vm_writev": 271,
        "renameat2": 276, "execveat": 281, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "pidfd_open": 434, "openat2": 437, "pidfd_getfd": 438, "fchmodat2": 452,
    }, None),
}


# A line of /proc/self/maps for a mapping that is readable, writable and shared: its start and end.
_SHARED_WRITABLE = re.compile(rb"^([0-9a-f]+)-([0-9a-f]+) rw.s ", re.MULTILINE)


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


def confine(*, converts: bool = False, keep: frozenset[int] = frozenset()) -> bool:
    """In a freshly forked child, before it touches untrusted input: close what it inherited but may not
    use, unmap shared writable memory, and install the filter (see the module text; `converts`: the
    conversion's). Returns whether the filter is in place. Not for a process that goes on serving: what it
    closes is gone for good.

    Where the temporary directory's file system cannot make unnamed files, the filter leaves writing
    files allowed (the drawing needs scratch files, and named ones are all that is left)."""
    close_inherited(keep)
    unmap_shared_writable()
    if not drop_capabilities():
        log.warning("this child could not give up its capabilities")
    if not fence(reads=not converts) and fence_version() >= 1:
        log.warning("this child could not be put in a Landlock domain")
    if converts:
        return forbid_calls(converts=True)
    unnamed = unnamed_files_work()
    if not unnamed:
        log.warning("the temporary directory %s cannot hold unnamed files: this child may write files",
                    tempfile.gettempdir())
    return forbid_calls(writes=not unnamed)


def prepare(*, converts: bool = False) -> None:
    """In the worker, before it forks a child to confine: find what `confine` will need that the worker
    can keep between forks (the trees a drawing reads), so that each child finds it ready."""
    if not converts and fence_version() >= 1:
        readable()


def unnamed_files_work() -> bool:
    """Whether an unnamed file (O_TMPFILE) can be made in the temporary directory: asked before the filter,
    which also settles that directory (finding it writes a named file)."""
    if not UNNAMED_FILE:
        return False
    try:
        fd = os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


def close_inherited(keep: frozenset[int] = frozenset()) -> int:
    """Close every descriptor of this process that is a socket, a pipe or a file open for writing (not for
    appending only), but the standard streams and those in `keep`; returns how many were closed."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    closed = 0
    for fd in descriptors:
        if fd in keep or fd <= 2:
            continue
        try:
            mode = os.fstat(fd).st_mode
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue  # the listing's own descriptor, gone by now
        writing = flags & os.O_ACCMODE != os.O_RDONLY and not flags & os.O_APPEND
        if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode) or writing:
            os.close(fd)
            closed += 1
    return closed


def unmap_shared_writable() -> int:
    """Unmap every shared writable mapping of a file in this process; returns how many were unmapped."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            listing = maps.read()
    except OSError:
        return 0
    munmap = _libc().munmap
    unmapped = 0
    for start, end in _SHARED_WRITABLE.findall(listing):
        if munmap(int(start, 16), int(end, 16) - int(start, 16)) == 0:
            unmapped += 1
    return unmapped


def program(*, writes: bool = False, converts: bool = False) -> list[tuple[int, int, int, int]] | None:
    """The filter for this machine as (code, jt, jf, k) instructions, or None where there is none; with
    `writes`, without the refusals of changes to the file system; with `converts` (an office conversion,
    which writes too), sockets other than local ones are refused, and programs may start."""
    if not sys.platform.startswith("linux"):
        return None
    machine = _MACHINES.get(platform.machine())
    if machine is None:
        return None
    arch, numbers, other_numbering = machine
    allow, refuse = "allow", "refuse"
    # Instructions with their jumps' targets as labels, resolved below.
    code: list[tuple[int, int | str, int | str, int]] = [
        (_LOAD_WORD, 0, 0, _ARCH_AT),
        (_JUMP_EQUAL, 1, 0, arch),  # this machine's numbering: on; any other: killed
        (_RETURN, 0, 0, _RET_KILL_PROCESS),
        (_LOAD_WORD, 0, 0, _NUMBER_AT),
    ]
    if other_numbering is not None:
        code.append((_JUMP_AT_LEAST, refuse, 0, other_numbering))
    writes = writes or converts
    refused = _PROCESS_CALLS if converts else _NETWORK_AND_PROCESSES if writes else _REFUSED_CALLS
    for number in sorted(numbers[name] for name in refused if name in numbers):
        code.append((_JUMP_EQUAL, refuse, 0, number))
    if converts:
        code += [
            (_JUMP_EQUAL, 0, 2, numbers["socket"]),  # a socket of the local family only
            (_LOAD_WORD, 0, 0, _ARGUMENTS_AT),
            (_JUMP_EQUAL, allow, refuse, socket.AF_UNIX),
        ]
    for name, argument in () if writes else _OPENING_CALLS:
        if name in numbers:
            code += [
                (_JUMP_EQUAL, 0, 3, numbers[name]),  # not this call: on to the next (the number still loaded)
                (_LOAD_WORD, 0, 0, _ARGUMENTS_AT + 8 * argument),
                (_JUMP_ANY_BIT, allow, 0, UNNAMED_FILE),
                (_JUMP_ANY_BIT, refuse, allow, WRITING_FLAGS),
            ]
    labels = {allow: len(code), refuse: len(code) + 1}
    code.append((_RETURN, 0, 0, _RET_ALLOW))
    code.append((_RETURN, 0, 0, _RET_ERRNO | errno.EPERM))

    def offset(at: int, target: int | str) -> int:
        return labels[target] - at - 1 if isinstance(target, str) else target

    return [(op, offset(at, jt), offset(at, jf), k) for at, (op, jt, jf, k) in enumerate(code)]


def forbid_calls(*, writes: bool = False, converts: bool = False) -> bool:
    """Install the filter on this process (its current thread and every thread it starts later, and every
    program it starts: call it while the process has one thread, as a fresh fork has); `writes`,
    `converts`: see `program`. False where it cannot be installed."""
    filter_program = _compiled(writes, converts)
    if filter_program is None:
        return False
    prctl = _libc().prctl
    # Without it an unprivileged process may not install a filter (and with it, nothing it starts can gain
    # privileges through setuid files: it cannot start anything anyway).
    if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(filter_program), 0, 0) == 0


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library with the two calls used here declared (built once, in the worker: its forks share it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.munmap.restype = ctypes.c_int
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    return libc


@functools.cache
def _compiled(writes: bool, converts: bool) -> _Program | None:
    """`program` as the structure prctl takes (built once per variant; its instructions kept alive with it)."""
    code = program(writes=writes, converts=converts)
    if code is None:
        return None
    instructions = (_Instruction * len(code))(*(_Instruction(*instruction) for instruction in code))
    compiled = _Program(len(code), instructions)
    compiled._instructions = instructions  # type: ignore[attr-defined]  # the pointer's target stays alive
    return compiled


if sys.platform.startswith("linux"):
    # Built in the worker as it imports this, so that each fork only reads its maps and calls the kernel.
    _libc()
    if fence_version() < 1:
        log.warning("this kernel has no Landlock: a forked child may read what the worker may read, "
                    "other processes' memory included")
    for _writes, _converts in ((False, False), (True, False), (False, True)):
        _compiled(_writes, _converts)
