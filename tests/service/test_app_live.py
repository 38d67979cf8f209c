"""``archcast serve`` as a real process on 127.0.0.1: a device agent pushes to it (the client and
``archcast profile --push``), and headless Chromium uses the web page.

The browser is Debian's ``chromium`` driven by selenium through ``/usr/bin/chromedriver`` (nothing
is downloaded); without them the browser test skips with the reason. Screenshots go to the test's
temporary directory, or to ``$ARCHCAST_SCREENSHOT_DIR`` (the README's come from
``ARCHCAST_SCREENSHOT_DIR=benchmarks/results``), and are checked for the chart's pixels.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from archcast.frontends import load_graph
from archcast.graph.ir import NetGraph, Node
from archcast.profile import Measurement, Platform
from archcast.service.auth import create_token
from archcast.store import Store

pytestmark = pytest.mark.subprocess
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "src" / "archcast" / "examples" / "resnet18.onnx"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
BAR = (0x4C, 0x72, 0xB0)  # style.css --bar
POINT = (0xDD, 0x84, 0x52)  # style.css --meas (scatter points, 75 % opaque)


def tiny(i: int) -> NetGraph:
    w = 8 * (i + 1)
    return NetGraph([Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 32, 32)], [(1, w, 32, 32)], flops=27 * w * 1024 * 2,
                          params=27 * w),
                     Node("relu", "Relu", {}, [(1, w, 32, 32)], [(1, w, 32, 32)])], [(0, 1)], name=f"conv{w}").validate()


def _get(url: str, token: str | None = None) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A seeded SQLite team store and ``archcast serve`` on a free port; yields (url, store path, write token)."""
    from archcast.service.predict import load_predictor

    root = tmp_path_factory.mktemp("live")
    db = root / "team.db"
    store = Store(db)
    platform = Platform.from_dict(load_predictor().checkpoint_config_["platform"])  # the shipped predictor's
    for batch, ms in ((1, 33.6), (2, 61.0), (4, 118.0)):
        g = load_graph(str(EXAMPLE), input_shapes={"input": (batch, 3, 224, 224)}, name=f"resnet18-b{batch}")
        fp = store.add_graph(g, family="resnet")
        store.record(fp, platform, Measurement.from_times([ms, ms * 1.02, ms * 0.99], warmup_runs=2, batch_size=batch))
    fp = store.graph_info(load_graph(str(EXAMPLE)).fingerprint())["fingerprint"]
    store.record(fp, platform, Measurement.from_times([34.5, 35.0, 34.8], warmup_runs=2, batch_size=1))  # history
    for i in range(6):
        fp = store.add_graph(tiny(i), family="convs")
        store.record(fp, platform, Measurement.from_times([0.05 * (i + 1) ** 1.6] * 3, warmup_runs=1, batch_size=1))
    token = create_token(store, "agent", "write")
    store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(root / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "archcast.cli", "serve", "--port", str(port), "--db", str(db),
                             "--threads", "1"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            _get(url + "/healthz")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"archcast serve did not start: {(root / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield url, db, token
    proc.terminate()
    try:
        proc.wait(3)  # a graceful stop takes ~2 s; a lingering keep-alive must not hold the suite
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# ---------------------------------------------------------------------------- device agents
def test_push_store_sends_only_what_the_server_lacks(server, tmp_path):
    from archcast.service.client import PushError, push_store

    url, _, token = server
    local = Store(tmp_path / "device.db")
    plat = Platform("agent-cpu", device="agent-device", runtime_version="0")
    for i in range(3):
        fp = local.add_graph(tiny(10 + i), family="agent-fam")
        local.record(fp, plat, Measurement.from_times([1.0 + i, 1.1 + i], warmup_runs=1, batch_size=1, host="dev1"))
    with pytest.raises(PushError, match="HTTP 401"):
        push_store(url, local, platform_id=plat.platform_id)
    first = push_store(url, local, platform_id=plat.platform_id, token=token)
    assert (first.pushed, first.already) == (3, 0)
    again = push_store(url, local, platform_id=plat.platform_id, token=token)
    assert (again.pushed, again.already) == (0, 3)  # idempotent: nothing is stored twice
    rows = _get(url + "/v1/measurements?family=agent-fam")["items"]
    assert sorted(r["latency_ms_median"] for r in rows) == pytest.approx([1.05, 2.05, 3.05])
    assert {r["host"] for r in rows} == {"dev1"} and {r["platform_name"] for r in rows} == {"agent-cpu"}


def test_profile_push_measures_and_pushes(server, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    url, _, token = server
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.1] * 108)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "tinyconv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [w])
    model = tmp_path / "tinyconv.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    r = subprocess.run([sys.executable, "-m", "archcast.cli", "profile", "--onnx", str(model), "--db",
                        str(tmp_path / "dev.db"), "--workers", "0", "--min-runs", "3", "--min-time", "0",
                        "--no-progress", "--push", url],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "ARCHCAST_TOKEN": token})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pushed 1 measurements" in r.stdout
    fp = load_graph(str(model)).fingerprint()
    g = _get(f"{url}/v1/graphs/{fp}")
    assert g["op_counts"] == {"Conv": 1} and g["measurements"][0]["status"] == "ok"
    assert g["measurements"][0]["latency_ms_median"] > 0


