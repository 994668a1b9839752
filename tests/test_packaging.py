"""Packaging: the wheel ``pip install .`` builds, installed into a fresh venv outside the repo, works
(``chat-feedback`` console script, imports, the app served with its widget); and pyproject.toml's
dependencies agree with requirements.txt / requirements-test.txt.

Offline: the wheel is built without build isolation (setuptools is in requirements-test.txt) from a
copy of the checkout, and the fresh venv sees this environment's installed dependencies through a
``.pth`` line instead of downloading them; only the wheel itself is installed into it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
WIDGET_FILES = ("feedback-widget.js", "feedback-widget.css", "index.html")
NOT_SOURCE = (
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "data",
    "test-artifacts",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".gradio",
    "*.egg-info",
    "*.pyc",
)
"""Left out of the copy the wheel is built from: what is not the checkout's source (a local data dir,
caches, venvs, earlier build output)."""


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(path: Path) -> dict[str, Requirement]:
    """The requirements of a pip requirements file by normalised name (``-r`` lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            found[normalise(requirement.name)] = requirement
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned with =="
    return spec.version


# --- pyproject.toml and the requirements files agree ---------------------------------------------


def test_dependencies_match_requirements_txt():
    """Same packages; each pinned version (what a Space and CI install) is allowed by pyproject."""
    declared = {normalise(r.name): r for r in map(Requirement, pyproject()["project"]["dependencies"])}
    pinned = pins(ROOT / "requirements.txt")
    assert sorted(declared) == sorted(pinned), (
        "pyproject.toml dependencies and requirements.txt list different packages"
    )
    for name, requirement in pinned.items():
        version = pinned_version(requirement)
        assert declared[name].specifier.contains(version), (
            f"requirements.txt pins {name}=={version}, outside {declared[name]}"
        )


def test_test_extra_matches_requirements_test_txt():
    """``pip install .[test]`` gives exactly requirements-test.txt's pins."""
    extra = {normalise(r.name): r for r in map(Requirement, pyproject()["project"]["optional-dependencies"]["test"])}
    pinned = pins(ROOT / "requirements-test.txt")
    assert {name: str(r.specifier) for name, r in extra.items()} == {
        name: str(r.specifier) for name, r in pinned.items()
    }
    assert "-r requirements.txt" in (ROOT / "requirements-test.txt").read_text()


# --- the wheel, installed into a fresh venv --------------------------------------------------------


@dataclass
class Installed:
    wheel: Path
    venv: Path
    cwd: Path
    env: dict[str, str]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def run(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def build_wheel(out: Path, work: Path) -> Path:
    """Build the wheel as ``pip install .`` would, offline, from a copy of the checkout (the build
    writes ``build/`` and ``*.egg-info`` next to the sources; they stay out of the repo)."""
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(out),
            str(source),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("chat_feedback-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel built from this checkout, installed (``--no-deps``) into a new venv outside the repo."""
    work = tmp_path_factory.mktemp("packaging")
    assert not work.resolve().is_relative_to(ROOT)
    wheel = build_wheel(work / "wheel", work)

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # This environment's installed packages, after the venv's own: the dependencies, never the checkout.
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "outer-site-packages.pth").write_text("".join(f"{path}\n" for path in outer))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )

    cwd = work / "elsewhere"
    cwd.mkdir()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV", "FEEDBACK_"))
    }
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv),
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
    )
    yield Installed(wheel, venv, cwd, env)


def test_wheel_holds_the_library_and_the_widget_only(installed: Installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"feedback", "schemas", "chat_feedback-0.1.0.dist-info"}, tops
    assert not [name for name in names if re.search(r"(^|/)(tests?|bench|conftest)(/|\.py$)|\.pyc$", name)]
    for name in WIDGET_FILES:
        with zipfile.ZipFile(installed.wheel).open(f"feedback/web/widget_dist/{name}") as packed:
            assert packed.read() == (ROOT / "feedback" / "web" / "widget_dist" / name).read_bytes()
    meta = zipfile.ZipFile(installed.wheel).read("chat_feedback-0.1.0.dist-info/METADATA").decode()
    required = {
        normalise(Requirement(line.split(":", 1)[1]).name)
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert required == set(pins(ROOT / "requirements.txt"))
    entry_points = zipfile.ZipFile(installed.wheel).read("chat_feedback-0.1.0.dist-info/entry_points.txt").decode()
    assert "chat-feedback = feedback.cli:main" in entry_points


def test_installed_copy_imports_from_the_venv(installed: Installed):
    result = installed.run(
        installed.bin / "python",
        "-c",
        "import feedback, schemas; from feedback import FeedbackChatInterface; "
        "from feedback.web.widget import WIDGET_DIR; "
        "print(feedback.__file__); print(schemas.__file__); print(WIDGET_DIR)",
    )
    assert result.returncode == 0, result.stderr
    site = installed.venv.resolve()
    for line in result.stdout.split():
        assert Path(line).resolve().is_relative_to(site), f"{line} is not the installed copy"


def test_console_script_is_python_m_feedback(installed: Installed):
    script = installed.run(installed.bin / "chat-feedback", "--help")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("usage: chat-feedback")
    for command in ("serve", "replay", "push", "pull", "review", "stats", "export"):
        assert command in script.stdout
    module = installed.run(installed.bin / "python", "-m", "feedback", "--help")
    assert module.returncode == 0, module.stderr
    assert module.stdout.replace("python -m feedback", "chat-feedback") == script.stdout
    assert installed.run(installed.bin / "chat-feedback", "serve", "--help").returncode == 0


def test_installed_app_serves_page_api_and_widget(installed: Installed):
    """``chat-feedback serve`` from the installed copy: the API answers, the widget is served from
    the wheel's package data, records go to the configured data dir, SIGTERM ends it cleanly."""
    port = free_port()
    data_dir = installed.cwd / "records"
    env = {
        **installed.env,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "FEEDBACK_DATA_DIR": str(data_dir),
    }
    log = installed.cwd / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [installed.bin / "chat-feedback", "serve"], cwd=installed.cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not ready after 60 s:\n{log.read_text()}"
            try:
                info = httpx.get(f"{url}/gradio_api/info", timeout=2)
                if info.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert "/chat" in info.json()["named_endpoints"]
        widget = httpx.get(f"{url}/widget/feedback-widget.js", timeout=10)
        assert widget.status_code == 200
        assert widget.content == (ROOT / "feedback" / "web" / "widget_dist" / "feedback-widget.js").read_bytes()
        assert httpx.get(f"{url}/widget/", timeout=10).status_code == 200
        assert httpx.get(f"{url}/", timeout=10).status_code == 200
        process.terminate()
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert data_dir.is_dir()
    assert "not serving the chat widget" not in log.read_text()
