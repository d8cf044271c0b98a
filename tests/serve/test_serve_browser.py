"""The web demo in a real browser: headless system Chromium driven by Selenium.

install.sh installs Debian's `chromium` and `chromium-driver`; these tests skip (saying so) only
where no Chromium is installed. Screenshots are kept under test-artifacts/ (git-ignored).
"""

import shutil
import time
import urllib.parse

import pytest

from serve_helpers import EXAMPLES, ROOT, Proxy, model_with_card, running_server, wait_for

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
    model = model_with_card(tiny_model_dir, outputs)
    with running_server(model, outputs, "--max-seconds", "120", "--chunk-seconds", "0.25") as url:
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


@pytest.fixture
def driver():
    chromium = browser()
    yield chromium
    chromium.quit()


def page_state(driver) -> dict:
    return driver.execute_script("""
        const p = document.getElementById('player'), text = (id) => document.getElementById(id).textContent;
        const shown = (id) => getComputedStyle(document.getElementById(id)).display !== 'none';
        return {live: document.body.dataset.live || null, first: document.body.dataset.firstAudio || null,
                liveSeconds: Number(document.body.dataset.liveSeconds || 0), clock: window.ssmusicLiveClock(),
                player: window.ssmusicPlayer(), liveTime: text('live-time'), queue: text('queue'),
                duration: p.duration, src: p.getAttribute('src'), paused: p.paused, currentTime: p.currentTime,
                status: text('status'), error: text('error'), lost: shown('lost'), liveShown: shown('live'),
                playerShown: shown('player'),
                lostText: text('lost-text'), secondsError: text('seconds-error'), promptError: text('prompt-error'),
                history: document.querySelectorAll('#history li.entry').length};""")


def request_music(driver, url: str, prompt: str, seconds: float | str, load: bool = True) -> None:
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


def click(driver, element_id: str) -> None:
    driver.execute_script(f"document.getElementById('{element_id}').click()")


def expected_duration(seconds: float) -> float:
    return round(seconds * 22050) / 22050  # exactly what was asked for, to the sample


def check_finished(driver, seconds: float) -> dict:
    state = wait_for(lambda: (s := page_state(driver))["status"].startswith("Done") and s["duration"] and s)
    assert abs(state["duration"] - expected_duration(seconds)) < 1e-3  # the <audio> element holds the request
    wait_for(lambda: abs(page_state(driver)["liveSeconds"] - expected_duration(seconds)) < 1e-3)  # all played live
    return state


def test_prompt_generate_hear_it_while_generated(server, driver):
    request_music(driver, server, "a calm piano piece", 30)
    # playing while generated: the live clock runs past the first piece before generation ends
    playing = wait_for(lambda: (s := page_state(driver))["live"] == "playing" and s)
    start = playing["clock"]["time"]
    wait_for(lambda: page_state(driver)["clock"]["time"] > start)
    assert float(playing["first"]) > 0 and playing["clock"]["state"] == "running"
    # the player shows where playback is, against the whole duration, while it is still generated
    assert playing["liveTime"].endswith("/ 0:30.0")
    later = wait_for(lambda: (s := page_state(driver))["player"]["position"] > 0.5 and s)
    assert later["liveTime"] != "0:00.0 / 0:30.0" and later["status"].startswith("Generating")
    state = check_finished(driver, 30)
    assert state["error"] == "" and not state["lost"]
    wait_for(lambda: page_state(driver)["history"] == 1)  # saved in this browser
    assert driver.execute_script("return document.getElementById('spectrogram').naturalWidth") > 0
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "serve_page.png"))
    assert (ARTIFACTS / "serve_page.png").stat().st_size > 0


def test_examples_from_the_models_card_fill_the_prompt_in_light_and_dark(server, driver):
    from selenium.webdriver.common.by import By

    driver.get(server + "/")
    chips = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#example-list .chip"))
    assert [chip.text for chip in chips if chip.is_displayed()] == [e["prompt"] for e in EXAMPLES[:4]]
    driver.find_element(By.CSS_SELECTOR, "#example-list .more-chip").click()  # "1 more…"
    assert [chip.text for chip in chips if chip.is_displayed()] == [e["prompt"] for e in EXAMPLES]
    assert "a tiny test model" in driver.find_element(By.ID, "card-summary").text
    assert driver.find_element(By.ID, "card-not").text == "music"
    chips[1].click()
    assert driver.find_element(By.ID, "prompt").get_attribute("value") == EXAMPLES[1]["prompt"]
    assert driver.find_element(By.ID, "seconds").get_attribute("value") == str(EXAMPLES[1]["seconds"])
    background = "return getComputedStyle(document.body).backgroundColor"
    light = driver.execute_script(background)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    assert driver.execute_script(background) != light  # a dark theme, not just the light one


