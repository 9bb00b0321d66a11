"""The web page (nir_colorize.app) in a real headless browser: Debian's chromium and chromedriver through Selenium,
no browser download. Elsewhere it skips naming what is missing; under CI=true it fails instead."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, SAMPLE

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NIR = SAMPLE / "Testing" / "testing_0000_nir_reg.png"
WAIT = 180  # seconds for a page event on a loaded 2-core machine


def missing() -> list[str]:
    found = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    for module in ("selenium", "gradio"):
        try:
            __import__(module)
        except ImportError:
            found.append(f"the Python package {module}")
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    if absent := missing():
        reason = (f"browser test needs {', '.join(absent)} (apt-get install chromium chromium-driver; "
                  "pip install -e '.[app,dev]')")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                        "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "nir_colorize.app", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + WAIT
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"the app did not start: {log.read_text()[-3000:]}")
            time.sleep(1)
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def browser(app: str, tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1100", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)  # no Selenium Manager download
    driver.get(app)
    yield driver
    driver.quit()


def upload_and_colorize(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT)
    clear = driver.find_elements(By.CSS_SELECTOR, "#inputs button[aria-label='Clear']")
    if clear:
        clear[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#inputs input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#inputs input[type=file]").send_keys(str(path))
    wait.until(lambda d: path.stem in d.find_element(By.ID, "inputs").text)  # uploaded, listed
    driver.find_element(By.ID, "colorize").click()


def result_png(driver) -> np.ndarray:
    """The colour PNG the page offers for download (waits for it), decoded."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    css = "#downloads a[href*='testing_0000_nir_reg.png']"
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
    link = driver.find_element(By.CSS_SELECTOR, css).get_attribute("href")
    assert urlparse(link).hostname == "127.0.0.1"
    return np.asarray(Image.open(io.BytesIO(urllib.request.urlopen(link, timeout=30).read())).convert("RGB"))


def log_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#log textarea").get_attribute("value") or ""


def test_the_page_colorizes_like_predict(app: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from nir_colorize import pipeline
    from nir_colorize.utils.compose import compose_config

    wait = WebDriverWait(browser, WAIT)
    upload_and_colorize(browser, NIR)
    page_png = result_png(browser)
    assert log_text(browser).startswith("testing_0000_nir_reg.png: 256x256, as it is, ")
    assert browser.find_elements(By.CSS_SELECTOR, "#slider img")  # NIR | colour, before/after

    # the same image through predict, with the page's default options
    out = tmp_path / "predict"
    cfg = compose_config("predict", [f"input={NIR}", f"output={out}", "progress=false"], output_dir=tmp_path / "run")
    assert not pipeline.run(cfg).failed
    expected = np.asarray(Image.open(out / "testing_0000_nir_reg.png").convert("RGB"))
    assert page_png.shape == expected.shape == (256, 256, 3)
    assert np.array_equal(page_png, expected), np.abs(page_png.astype(int) - expected).max()
    browser.save_screenshot(str(tmp_path / "page.png"))
    if os.environ.get("NIR_COLORIZE_SCREENSHOT"):  # the README's picture: NIR_COLORIZE_SCREENSHOT=docs/app.png
        shutil.copy(tmp_path / "page.png", ROOT / os.environ["NIR_COLORIZE_SCREENSHOT"])

    # a text file: a clear message naming it; then the page still works
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    upload_and_colorize(browser, text)
    wait.until(lambda d: log_text(d).startswith("error: notes.txt: unreadable or corrupt image"))
    assert "/tmp" not in log_text(browser)  # the user's file name, not the server's upload path
    assert not browser.find_elements(By.CSS_SELECTOR, "#downloads a")  # nothing stale offered
    upload_and_colorize(browser, NIR)
    assert np.array_equal(result_png(browser), expected)

    # nothing left localhost: every request the page made
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    network = [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")]  # not data:, blob:, chrome:
    assert len(network) > 10 and any("gradio_api" in u for u in network), network[:20]
    assert all(urlparse(u).hostname == "127.0.0.1" for u in network), [u for u in network
                                                                       if urlparse(u).hostname != "127.0.0.1"][:10]


def test_the_page_functions_limits_metrics_and_clips(tmp_path: Path, sample_dir: Path) -> None:
    """What the page does with each request, without a browser: metrics against a ground truth, the size limit,
    a clip through predict's video pipeline."""
    from nir_colorize import app, video
    from nir_colorize.errors import ImageReadError
    from nir_colorize.metrics.functional import per_image

    truth = SAMPLE / "Testing" / "Testing_0000_rgb_reg.png"
    out = tmp_path / "images"
    out.mkdir()
    written, lines, metrics = app.colorize_images([NIR], [NIR.name], "reference", False, 1.0, True, "auto", truth,
                                                  app.Limits(), out)
    rgb = torch.from_numpy(np.asarray(Image.open(written[0]), dtype=np.float32).transpose(2, 0, 1) / 255)[None]
    target = torch.from_numpy(np.asarray(Image.open(truth).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
                              / 255)[None]
    psnr = per_image(rgb, target, ["psnr"])["psnr"].item()
    assert metrics.startswith("PSNR ") and abs(float(metrics.split()[1]) - psnr) < 0.05  # 8-bit PNG against float
    with pytest.raises(ImageReadError, match=r"big\.png: 256x256 is above this page's limit of 0.01 megapixels"):
        app.colorize_images([NIR], ["big.png"], "reference", False, 1.0, True, "auto", None, app.Limits(megapixels=0.01),
                            out)
    frames = [np.asarray(Image.open(NIR).convert("L").resize((96, 64)))]
    clip = video.write_clip(tmp_path / "clip.mp4", video.pan(frames, 4, 2, 0.0), video.Fraction(25))
    seen = []
    mp4, report = app.colorize_clip(clip, "clip.mp4", "reference", False, 1.0, True, "auto", app.Limits(),
                                    tmp_path / "clip", on_frame=lambda done, total: seen.append((done, total)))
    assert mp4.name == "clip.mp4" and mp4.stat().st_size > 0 and "4 frames" in report
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with pytest.raises(ImageReadError, match="above this page's limit of 0.05 s per clip"):
        app.colorize_clip(clip, "clip.mp4", "reference", False, 1.0, True, "auto", app.Limits(clip_seconds=0.05),
                          tmp_path / "clip2")
