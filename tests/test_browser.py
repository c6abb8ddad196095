"""A real browser: JupyterLab + headless Chromium (Debian's) driven by Playwright.

Opens ``notebooks/01_convolution.ipynb`` (a temporary copy), runs all cells from the Run menu, waits
for the convolution explorer, moves its stride and position sliders with the keyboard and checks that
the output-size formula and the output map change. Screenshots go to ``artifacts/browser/``.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``playwright`` package
(``.ci/install-browser`` installs both; never ``playwright install``). Without them the test is
skipped locally and fails when ``CI`` is set.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_convolution.ipynb"
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: user settings of the throw-away JupyterLab: start the notebook's kernel without asking, no news
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
SERVER_START_S = 90
CELLS_RUN_MS = 180_000  # kernel start, imports, MNIST, first render on 2 busy cores
UPDATE_MS = 60_000


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _missing_or_fail() -> str:
    """The chromium path; skips (locally) or fails (CI) when the browser set-up is missing."""
    problems = []
    chromium = _chromium()
    if chromium is None:
        problems.append("chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing (pip install playwright)")
    if problems:
        reason = "; ".join(problems) + " — run .ci/install-browser"
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    return chromium


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


def _processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line mentions ``marker`` (our server's kernels carry its runtime dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def chromium() -> str:
    return _missing_or_fail()


@pytest.fixture
def jupyterlab(chromium: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 (free port, token) serving a copy of the notebook; stopped afterwards."""
    root, state = tmp_path / "root", tmp_path / "jupyter-state"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    runtime = Path(tempfile.mkdtemp(prefix="jl-"))  # kernels' Unix sockets: the path must stay short
    for name, values in LAB_SETTINGS.items():
        target = state / "settings" / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = {**os.environ, "COURSE_IMPL": "solutions", "JUPYTER_RUNTIME_DIR": str(runtime),
           "JUPYTER_DATA_DIR": str(state / "data"), "JUPYTER_CONFIG_DIR": str(state / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--KernelManager.transport=ipc"]
    if os.geteuid() == 0:  # CI and containers run as root
        command.append("--allow-root")
    log = (tmp_path / "jupyterlab.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s")
            time.sleep(0.5)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}&reset", tmp_path
    finally:
        _stop_server(server, base, token, str(runtime))
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)


def _stop_server(server: subprocess.Popen, base: str, token: str, runtime: str) -> None:
    """Shut JupyterLab down cleanly (it stops its kernels); kill what is left, by pid."""
    if server.poll() is None:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    for pid in _processes_mentioning(runtime):  # a kernel that outlived its server
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _image_hash(locator) -> str:
    return hashlib.sha256(locator.screenshot()).hexdigest()


def test_conv_explorer_in_jupyterlab(chromium, jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    url, tmp = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*"):
        stale.unlink()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
            # wait until the notebook's kernel is up, then Run > Run All Cells
            expect(page.locator(".jp-StatusBar-Widget")).to_contain_text("Python 3 (ipykernel) | Idle", timeout=120_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            expect(page.locator(".jp-CodeCell .jp-InputPrompt").first).to_contain_text("[1]", timeout=CELLS_RUN_MS)

            formula = page.locator(".conv-explorer-formula")
            output = page.locator("img.conv-explorer-output")
            expect(formula).to_contain_text("(28 − 3) // 1 + 1 = 26", timeout=CELLS_RUN_MS)
            expect(output).to_be_visible(timeout=UPDATE_MS)
            explorer = page.locator(".conv-explorer").first
            explorer.scroll_into_view_if_needed()
            assert "not implemented" not in page.locator(".conv-explorer-message").inner_text()
            page.screenshot(path=str(ARTIFACTS / "01-before.png"), full_page=False)
            first_map = _image_hash(output)

            # stride 1 -> 2: two presses of the right arrow on the focused slider handle would give 3
            handle = page.locator(".conv-explorer-stride .noUi-handle")
            handle.focus()
            page.keyboard.press("ArrowRight")
            expect(formula).to_contain_text("(28 − 3) // 2 + 1 = 13", timeout=UPDATE_MS)
            expect(page.locator(".conv-explorer-value")).to_contain_text("window at", timeout=UPDATE_MS)
            _wait_for_new_image(output, first_map)
            second_map = _image_hash(output)
            explorer.screenshot(path=str(ARTIFACTS / "02-stride-2.png"))

            # slide the window: the formula stays, the map fills further
            value_before = page.locator(".conv-explorer-value").inner_text()
            position = page.locator(".conv-explorer-position .noUi-handle")
            position.focus()
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            expect(page.locator(".conv-explorer-value")).not_to_have_text(value_before, timeout=UPDATE_MS)
            _wait_for_new_image(output, second_map)
            assert "(28 − 3) // 2 + 1 = 13" in formula.inner_text()
            explorer.screenshot(path=str(ARTIFACTS / "03-position.png"))

            # padding 0 -> 1 changes the formula once more
            third_map = _image_hash(output)
            page.locator(".conv-explorer-padding .noUi-handle").focus()
            page.keyboard.press("ArrowRight")
            expect(formula).to_contain_text("(28 + 2·1 − 3) // 2 + 1 = 14", timeout=UPDATE_MS)
            _wait_for_new_image(output, third_map)
            page.screenshot(path=str(ARTIFACTS / "04-padding-1.png"))
            stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert not [text for text in stderr.all_inner_texts() if "Error" in text], "a cell raised an error"
        except Exception:
            try:
                page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            except Exception:  # the page itself may be gone
                pass
            shutil.copy(tmp / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")
            raise
        finally:
            browser.close()


def _wait_for_new_image(locator, old_hash: str, timeout_s: float = UPDATE_MS / 1000) -> None:
    """Poll screenshots of ``locator`` until they differ from ``old_hash`` (bounded)."""
    deadline = time.monotonic() + timeout_s
    while _image_hash(locator) == old_hash:
        if time.monotonic() > deadline:
            pytest.fail("the output map did not change after moving the slider")
        time.sleep(0.25)
