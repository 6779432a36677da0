"""Build the script of the page Export for Web writes: three.js and web/viewer.js in one file.

three.js and esbuild come from the npm registry at the exact versions web/package.json pins;
``npm ci`` installs what web/package-lock.json records and refuses a tarball whose sha512 differs
from the lock's ``integrity``. esbuild then bundles the viewer, three.js, GLTFLoader and
OrbitControls into one minified classic script, blender_cnn/web/viewer.js, which the add-on (and
its extension zip) carries: exporting never downloads anything, and the page it writes needs no
network.

The output's first line records a hash of everything it was built from, so a second run with
nothing changed returns at once (scripts/setup.sh runs this every time).

Usage:  .venv/bin/python scripts/build_web_viewer.py [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WEB_SOURCE = REPO_ROOT / "web"
PACKAGE = WEB_SOURCE / "package.json"
LOCK = WEB_SOURCE / "package-lock.json"
ENTRY = WEB_SOURCE / "viewer.js"
OUTPUT = REPO_ROOT / "blender_cnn" / "web" / "viewer.js"
ESBUILD_OPTIONS = ("--bundle", "--minify", "--format=iife", "--target=es2020", "--legal-comments=eof", "--charset=utf8")
STAMP_PREFIX = "/* blender_cnn web viewer, built by scripts/build_web_viewer.py from "


class WebViewerBuildError(RuntimeError):
    pass


def source_hash() -> str:
    digest = hashlib.sha256()
    for path in (PACKAGE, LOCK, ENTRY, Path(__file__)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(ESBUILD_OPTIONS).encode())
    return digest.hexdigest()[:16]


def pinned_versions() -> dict[str, str]:
    """``{package: version}`` of web/package.json, each checked to be exact and to match the lock."""
    wanted = json.loads(PACKAGE.read_text())["devDependencies"]
    locked = json.loads(LOCK.read_text())["packages"]
    for name, version in wanted.items():
        entry = locked.get(f"node_modules/{name}", {})
        if not version[:1].isdigit():
            raise WebViewerBuildError(f"{PACKAGE}: {name} must be pinned to an exact version, not {version!r}")
        if entry.get("version") != version or not entry.get("integrity", "").startswith("sha512-"):
            raise WebViewerBuildError(f"{LOCK}: {name} is not locked at {version} with a sha512 integrity hash")
    return wanted


def is_up_to_date(output: Path = OUTPUT) -> bool:
    if not output.is_file():
        return False
    with open(output, encoding="utf-8") as stream:
        first = stream.readline()
    return first.startswith(STAMP_PREFIX + source_hash() + " ")


def build(output: Path = OUTPUT, force: bool = False, log=print) -> Path:
    """Install the pinned packages with ``npm ci`` (integrity checked) and bundle the viewer into ``output``."""
    versions = pinned_versions()
    if not force and is_up_to_date(output):
        log(f"build_web_viewer: {output.relative_to(REPO_ROOT)} is up to date")
        return output
    npm = shutil.which("npm")
    if npm is None:
        raise WebViewerBuildError("npm is not installed: scripts/setup.sh installs Debian's nodejs and npm")
    # --ignore-scripts: no package runs code at install; esbuild finds its binary in @esbuild/<platform> anyway.
    _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], "npm ci")
    esbuild = WEB_SOURCE / "node_modules" / ".bin" / "esbuild"
    bundled = output.with_suffix(".tmp.js")
    output.parent.mkdir(parents=True, exist_ok=True)
    _run([str(esbuild), str(ENTRY), *ESBUILD_OPTIONS, f"--outfile={bundled}", "--log-level=warning"], "esbuild")
    pins = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
    code = bundled.read_text(encoding="utf-8")
    bundled.unlink()
    # The page carries this script inline, where "</script" would end it early.
    code = code.replace("</script", "<\\/script")
    header = (
        f"{STAMP_PREFIX}{source_hash()} ({pins}) */\n"
        "/* Generated: edit web/viewer.js and rerun the script. three.js is MIT-licensed (Copyright 2010-2026 "
        "Three.js Authors). */\n"
    )
    output.write_text(header + code, encoding="utf-8")
    log(f"build_web_viewer: wrote {output.relative_to(REPO_ROOT)} ({output.stat().st_size / 1e3:.0f} kB; {pins})")
    return output


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, cwd=WEB_SOURCE, capture_output=True, text=True)
    if result.returncode != 0:
        raise WebViewerBuildError(f"{what} failed in {WEB_SOURCE}:\n{(result.stdout + result.stderr).strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="build even when the output is up to date")
    args = parser.parse_args(argv)
    try:
        build(force=args.force)
    except WebViewerBuildError as error:
        print(f"build_web_viewer: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
