#!/usr/bin/env bash
# Prepare this checkout for development: the Debian libraries Blender's bpy
# links against, a Python 3.13 virtual environment in .venv, and the pinned
# packages from requirements.txt. Safe to run again; a second run does no
# network work unless something is missing or requirements.txt changed.
#
# `setup.sh --blender 5.3` makes instead .venv-blender-5.3, for testing the
# add-on on another Blender: the bpy of requirements-blender-5.3.txt and every
# other pin of requirements.txt but TensorFlow's (the add-on needs none, and the
# tier run there blocks it; `make test-blender-next`).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "setup: $*"; }
fail() { echo "setup: error: $*" >&2; exit 1; }

blender=""
while [ $# -gt 0 ]; do
    case "$1" in
        --blender) [ $# -ge 2 ] || fail "--blender needs a version, such as 5.3"; blender="$2"; shift 2 ;;
        *) fail "unknown argument '$1' (usage: setup.sh [--blender VERSION])" ;;
    esac
done

requirements="$repo_root/requirements.txt"
requirements_no_deps="$repo_root/requirements-no-deps.txt"
if [ -z "$blender" ]; then
    venv_dir="$repo_root/.venv"
else
    venv_dir="$repo_root/.venv-blender-$blender"
    blender_requirements="$repo_root/requirements-blender-$blender.txt"
    [ -f "$blender_requirements" ] || fail "no requirements-blender-$blender.txt: the other Blenders tested are those of $(cd "$repo_root" && ls requirements-blender-*.txt 2>/dev/null | tr '\n' ' ')"
fi
stamp="$venv_dir/.requirements.sha256"

# --- (a) system libraries ----------------------------------------------------
# bpy's __init__.so and the libraries in bpy/lib link against X11, GL and
# xkbcommon even when running headless (found with ldd). Mesa's EGL lets
# Eevee and Workbench render on llvmpipe with no display or GPU; without it
# those engines abort the process. bpy ships its own libvulkan.so.1, so the
# system loader is not needed.
debian_packages=(
    libx11-6 libxext6 libxrender1 libxfixes3 libxi6 libxxf86vm1 libxt6
    libxkbcommon0 libsm6 libice6
    libgl1 libopengl0 libegl1 libegl-mesa0 libgl1-mesa-dri
)

install_debian_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "no dpkg here (not Debian?); make sure these libraries exist yourself: ${debian_packages[*]}"
        return
    fi
    local missing=() pkg
    for pkg in "${debian_packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "system libraries present"
        return
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || fail "missing Debian packages (${missing[*]}) and not root; install them as root"
        sudo=(sudo)
    fi
    say "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- (b) Python 3.13 ---------------------------------------------------------
# bpy 5.2 wheels exist for CPython 3.13 only. pyenv's shim for python3.13 is
# on PATH even when 3.13 is not the selected version, and then it fails, so
# a candidate counts only if it actually runs and reports 3.13.
is_python313() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1
}

find_python313() {
    local candidate
    if command -v python3.13 >/dev/null 2>&1 && is_python313 python3.13; then
        command -v python3.13
        return
    fi
    # pyenv may be installed without being on PATH in non-interactive shells.
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    if command -v pyenv >/dev/null 2>&1; then
        pyenv_root="$(pyenv root)"
    fi
    # Free-threaded builds (3.13t) have no bpy wheel.
    for candidate in $(ls -d "$pyenv_root"/versions/3.13* 2>/dev/null | grep -v 't$' | sort -rV); do
        if is_python313 "$candidate/bin/python3.13"; then
            echo "$candidate/bin/python3.13"
            return
        fi
    done
    return 1
}

# --- (c) virtual environment -------------------------------------------------
ensure_venv() {
    if [ -x "$venv_dir/bin/python" ] && is_python313 "$venv_dir/bin/python"; then
        say "using existing $(basename "$venv_dir") ($("$venv_dir/bin/python" -V))"
    else
        local python
        python="$(find_python313)" || fail "Python 3.13 not found: put a working python3.13 on PATH or install it with 'pyenv install 3.13'"
        if [ -e "$venv_dir" ]; then
            say "$(basename "$venv_dir") is not a Python 3.13 environment; recreating it"
            rm -rf "$venv_dir"
        fi
        say "creating $(basename "$venv_dir") with $python ($("$python" -V))"
        "$python" -m venv "$venv_dir"
    fi

    # The interpreter version is part of the hash so a rebuilt venv reinstalls.
    local wanted
    wanted="$( { cat "$requirements" "$requirements_no_deps" "$repo_root/pyproject.toml" ${blender:+"$blender_requirements"}; "$venv_dir/bin/python" -V; } | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        say "Python packages up to date"
        return
    fi
    local pip=("$venv_dir/bin/python" -m pip install --disable-pip-version-check -q)
    if [ -z "$blender" ]; then
        say "installing Python packages from requirements.txt"
        "${pip[@]}" -r "$requirements"
        "${pip[@]}" --no-deps -r "$requirements_no_deps"
    else
        say "installing Python packages: bpy from $(basename "$blender_requirements"), the rest from requirements.txt without TensorFlow"
        local others="$venv_dir/requirements-without-bpy-and-tensorflow.txt"
        grep -v -E '^(bpy|tensorflow-cpu|keras)==' "$requirements" > "$others"
        "${pip[@]}" -r "$others" -r "$blender_requirements"
    fi
    # The project itself, editable: scripts and tests import blender_cnn from
    # this checkout without touching sys.path.
    "$venv_dir/bin/python" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$repo_root"
    echo "$wanted" > "$stamp"
    say "Python packages installed"
}

# --- (d) Export for Web: npm and Chromium ------------------------------------
# The page Export for Web writes carries three.js, which npm fetches at the versions
# web/package-lock.json pins (checking each package's integrity hash) and esbuild bundles
# (scripts/build_web_viewer.py, quick when nothing changed). Its test opens the page in
# headless Chromium. Each comes from Debian only when its command is missing: a Node.js
# from elsewhere, with its own npm, is kept.
install_web_tools() {
    local missing=()
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    if [ ${#missing[@]} -eq 0 ]; then
        say "npm and chromium present"
        return
    fi
    local sudo=() can_install=yes
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    command -v apt-get >/dev/null 2>&1 || can_install=no
    [ ${#sudo[@]} -eq 0 ] || command -v sudo >/dev/null 2>&1 || can_install=no
    if [ "$can_install" = no ]; then
        # Without npm the add-on has no page to write; without Chromium only the browser test skips.
        command -v npm >/dev/null 2>&1 || fail "npm is missing and cannot be installed here (no apt-get, or not root)"
        say "chromium is missing and cannot be installed here: the web export's browser test will skip"
        return
    fi
    say "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_debian_packages
ensure_venv
install_web_tools
"$venv_dir/bin/python" "$repo_root/scripts/build_web_viewer.py"
