"""nlpseq-serve as a client sees it: answers, one-line refusals, batching, the page in a
real browser."""

import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import nlpseq  # noqa: E402
from nlpseq.serving.app import create_app  # noqa: E402
from tests.integration.conftest import error_line, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def model(trained_run):
    return nlpseq.load(trained_run)


def test_predict_answers_the_rows_of_the_python_api(model):
    with TestClient(create_app(model)) as client:
        answer = client.post("/predict", json={"texts": ["a gripping film", "dull"]})
        assert answer.status_code == 200
        rows = answer.json()["results"]
        expected = model.predict(["a gripping film", "dull"])
        assert [row["label"] for row in rows] == [row["label"] for row in expected]
        assert rows[1]["probability"] == pytest.approx(expected[1]["probability"], abs=1e-5)
        health = client.get("/health").json()
        assert (health["status"], health["task"]) == ("ok", "sentiment")
        assert "/docs" in client.get("/").text and client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(("request_args", "status", "message"), [
    ({"json": {"texts": []}}, 422, "texts: List should have at least 1 item"),
    ({"json": {"texts": ["x" * 1_000_001]}}, 413,
     "texts[0] is too long: 1,000,001 characters (at most 10,000)"),
    ({"json": {"texts": ["  "]}}, 400, "texts[0] is empty"),
    ({"content": b'{"texts": [', "headers": {"content-type": "application/json"}}, 422,
     "the body is not valid JSON"),
    ({"json": ["a text"]}, 422, 'the body must be a JSON object: {"texts"'),
    ({"json": {"texts": ["x"], "temprature": 0.5}}, 422, "unknown option 'temprature'"),
    ({"json": {"texts": ["x"], "beam_size": 5}}, 400,
     "beam_size: not an option of a sentiment model"),
    ({"json": {"texts": "just one"}}, 422, "texts: Input should be a valid list"),
    ({"content": b'{"texts": ["\\ud800"]}', "headers": {"content-type": "application/json"}},
     400, "texts[0] is not valid Unicode: character 0 is a lone surrogate (U+D800)"),
])
def test_bad_requests_get_one_line_and_the_server_goes_on(model, request_args, status,
                                                            message):
    with TestClient(create_app(model)) as client:
        answer = client.post("/predict", **request_args)
        assert answer.status_code == status
        assert message in answer.json()["error"]
        assert "\n" not in answer.json()["error"]
        assert client.post("/predict", json={"texts": ["dull"]}).status_code == 200


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_requests_share_batches_only_when_batching_is_on(model, batching):
    app = create_app(model, max_wait_ms=300, batching=batching)
    texts = [f"film number {i}" for i in range(12)]
    with TestClient(app) as client, ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda t: client.post("/predict", json={"texts": [t]}), texts))
        batches = client.get("/health").json()["batches_run"]
    assert [a.json()["results"][0]["text"] for a in answers] == texts  # each gets its own
    assert batches < 12 if batching else batches == 12


def test_the_command_refuses_a_missing_checkpoint_in_one_line(tmp_path):
    result = run_cli("serve", f"ckpt_path={tmp_path}/missing.ckpt")
    assert result.returncode == 2
    assert "Checkpoint not found" in error_line(result)


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not (BROWSER and shutil.which("chromedriver")),
                    reason="needs Chromium and chromedriver (Debian: apt install chromium "
                           "chromium-driver)")
def test_the_page_in_a_real_browser(model, tmp_path):
    """Type a sentence into the served page in headless Chromium and read the label."""
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(model), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "texts").send_keys("a gripping film")
        driver.find_element(By.ID, "run").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#result .row"))
        shown = driver.find_element(By.ID, "result").text
        expected = model.predict(["a gripping film"])[0]["label"]
        assert shown.startswith(expected) and "a gripping film" in shown
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 1000
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
