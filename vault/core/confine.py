"""Taking from a forked child what a parser taken over by a crafted file could use against everything else.

A child forked to draw or trace an upload (`vault.core.forked`) starts with everything the worker has: its
open connections to the database, the object store and the mail server (already signed in), the right to
open new ones, and the right to start programs. None of it is needed to turn bytes into pages, and each
would let code that took over PDFium or an image decoder reach past the file it was given: write SQL into
the worker's database connection, send what it read anywhere, or start a shell. So before the work starts:

- every socket the child inherited is closed (its own copies only: the worker's stay open), but its
  standard streams (under a service manager they may be sockets to its log) and its pipe to the parent;
- the kernel is told (seccomp, after ``PR_SET_NO_NEW_PRIVS``) to refuse this process and any thread it
  starts the calls that make sockets, connect or accept them, start programs, read or write another
  process's memory, or set up io_uring (which can make sockets without those calls). Refused calls fail
  with EPERM, so Python raises `PermissionError` and the work fails as any other failure does; a call made
  through another architecture's numbering (x86_64's x32 and i386 entries) kills the process.

Files stay open to the child (the fonts it draws with, the upload it reads), and its memory is the worker's,
keys included: this closes the ways out of the process, not what the process can read. The office
converter is a program the child starts, so a conversion's child is not filtered (`forbid` is False); its
sockets are closed all the same.

The filter is written as the classic BPF program the kernel takes (``linux/filter.h``, ``linux/seccomp.h``):
the architecture is checked first, then the call's number against each refused one. On a system without
seccomp (not Linux, another architecture, or a kernel built without it) the filter is not installed and
`confine` says so; the sockets are closed wherever ``/proc/self/fd`` lists them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import sys

# prctl(2) options and seccomp(2) constants.
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
# Classic BPF opcodes: load a 32-bit word of the call's data, jump if equal / greater or equal, return.
_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
# Offsets in struct seccomp_data.
_NUMBER_AT = 0
_ARCH_AT = 4

_REFUSED_CALLS = ("socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "execve", "execveat",
                  "ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter",
                  "io_uring_register")
# Per machine: the kernel's name for its architecture (AUDIT_ARCH_*), the refused calls' numbers, and the
# first number of another numbering reachable from the same process (x86_64's x32 calls), if any.
_MACHINES: dict[str, tuple[int, dict[str, int], int | None]] = {
    "x86_64": (0xC000003E, {
        "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53, "execve": 59,
        "ptrace": 101, "accept4": 288, "process_vm_readv": 310, "process_vm_writev": 311, "execveat": 322,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    }, 0x40000000),
    "aarch64": (0xC00000B7, {
        "socket": 198, "socketpair": 199, "bind": 200, "listen": 201, "accept": 202, "connect": 203,
        "ptrace": 117, "execve": 221, "accept4": 242, "process_vm_readv": 270, "process_vm_writev": 271,
        "execveat": 281, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    }, None),
}


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


def confine(*, forbid: bool = True, keep: frozenset[int] = frozenset()) -> bool:
    """In a freshly forked child, before it touches untrusted input: close the sockets it inherited (but
    those in `keep`) and, with `forbid`, install the filter (see the module text). Returns whether the
    filter is in place. Not for a process that goes on serving: it loses its connections for good."""
    close_inherited_sockets(keep)
    return forbid and forbid_calls()


def close_inherited_sockets(keep: frozenset[int] = frozenset()) -> int:
    """Close every socket descriptor of this process but those in `keep`; returns how many were closed."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    closed = 0
    for fd in descriptors:
        if fd in keep:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
                closed += 1
        except OSError:
            continue  # the listing's own descriptor, gone by now
    return closed


def program() -> list[tuple[int, int, int, int]] | None:
    """The filter for this machine as (code, jt, jf, k) instructions, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    machine = _MACHINES.get(platform.machine())
    if machine is None:
        return None
    arch, numbers, other_numbering = machine
    refused = sorted(numbers[name] for name in _REFUSED_CALLS)
    checks: list[tuple[int, int]] = []  # (opcode, number) of each jump to the refusal
    if other_numbering is not None:
        checks.append((_JUMP_AT_LEAST, other_numbering))
    checks += [(_JUMP_EQUAL, number) for number in refused]
    kill = (_RETURN, 0, 0, _RET_KILL_PROCESS)
    code = [
        (_LOAD_WORD, 0, 0, _ARCH_AT),
        (_JUMP_EQUAL, 1, 0, arch),  # this machine's numbering: on; any other: killed
        kill,
        (_LOAD_WORD, 0, 0, _NUMBER_AT),
    ]
    # Each check jumps over the checks after it and the "allow" to the refusal at the end.
    for index, (opcode, number) in enumerate(checks):
        code.append((opcode, len(checks) - index, 0, number))
    code.append((_RETURN, 0, 0, _RET_ALLOW))
    code.append((_RETURN, 0, 0, _RET_ERRNO | errno.EPERM))
    return code


def forbid_calls() -> bool:
    """Install the filter on this process (its current thread and every thread it starts later: call it
    while the process has one thread, as a fresh fork has). False where it cannot be installed."""
    code = program()
    if code is None:
        return False
    instructions = (_Instruction * len(code))(*(_Instruction(*instruction) for instruction in code))
    filter_program = _Program(len(code), instructions)
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    # Without it an unprivileged process may not install a filter (and with it, nothing it starts can gain
    # privileges through setuid files: it cannot start anything anyway).
    if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(filter_program), 0, 0) == 0