# ---------------------------------------------------------------------------- the web page in Chromium
def _browser(profile_dir: Path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"headless browser test needs Debian's chromium and chromium-driver (missing {', '.join(missing)}): "
                    "apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", "--window-size=1366,900"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)


def _pixels_like(png: Path, rgb: tuple[int, int, int], tol: int = 40) -> int:
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < tol).sum())


def _shot(driver, name: str, tmp_path: Path) -> Path:
    out = Path(os.environ.get("ARCHCAST_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    # the whole page, not just the first screen
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1366, max(900, min(int(height) + 40, 4000)))
    path = out / f"serve-{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1366, 900)
    return path


def test_web_page_in_headless_chromium(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    driver = _browser(tmp_path / "chromium-profile")
    wait = WebDriverWait(driver, 60)
    try:
        # predict page: upload the shipped example
        driver.get(url + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#platform option")) > 0)
        driver.find_element(By.ID, "file").send_keys(str(EXAMPLE))
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "latency").text.strip() != "")
        shown = float(driver.find_element(By.ID, "latency").text)
        truth = _predict_api(url)
        assert shown == pytest.approx(truth["latency_ms"], rel=0.01) and 10 < shown < 200
        assert "interval" in driver.find_element(By.ID, "interval").text
        assert "Measured in the store: 34.8 ms" in driver.find_element(By.ID, "measured").text
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect.op")
        assert len(bars) == 15
        assert "Conv" in driver.find_element(By.ID, "optypes").text
        assert "Unknown op types" in driver.find_element(By.ID, "unknown").text
        png = _shot(driver, "predict", tmp_path)
        assert _pixels_like(png, BAR) > 3000  # the bars and the headline are really drawn

        # store page: platforms, families, measurements, and the predicted-vs-measured scatter
        driver.get(url + "/store")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#measurements tr")) > 1)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scatter circle.pt")) >= 5)
        assert "ort-cpu-1t" in driver.find_element(By.ID, "platforms").text
        assert "resnet" in driver.find_element(By.ID, "families").text
        assert "resnet18-b2" in driver.find_element(By.ID, "measurements").text
        png = _shot(driver, "store", tmp_path)
        assert _pixels_like(png, POINT, tol=90) > 100

        # a graph's history, reached by clicking it
        driver.find_element(By.LINK_TEXT, "resnet18-b1").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history tr")) > 2)
        hist = driver.find_element(By.ID, "history").text
        assert "34.8" in hist and "33.6" in hist and "(current)" in hist
        png = _shot(driver, "graph", tmp_path)
        assert _pixels_like(png, BAR) > 500
    finally:
        driver.quit()


def _predict_api(url: str) -> dict:
    boundary = "archcastboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"resnet18.onnx\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + EXAMPLE.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/v1/predict", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())
