"""Office documents to PDF with LibreOffice in headless mode, one private, killable process per job.

Every conversion gets its own temporary folder holding the input, the output, a fresh LibreOffice
profile (``-env:UserInstallation``) and ``HOME``: two conversions sharing a profile hand work to each
other or fail silently, and LibreOffice writes into ``$HOME`` even with a private profile. The process
runs in a new session (its own process group) and the whole group is killed with SIGKILL when the
timeout passes and again once it has finished: killing only the direct child leaves ``soffice.bin`` and
its helpers running, finishing the job and taking over the next one.

The profile is seeded with settings that keep a conversion from fetching images a document links to by
URL and from running macros (see PROFILE_SETTINGS).

LibreOffice starts under a limit on the memory it may allocate (``RLIMIT_DATA``, inherited by every
process it starts): a small document that unpacks to much text or many objects would otherwise grow it
by gigabytes before the timeout stops it, on a machine the web workers and the database share.

The import filter is pinned for each type, because LibreOffice otherwise guesses and imports random
bytes named ``.docx`` as plain text, producing a PDF of garbage with exit code 0. The exit code is not
trusted either: success is a non-empty PDF at the expected path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from vault.rendering.errors import ConversionTimeout, RenditionFailed

# Written into each fresh profile before LibreOffice starts. BlockUntrustedRefererLinks stops it from
# fetching images a document links to by URL (without it a conversion requests them: a tracking pixel,
# or a request to an internal address made from the server). Macros never run in a conversion.
PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks"
 oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel"
 oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution"
 oor:op="fuse"><value>true</value></prop></item>
</oor:items>
"""

# Run as `python -c _LIMITED <bytes> <program> <arguments>`: the limit is set in the child before LibreOffice
# replaces it (a preexec_fn would run in a forked copy of a threaded web worker, which is unsafe).
_LIMITED = ("import os, resource, sys; limit = int(sys.argv[1]); "
            "resource.setrlimit(resource.RLIMIT_DATA, (limit, limit)); os.execvp(sys.argv[2], sys.argv[2:])")

# kind -> (file extension, LibreOffice import filter name)
FILTERS: dict[str, tuple[str, str]] = {
    "docx": (".docx", "MS Word 2007 XML"),
    "xlsx": (".xlsx", "Calc MS Excel 2007 XML"),
    "pptx": (".pptx", "Impress MS PowerPoint 2007 XML"),
    "odt": (".odt", "writer8"),
    "ods": (".ods", "calc8"),
    "odp": (".odp", "impress8"),
}


def soffice_path() -> str | None:
    """The LibreOffice executable, or None when it is not installed."""
    configured = os.environ.get("VAULT_SOFFICE")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert_to_pdf(source: Path, kind: str, workdir: Path, timeout: float, memory: int) -> Path:
    """Convert the file at ``source`` (of ``kind``, a key of FILTERS) into ``workdir``/out/document.pdf.

    ``workdir`` must be an empty private folder; it ends up holding the profile, HOME, input and output,
    and the caller removes it. LibreOffice may allocate ``memory`` bytes of data. Raises
    :class:`ConversionTimeout` if it runs longer than ``timeout`` seconds, :class:`RenditionFailed` for any
    other failure (running out of its memory included).
    """
    soffice = soffice_path()
    if soffice is None:
        raise RenditionFailed("LibreOffice is not installed, so office documents cannot be shown.")
    extension, import_filter = FILTERS[kind]
    home, profile, outdir = workdir / "home", workdir / "profile", workdir / "out"
    for folder in (home, profile, profile / "user", outdir):
        folder.mkdir(mode=0o700)
    (profile / "user" / "registrymodifications.xcu").write_text(PROFILE_SETTINGS, encoding="utf-8")
    # A fixed input name: the output is named after it, and the user's file name never reaches a
    # command line.
    document = workdir / f"document{extension}"
    if source != document:
        shutil.copyfile(source, document)
    command = [
        sys.executable, "-I", "-c", _LIMITED, str(memory), soffice,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
        f"--infilter={import_filter}",
        "--convert-to", "pdf", "--outdir", str(outdir), str(document),
    ]
    environment = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(workdir),
    }
    process = subprocess.Popen(command, cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise ConversionTimeout(
            f"Converting the document took longer than {timeout:g} seconds and was stopped."
        ) from None
    finally:
        # Also after a normal exit: helpers LibreOffice started may still be alive in the group.
        _kill_group(process)
    result = outdir / "document.pdf"
    if not result.is_file() or result.stat().st_size == 0:
        detail = output.decode("utf-8", "replace").strip().splitlines()[-1:] if output else []
        raise RenditionFailed(
            "LibreOffice could not convert the document" + (f" ({detail[0]})." if detail else ".")
        )
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored; this is a bound
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
