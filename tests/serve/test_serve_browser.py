"""The web demo in a real browser: headless system Chromium driven by Selenium.

install.sh installs Debian's `chromium` and `chromium-driver`; these tests skip (saying so) only
where no Chromium is installed. Screenshots are kept under test-artifacts/ (git-ignored).
"""

import shutil

import pytest

from serve_helpers import ROOT, running_server, wait_for

pytest.importorskip("starlette", reason="the web demo needs the demo extra: pip install -e '.[demo]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -e '.[test]'")

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="no system Chromium + chromedriver (install.sh installs Debian's "
                                       "chromium and chromium-driver; apt-get install chromium chromium-driver)")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("serve_browser")
    with running_server(tiny_model_dir, outputs, "--max-seconds", "120", "--chunk-seconds", "0.25") as url:
        yield url


def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1000",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(DRIVER))


def page_state(driver) -> dict:
    return driver.execute_script("""
        const p = document.getElementById('player');
        return {live: document.body.dataset.live || null, first: document.body.dataset.firstAudio || null,
                liveSeconds: Number(document.body.dataset.liveSeconds || 0), clock: window.ssmusicLiveClock(),
                duration: p.duration, src: p.getAttribute('src'), status: document.getElementById('status').textContent,
                error: document.getElementById('error').textContent,
                history: document.querySelectorAll('#history li:not(#history-empty)').length};""")


def request_music(driver, url: str, prompt: str, seconds: float, load: bool = True) -> None:
    from selenium.webdriver.common.by import By

    if load:
        driver.get(url + "/")
    wait_for(lambda: driver.find_element(By.ID, "top_k").get_attribute("value"))  # defaults loaded
    box = driver.find_element(By.ID, "prompt")
    box.clear()
    box.send_keys(prompt)
    field = driver.find_element(By.ID, "seconds")
    field.clear()
    field.send_keys(str(seconds))
    driver.find_element(By.ID, "generate").click()


def expected_duration(seconds: float) -> float:
    return round(seconds * 22050) / 22050  # exactly what was asked for, to the sample


def check_finished(driver, seconds: float) -> dict:
    state = wait_for(lambda: (s := page_state(driver))["status"].startswith("Done") and s["duration"] and s)
    assert abs(state["duration"] - expected_duration(seconds)) < 1e-3  # the <audio> element holds the request
    assert abs(state["liveSeconds"] - expected_duration(seconds)) < 1e-3  # and all of it was played live
    return state


def test_prompt_generate_hear_it_while_generated(server):
    driver = browser()
    try:
        request_music(driver, server, "a calm piano piece", 30)
        # playing while generated: the live clock runs past the first piece before generation ends
        playing = wait_for(lambda: (s := page_state(driver))["live"] == "playing" and s)
        start = playing["clock"]["time"]
        wait_for(lambda: page_state(driver)["clock"]["time"] > start)
        assert float(playing["first"]) > 0 and playing["clock"]["state"] == "running"
        state = check_finished(driver, 30)
        assert state["history"] == 1 and state["error"] == ""
        assert driver.execute_script("return document.getElementById('spectrogram').naturalWidth") > 0
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve_page.png"))
        assert (ARTIFACTS / "serve_page.png").stat().st_size > 0
        request_music(driver, server, "   ", 5)  # an empty prompt: a message on the page, no crash
        wait_for(lambda: "prompt" in page_state(driver)["error"])
        request_music(driver, server, "way too long", 1e6)
        wait_for(lambda: "seconds" in page_state(driver)["error"])
    finally:
        driver.quit()


def test_two_visitors_at_once_both_get_their_audio(server):
    first, second = browser(), browser()
    try:
        request_music(first, server, "a long organ chorale", 60)
        wait_for(lambda: page_state(first)["status"].startswith("Generating"))
        second.get(server + "/")
        second.execute_script("""window.seenStatus = [];
            new MutationObserver(() => window.seenStatus.push(document.getElementById('status').textContent))
              .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true});""")
        request_music(second, server, "a short flute tune", 2, load=False)
        check_finished(first, 60)
        check_finished(second, 2)
        # the second visitor waited behind the first (--concurrency 1) and was told so
        assert any("place 1 in the queue" in text for text in second.execute_script("return window.seenStatus"))
    finally:
        first.quit()
        second.quit()
