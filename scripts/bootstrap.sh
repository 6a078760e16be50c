#!/usr/bin/env bash
# Set up everything vault needs to run (and, with --test, to be tested) from a fresh clone.
#
#   scripts/bootstrap.sh          .venv with vault installed (editable), and the Debian packages the
#                                 document viewer needs: LibreOffice (office files) and fonts (DejaVu, Noto,
#                                 Noto CJK for the page stamp; WenQuanYi Micro Hei for laying out CJK text)
#   scripts/bootstrap.sh --test   also the test tools, and the Debian packages the tests drive for real:
#                                 postgresql (database server) and chromium (browser)
#
# Safe to run again: a second run only checks, and skips pip when pyproject.toml has not changed since
# the last install (its hash is kept in .venv/.bootstrap-stamp).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }
say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $arg" ;;
    esac
done

VENV=.venv
STAMP="$VENV/.bootstrap-stamp"
started=$SECONDS

# --- system packages -----------------------------------------------------------------------------------

# Run a command as root: directly, or through sudo for a developer's own account.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing $missing_list needs root, and sudo is not available. As root, run:
    apt-get update && apt-get install -y --no-install-recommends $missing_list"
    fi
}

apt_lists_fresh() {
    # A list refreshed in the last hour (by .ci/run installing make, say) need not be fetched again.
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 -print -quit 2>/dev/null)" ]
}

apt_install() {
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
    if ! apt_lists_fresh; then
        say "apt-get update"
        as_root "${apt[@]}" update -qq >/dev/null
    fi
    say "apt-get install $*"
    # Recommends are left out: headless Chromium needs neither GPU drivers nor desktop services, and
    # fontconfig already depends on a font. That saves about a hundred packages.
    if ! as_root "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null; then
        say "install failed; refreshing the package lists and trying once more"
        as_root "${apt[@]}" update -qq >/dev/null
        as_root "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

can_be_root() { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; }

# The document viewer turns uploads into page images: LibreOffice converts office files (the -nogui
# builds: no X11 or desktop libraries), DejaVu and WenQuanYi Micro Hei (TrueType outlines, which the
# text layout needs; the Noto CJK fonts are CFF) cover Latin, Cyrillic and CJK, and Liberation, Carlito
# and Caladea are metric-compatible with Arial/Times, Calibri and Cambria so documents keep their
# pagination. Without them vault still runs; those files are kept and marked "no preview".
VIEWER_PACKAGES=(libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
                 fonts-dejavu-core fonts-wqy-microhei fonts-liberation2 fonts-crosextra-carlito
                 fonts-crosextra-caladea)
package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null; }
have_chromium() { [ -x "${VAULT_CHROMIUM:-/usr/bin/chromium}" ]; }
# Playwright's bundled Node.js links against libatomic, which minimal Debian images lack.
have_libatomic() { ldconfig -p 2>/dev/null | grep -q 'libatomic\.so\.1 '; }
# The visible stamp on every viewed page names the viewer; Pillow has no font fallback, so each script the
# names may use needs a font of its own on disk (vault/marking/fonts.py looks for these files).
FONT_PACKAGES=(
    "fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    "fonts-noto-core:/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"
    "fonts-noto-cjk:/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
)

missing=()
if ! command -v python3 >/dev/null 2>&1 && [ -z "${PYTHON:-}" ]; then
    die "python3 (3.11 or newer) is not installed"
fi
PYTHON=${PYTHON:-$(command -v python3)}

"$PYTHON" - <<'EOF' || die "$PYTHON is Python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'); vault needs 3.11 or newer (set PYTHON=/path/to/python3.11)"
import sys
sys.exit(sys.version_info < (3, 11))
EOF

# Debian's own python3 ships venv's pip bootstrap separately, in python3-venv.
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    command -v apt-get >/dev/null 2>&1 || die "$PYTHON cannot create virtual environments (no ensurepip)"
    missing+=("python3-venv")
fi
if command -v dpkg-query >/dev/null 2>&1; then
    viewer_missing=()
    for package in "${VIEWER_PACKAGES[@]}"; do
        package_installed "$package" || viewer_missing+=("$package")
    done
    if [ "${#viewer_missing[@]}" -gt 0 ]; then
        if can_be_root && command -v apt-get >/dev/null 2>&1; then
            missing+=("${viewer_missing[@]}")
        else
            say "warning: the document viewer needs ${viewer_missing[*]}, and installing them needs root."
            say "         Until they are installed, office and text files get no preview. As root, run:"
            say "         apt-get update && apt-get install -y --no-install-recommends ${viewer_missing[*]}"
        fi
    fi
else
    say "warning: not a Debian system; install LibreOffice (writer, calc, impress) and the DejaVu, WenQuanYi"
    say "         Micro Hei, Liberation, Carlito and Caladea fonts yourself, or office files get no preview"
fi
for entry in "${FONT_PACKAGES[@]}"; do
    [ -e "${entry#*:}" ] || missing+=("${entry%%:*}")
done
if [ "$want_test" -eq 1 ]; then
    have_postgres || missing+=("postgresql")
    have_chromium || missing+=("chromium")
    have_libatomic || missing+=("libatomic1")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    missing_list="${missing[*]}"
    command -v apt-get >/dev/null 2>&1 \
        || die "missing: $missing_list. This script installs them on Debian/Ubuntu only; install them yourself."
    if [[ " $missing_list " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.d/50-vault-tests.conf ]; then
        # The tests start private servers of their own: the package's default cluster on port 5432
        # would only cost install time and leave a service running.
        as_root mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" \
            | as_root tee /etc/postgresql-common/createcluster.d/50-vault-tests.conf >/dev/null
    fi
    t0=$SECONDS
    apt_install "${missing[@]}"
    say "system packages installed in $((SECONDS - t0)) s"
    if [ "$want_test" -eq 1 ]; then
        have_postgres || die "postgresql was installed but initdb is not under /usr/lib/postgresql/*/bin"
        have_chromium || die "chromium was installed but ${VAULT_CHROMIUM:-/usr/bin/chromium} is missing"
    fi
fi

# --- virtual environment ------------------------------------------------------------------------------

if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "$VENV is broken or too old; recreating it"
    rm -rf "$VENV"
fi
if [ ! -e "$VENV" ]; then
    say "creating $VENV with $("$PYTHON" --version 2>&1) ($PYTHON)"
    "$PYTHON" -m venv "$VENV"
    rm -f "$STAMP"
fi

if [ "$want_test" -eq 1 ]; then mode=test target='.[test]'; else mode=base target='.'; fi
digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
# A test install also satisfies a plain one; a plain install does not satisfy --test.
if [ -f "$STAMP" ] && { grep -qx "$digest test" "$STAMP" || grep -qx "$digest $mode" "$STAMP"; }; then
    say "python packages up to date (pyproject.toml unchanged)"
else
    say "upgrading pip"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    say "pip install -e '$target'"
    t0=$SECONDS
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"
    say "python packages installed in $((SECONDS - t0)) s"
    echo "$digest $mode" >"$STAMP"
fi

# The message catalogues (Chinese, Russian): compiled here, not kept in git.
"$VENV/bin/python" scripts/catalogues.py compile >/dev/null || say "a catalogue is incomplete (scripts/catalogues.py compile says which)"

say "ready in $((SECONDS - started)) s"