def test_bad_numbers_are_refused_inline_and_nothing_is_sent(server, driver):
    for typed, message in (("ten", "Enter a number"), ("5,5", "Use a point for decimals: 5.5"),
                           ("1000000", "up to 120 seconds"), ("", "Enter the duration in seconds")):
        request_music(driver, server, "a calm piano piece", typed)
        state = wait_for(lambda: (s := page_state(driver))["secondsError"] and s)
        assert message in state["secondsError"] and state["error"] == "Fix the highlighted field first."
        assert state["status"] == "" and state["player"] is None  # no request went out
    request_music(driver, server, "   ", 5)
    assert "Describe the music" in page_state(driver)["promptError"]
    driver.find_element("id", "seconds").clear()
    driver.find_element("id", "seconds").send_keys("5.5")
    assert page_state(driver)["secondsError"] == ""  # corrected as typed


def test_two_visitors_at_once_see_the_queue_and_both_get_their_audio(server):
    first, second = browser(), browser()
    try:
        request_music(first, server, "a long organ chorale", 60)
        wait_for(lambda: page_state(first)["status"].startswith("Generating"))
        second.get(server + "/")
        second.execute_script("""window.seenQueue = [];
            new MutationObserver(() => window.seenQueue.push(document.getElementById('queue').textContent))
              .observe(document.getElementById('queue'), {childList: true, characterData: true, subtree: true});""")
        request_music(second, server, "a short flute tune", 2, load=False)
        check_finished(first, 60)
        check_finished(second, 2)
        # the second visitor waited behind the first (--concurrency 1), was told so, and for how long
        seen = second.execute_script("return window.seenQueue")
        assert any(text.startswith("Place 1 in the queue · about ") for text in seen), seen
    finally:
        first.quit()
        second.quit()


def test_cancel_stops_the_music_at_once(server, driver):
    request_music(driver, server, "a long tune to cancel", 60)
    wait_for(lambda: (s := page_state(driver))["live"] == "playing" and s["player"]["level"] > 0)  # sounding
    click(driver, "cancel")
    state = page_state(driver)
    assert state["status"] == "Cancelled" and state["player"]["stopped"] and state["player"]["sources"] == 0
    time.sleep(0.3)
    for _ in range(5):  # what reaches the output: nothing, at once (no scheduled or streamed audio left)
        assert page_state(driver)["player"]["level"] == 0
        time.sleep(0.1)
    assert driver.find_element("id", "generate").is_enabled()


def test_a_lost_connection_is_shown_and_retry_picks_the_job_up_again(server, driver):
    proxy = Proxy(urllib.parse.urlsplit(server).port)
    try:
        request_music(driver, f"http://127.0.0.1:{proxy.port}", "a tune over a bad line", 40)
        wait_for(lambda: (s := page_state(driver))["live"] == "playing" and s["status"].startswith("Generating"))
        proxy.cut()  # the server is gone, as far as the page can tell
        lost = wait_for(lambda: (s := page_state(driver))["lost"] and s)
        assert lost["lostText"].startswith("Connection lost") and not lost["status"].startswith("Done")
        time.sleep(1.0)
        proxy.restore()
        click(driver, "retry")
        wait_for(lambda: not page_state(driver)["lost"])
        check_finished(driver, 40)  # the same job finished, and its audio was all played, none twice
    finally:
        proxy.cut()


def test_history_is_kept_in_the_browser_and_replays_after_a_reload(server, driver):
    from selenium.webdriver.common.by import By

    request_music(driver, server, "a tune to keep", 2)
    check_finished(driver, 2)
    wait_for(lambda: page_state(driver)["history"] == 1)
    wait_for(lambda: (s := page_state(driver))["playerShown"] and not s["liveShown"])  # live over: the file's player
    driver.refresh()
    entry = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#history li.entry"))[0]
    assert "a tune to keep" in entry.text
    entry.find_element(By.CSS_SELECTOR, ".play").click()
    state = wait_for(lambda: (s := page_state(driver))["currentTime"] > 0.2 and s)
    assert state["src"].startswith("blob:") and abs(state["duration"] - 2.0) < 1e-3  # from the browser, not the server
