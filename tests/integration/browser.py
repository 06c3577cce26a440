"""Servers on 127.0.0.1 for integration tests, and a headless Chromium that looks at MLflow's UI.

The browser is Debian's ``chromium`` driven through ``chromium-driver`` by Selenium
(``make test-system-deps`` installs both). Selenium is handed the driver's path, so it never
runs Selenium Manager (no driver download, no usage statistics): the tests work offline.
Without chromium, chromedriver or selenium, :func:`screenshot_runs` skips the calling test.

Typical use, from a test that has logged runs to ``sqlite:///<tmp>/mlflow.db``::

    with mlflow_server(f"sqlite:///{db}", tmp_path / "artifacts") as url:
        text = screenshot_runs(url, experiment_id, ["sweep", "child-a"], artifacts_dir() / "x.png")
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from tests.integration.conftest import REPO

WINDOW = (1600, 1000)  # CSS pixels of the screenshot
# MLflow 3's runs table: the run-name cell of a parent run holds the (+) expander button;
# its children are hidden until it is clicked (the table then says "N matching runs").
_RUN_NAME_CELL = '[role="gridcell"][col-id="attributes.`Run Name`"]'
_RUN_NAME_RESIZE = '[role="columnheader"][col-id="attributes.`Run Name`"] .ag-header-cell-resize'
_ASSISTANT_CLOSE = 'button[data-component-id="mlflow.assistant.chat_panel.close"]'


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str, proc: subprocess.Popen, timeout: float = 120, log: IO[str] | None = None
) -> None:
    """Poll ``url`` until it answers; fail with the server's output if it exits or times out.

    The output is read from ``proc.stdout`` (a pipe) or from ``log`` (the file it writes to).
    """

    def output() -> str:
        if log is not None:
            log.seek(0)
            return log.read()[-5000:]
        return proc.stdout.read() if proc.stdout and proc.poll() is not None else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}): {output()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout}s: {output()}")


@contextmanager
def mlflow_server(
    backend_store_uri: str, artifact_root: Path, timeout: float = 120
) -> Iterator[str]:
    """Run ``mlflow server`` on a free port of 127.0.0.1 and yield its base URL."""
    with mlflow_server_process(backend_store_uri, artifact_root, timeout) as (url, _):
        yield url


@contextmanager
def mlflow_server_process(
    backend_store_uri: str, artifact_root: Path, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``mlflow server`` on a free port of 127.0.0.1; yield its base URL and process
    (the leader of its own process group, so a test can kill the whole server).

    One uvicorn worker and no job runner (MLflow 3 otherwise starts four huey consumers,
    which slow a 2-core machine); the whole process group is stopped on exit.
    """
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--default-artifact-root", str(artifact_root),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc, timeout, log)
            yield f"http://127.0.0.1:{port}", proc
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (uvicorn runs in a child), SIGKILL after 20 s."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def artifacts_dir() -> Path:
    """The folder that keeps files a test wants people to look at after it ends.

    ``$NEGSAMP_TEST_ARTIFACTS``, else ``test-artifacts/`` at the repository root (git-ignored).
    """
    out = Path(os.environ.get("NEGSAMP_TEST_ARTIFACTS") or REPO / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def chromium_paths() -> tuple[str, str]:
    """(browser, driver) executables, or skip the calling test, saying what is missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    browser = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = [n for n, p in (("chromium", browser), ("chromium-driver", driver)) if not p]
        pytest.skip(f"no {' / '.join(missing)}: `make test-system-deps` installs it (Debian)")
    return browser, driver


def screenshot_runs(
    base_url: str,
    experiment_id: str,
    expected_names: Sequence[str],
    out_png: Path,
    timeout: float = 90,
) -> str:
    """Open an experiment's runs page in headless Chromium, screenshot it, return its text.

    Parent runs are expanded so their child runs show, then the page is polled until every
    name in ``expected_names`` stands on a line of its own in the visible text. The PNG
    (``WINDOW`` pixels) is written to ``out_png`` in every case, also when names are missing,
    in which case an AssertionError lists them with the page's text. Skips the calling test
    when no browser is installed (see :func:`chromium_paths`).
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = _driver()
    try:
        driver.get(f"{base_url}/#/experiments/{experiment_id}/runs")
        expanded: set[str] = set()
        text, missing = "", list(expected_names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = driver.find_element(By.TAG_NAME, "body").text
                lines = {line.strip() for line in text.splitlines()}
                missing = [n for n in expected_names if n not in lines]
                if not missing:
                    break
                _expand_parents(driver, expanded)
            except WebDriverException:  # the table re-rendered under us: look again
                pass
            time.sleep(0.5)
        try:  # cosmetic: close the assistant panel, fit the run-name column to the names
            for button in driver.find_elements(By.CSS_SELECTOR, _ASSISTANT_CLOSE):
                button.click()
            for handle in driver.find_elements(By.CSS_SELECTOR, _RUN_NAME_RESIZE):
                ActionChains(driver).double_click(handle).perform()  # ag-grid's auto-size
            time.sleep(0.3)
        except WebDriverException:
            pass
        out_png.parent.mkdir(parents=True, exist_ok=True)
        out_png.write_bytes(driver.get_screenshot_as_png())
    finally:
        driver.quit()
    assert not missing, (
        f"the MLflow UI at {base_url} (experiment {experiment_id}) did not show {missing} "
        f"within {timeout}s; screenshot {out_png}; the page read:\n{text}"
    )
    return text


def _driver(window: tuple[int, int] = WINDOW):  # noqa: ANN202 - a selenium WebDriver
    """Headless Chromium with its viewport pinned to ``window`` (skips without a browser)."""
    browser, driver_path = chromium_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",  # offline: no update or safe-browsing calls
        "--disable-component-update",
        "--no-first-run",
        f"--window-size={window[0]},{window[1]}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    # the window size counts the (invisible) browser frame: pin the viewport itself
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": window[0], "height": window[1], "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def screenshot_page(
    url: str,
    out_png: Path,
    ready: Callable[[str], bool],
    timeout: float = 90,
    window: tuple[int, int] = WINDOW,
) -> str:
    """Open ``url`` in headless Chromium, poll until ``ready(visible text)``, screenshot it
    to ``out_png`` (also when it never gets ready: then AssertionError), return the text."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    driver = _driver(window)
    text, ok = "", False
    try:
        driver.get(url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = driver.find_element(By.TAG_NAME, "body").text
                if ok := ready(text):
                    break
            except WebDriverException:  # re-rendered under us: look again
                pass
            time.sleep(0.5)
        time.sleep(1.0)  # let the charts draw
        for button in driver.find_elements(By.CSS_SELECTOR, _ASSISTANT_CLOSE):
            button.click()
        text = driver.find_element(By.TAG_NAME, "body").text
        out_png.parent.mkdir(parents=True, exist_ok=True)
        out_png.write_bytes(driver.get_screenshot_as_png())
    finally:
        driver.quit()
    assert ok, f"{url} did not get ready within {timeout}s; screenshot {out_png}; text:\n{text}"
    return text


def html_artifact_images(
    base_url: str, experiment_id: str, run_id: str, path: str, out_png: Path, timeout: float = 90
) -> list[tuple[str, int]]:
    """Open HTML artifact ``path`` of a run in MLflow's artifact viewer (an iframe), wait for
    its images, screenshot the page; returns (src's first 40 characters, natural width in
    pixels: 0 when the image did not load) for every ``<img>`` of the document."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    driver = _driver((WINDOW[0], 1600))
    found: list[tuple[str, int]] = []
    try:
        driver.get(f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frames = driver.find_elements(By.TAG_NAME, "iframe")
                if frames:
                    driver.switch_to.frame(frames[0])
                    imgs = driver.find_elements(By.TAG_NAME, "img")
                    found = [
                        (i.get_attribute("src")[:40], int(i.get_property("naturalWidth")))
                        for i in imgs
                    ]
                    done = driver.execute_script("return document.readyState") == "complete"
                    driver.switch_to.default_content()
                    if found and done and all(w > 0 for _, w in found):
                        break
            except WebDriverException:
                driver.switch_to.default_content()
            time.sleep(0.5)
        for button in driver.find_elements(By.CSS_SELECTOR, _ASSISTANT_CLOSE):
            button.click()
        out_png.parent.mkdir(parents=True, exist_ok=True)
        out_png.write_bytes(driver.get_screenshot_as_png())
    finally:
        driver.quit()
    return found


def _expand_parents(driver, expanded: set[str]) -> None:
    """Click the expander of each parent row not clicked yet (keyed by the run's link)."""
    from selenium.webdriver.common.by import By

    for cell in driver.find_elements(By.CSS_SELECTOR, _RUN_NAME_CELL):
        buttons = cell.find_elements(By.TAG_NAME, "button")
        links = cell.find_elements(By.CSS_SELECTOR, 'a[href*="/runs/"]')
        if buttons and links and (href := links[0].get_attribute("href")) not in expanded:
            buttons[0].click()
            expanded.add(href)
