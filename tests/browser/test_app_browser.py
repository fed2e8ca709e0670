"""The app in a real browser (Debian's chromium driven by Playwright), on the tiny model.

One app process (shared with the API tests) and one browser page go through what a creator
does: upload a voice, type a line, pick an emotion, ask for exactly 3.0 s, generate, play and
download; render variants; reuse a take from History; switch the language; make mistakes and
read what the page says. Screenshots go to ``test-artifacts/``; with
``INDEXTTS_UPDATE_README_SCREENSHOT=1`` the README's ``assets/screenshot.png`` is refreshed too.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ..app_server import ARTIFACTS, FAST, REPO, SPEAKER, AppServer, shared_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TARGET_SECONDS = 3.0
TARGET_SAMPLES = round(TARGET_SECONDS * 22050)
GENERATION_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it before the browser tests run")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           tiny_model_dir: Path) -> AppServer:
    return shared_app(request.config, tmp_path_factory, tiny_model_dir)


def new_page(browser, server: AppServer, locale: str = "en-US"):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#generate")
    # The page switches to the browser's language on load.
    expected = "生成" if locale.startswith("zh") else "Generate"
    page.wait_for_function("([sel, text]) => document.querySelector(sel)?.innerText.trim() === text",
                           arg=["#generate", expected])
    return page


@pytest.fixture(scope="module")
def page(browser, server: AppServer):
    page = new_page(browser, server)
    yield page
    page.context.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def set_number(page, selector: str, value: float) -> None:
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Enter")


def upload_voice(page) -> None:
    page.locator("#voice input[type=file]").set_input_files(str(SPEAKER))
    page.wait_for_selector("#voice-note .itts-ok")


def fast_settings(page) -> None:
    """Open Advanced and make takes quick on the tiny model (greedy, 1 beam, few tokens and steps)."""
    page.locator("#advanced").get_by_text("Advanced settings").click()
    if FAST["do_sample"] is False:
        page.locator("#do-sample input").uncheck()
    set_number(page, "#num-beams input[type=number]", FAST["num_beams"])
    set_number(page, "#max-mel-tokens input", FAST["max_mel_tokens"])
    set_number(page, "#diffusion-steps input[type=number]", FAST["diffusion_steps"])


def fetch_wav(page, url: str) -> tuple[np.ndarray, int, str]:
    body = page.request.get(url).body()
    info = sf.info(io.BytesIO(body))
    audio, sr = sf.read(io.BytesIO(body), dtype="int16")
    return audio, sr, info.subtype


def browser_decoded_seconds(page, url: str) -> float:
    """Decode the file in the page with Web Audio: proves the browser can play it."""
    return page.evaluate("""async (url) => {
        const data = await (await fetch(url)).arrayBuffer();
        const ctx = new OfflineAudioContext(1, 1, 22050);
        const buf = await ctx.decodeAudioData(data);
        return buf.duration;
    }""", url)


def audio_href(page, selector: str) -> str:
    link = page.locator(f"{selector} a[download]").first
    link.wait_for(state="attached")
    return link.get_attribute("href")


def test_generate_exact_length_play_and_download(page, tmp_path: Path) -> None:
    upload_voice(page)
    assert "22050 Hz" in page.locator("#voice-note").inner_text()
    page.locator("#text textarea").fill("Hello there, this is a short test.")
    page.wait_for_function("() => document.querySelector('#text-preview')?.innerText.includes('segment')")
    fast_settings(page)

    page.get_by_label("Pick an emotion").check()
    page.locator("#emo-label input").click()
    page.get_by_role("option", name="Sad").click()
    set_number(page, "#emo-intensity input[type=number]", 1.0)
    page.locator("#emo-mix").get_by_text("Mix all 8 emotions").click()
    page.wait_for_function("() => document.querySelector('#emo-vec-sad input[type=number]')?.value === '1'")
    assert page.locator("#emo-vec-happy input[type=number]").input_value() == "0"

    page.get_by_label("Exact length (seconds)").check()
    seconds = page.locator("#target-seconds input")
    seconds.fill(str(TARGET_SECONDS))
    seconds.press("Tab")

    page.locator("#generate").click()
    page.wait_for_selector("#message .itts-ok, #message .itts-error", timeout=GENERATION_TIMEOUT_MS)
    assert page.locator("#message .itts-error").count() == 0, page.locator("#message").inner_text()
    info = page.locator("#take-info").inner_text()
    assert "3.00 s" in info and "test model" in info

    # The take in the page: a 22.05 kHz 16-bit WAV of exactly 3.0 s that the browser decodes.
    href = audio_href(page, "#take-audio")
    audio, sr, subtype = fetch_wav(page, href)
    assert (len(audio), sr, subtype) == (TARGET_SAMPLES, 22050, "PCM_16")
    assert browser_decoded_seconds(page, href) == pytest.approx(TARGET_SECONDS, abs=1e-3)
    assert np.abs(audio).max() <= 32767

    # The download button gives the same file.
    with page.expect_download() as dl:
        page.locator("#take-download").click()
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    assert saved.suffix == ".wav"
    data, sr = sf.read(saved, dtype="int16")
    assert (len(data), sr, sf.info(saved).subtype) == (TARGET_SAMPLES, 22050, "PCM_16")
    assert np.array_equal(data, audio)
    shot(page, "1-generated")
    readme_screenshot(page)


def readme_screenshot(page) -> None:
    """The README picture: the top of the page after a take (small palette PNG)."""
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    raw = ARTIFACTS / "screenshot-full.png"
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(raw), clip={"x": 0, "y": 0, "width": 1400, "height": 1000})
    small = Image.open(raw).convert("RGB").resize((1120, 800), Image.LANCZOS)
    small = small.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(ARTIFACTS / "screenshot.png", optimize=True)
    if os.environ.get("INDEXTTS_UPDATE_README_SCREENSHOT"):
        (REPO / "assets").mkdir(exist_ok=True)
        small.save(REPO / "assets" / "screenshot.png", optimize=True)


def test_three_variants_side_by_side(page) -> None:
    picked = page.locator("#variant-pick input:checked")
    # Defaults: calm, happy, sad, angry; untick angry to render three.
    page.locator("#variant-pick label", has_text="Angry").click()
    assert picked.count() == 3
    page.locator("#variants-generate").click()
    page.wait_for_selector("#variants-message .itts-ok, #variants-message .itts-error",
                           timeout=GENERATION_TIMEOUT_MS)
    assert "3 variant" in page.locator("#variants-message").inner_text()
    labels = []
    for i in range(3):
        slot = f"#variant-{i}"
        assert page.locator(slot).is_visible()
        labels.append(page.locator(slot).get_by_test_id("block-label").inner_text())
        audio, sr, subtype = fetch_wav(page, audio_href(page, slot))
        assert (len(audio), sr, subtype) == (TARGET_SAMPLES, 22050, "PCM_16")
    assert page.locator("#variant-3").count() == 0 or not page.locator("#variant-3").is_visible()
    assert [re.sub(r" ·.*", "", x).strip() for x in labels] == ["Happy", "Sad", "Calm (neutral)"]
    shot(page, "2-variants")


def test_history_lists_takes_and_reuses_settings(page, server: AppServer) -> None:
    page.locator("#tab-history-button").click()
    rows = page.locator("#history-table .virtual-row")
    rows.first.wait_for()
    assert rows.count() >= 4  # the take and its three variants
    assert str(server.output_dir / "takes") in page.locator("#history-folder").inner_text()
    page.locator("#history-table [data-testid='cell-0-1']").click()
    page.wait_for_function("() => document.querySelector('#history-info')?.innerText.includes('seed')")
    page.locator("#history-reuse").click()
    page.wait_for_selector("#tab-synth", state="visible")
    assert page.locator("#text textarea").input_value() == "Hello there, this is a short test."
    assert float(page.locator("#target-seconds input").input_value()) == pytest.approx(TARGET_SECONDS)
    shot(page, "3-history-reused")


def test_switch_language_to_chinese_and_back(page) -> None:
    from playwright.sync_api import expect

    page.locator("#lang label", has_text="中文").click()
    expect(page.locator("#generate")).to_have_text("生成")
    expect(page.locator("#tab-history-button")).to_have_text("历史记录")
    expect(page.locator("#voice")).to_contain_text("音色参考")
    expect(page.locator("#generate")).to_have_attribute("title", re.compile("^用所选音色"))
    shot(page, "4-chinese")
    page.locator("#lang label", has_text="English").click()
    expect(page.locator("#generate")).to_have_text("Generate")
    expect(page.locator("#tab-history-button")).to_have_text("History")
    expect(page.locator("#generate")).to_have_attribute("title", re.compile("^Read the text"))


def test_bad_inputs_say_what_to_do(browser, server: AppServer) -> None:
    page = new_page(browser, server)
    try:
        page.locator("#generate").click()
        page.wait_for_selector("#message .itts-error")
        assert "Add a voice first" in page.locator("#message").inner_text()
        shot(page, "5a-no-voice")

        # A voice used before is one click away.
        page.locator("#recent-voices button").first.click()
        page.wait_for_selector("#voice-note .itts-ok")
        page.locator("#generate").click()
        page.wait_for_function("() => document.querySelector('#message')?.innerText.includes('Type the text')")
        shot(page, "5b-empty-text")

        page.locator("#text textarea").fill("今天天气很{好|hao6}。")
        page.wait_for_selector("#pinyin-error")
        assert "hao6" in page.locator("#pinyin-error").inner_text()
        page.locator("#generate").click()
        page.wait_for_function("() => document.querySelector('#message')?.innerText.includes('invalid pinyin')")
        assert "hao6" in page.locator("#message").inner_text()
        assert page.locator("#text textarea").input_value() == "今天天气很{好|hao6}。", "inputs are kept"
        shot(page, "5c-invalid-pinyin")
    finally:
        page.context.close()


def test_pinyin_helper_inserts_the_chosen_reading(page) -> None:
    page.locator("#text textarea").fill("我们最重要的是开心")
    page.locator("#pinyin-acc").get_by_text("Pinyin helper").click()
    page.wait_for_function("() => document.querySelector('#pinyin-note')?.innerText.includes('several readings')")
    page.locator("#pinyin-char input").click()
    page.get_by_role("option", name=re.compile("^重 ")).click()
    page.locator("#pinyin-reading label", has_text="chong2").click()
    page.locator("#pinyin-insert").click()
    page.wait_for_function("() => document.querySelector('#text textarea')?.value === '我们最重[chong2]要的是开心'")
    assert "chong2" in page.locator("#pinyin-message").inner_text()
    page.wait_for_function("() => document.querySelector('#text-preview')?.innerText.includes('CHONG2')")
    assert page.locator("#pinyin-error").count() == 0
    shot(page, "6-pinyin-helper")


def test_stop_ends_a_long_take_and_the_next_one_runs(page) -> None:
    page.locator("#tab-synth-button").click()
    page.locator("#text textarea").fill(" ".join(f"Sentence number {n} is here." for n in range(1, 13)))
    set_number(page, "#segment-tokens input[type=number]", 20)
    set_number(page, "#diffusion-steps input[type=number]", 10)  # slower segments: Stop lands mid-take
    page.wait_for_function("() => /[2-9] segment/.test(document.querySelector('#text-preview')?.innerText)",
                           timeout=60_000)
    page.locator("#generate").click()
    # Inside the first segment already: codes or diffusion steps, and then the time left.
    page.wait_for_function("() => /segment 1 of \\d+: (\\d+ speech codes|diffusion step)/"
                           ".test(document.querySelector('#message')?.innerText)", timeout=GENERATION_TIMEOUT_MS)
    page.wait_for_function("() => /s left/.test(document.querySelector('#message')?.innerText)",
                           timeout=GENERATION_TIMEOUT_MS)
    shot(page, "8-progress-inside-a-segment")
    # Past the first segment (the screenshot takes a moment, so segment 2 may be done already).
    page.wait_for_function("() => +(/segment (\\d+) of/.exec(document.querySelector('#message')?.innerText)"
                           " || [0, 0])[1] >= 2", timeout=GENERATION_TIMEOUT_MS)
    page.locator("#stop").click()
    page.wait_for_function("() => document.querySelector('#message')?.innerText.includes('Stopped')")
    shot(page, "8-stopped")
    page.wait_for_timeout(1500)
    assert "Stopped" in page.locator("#message").inner_text(), "the page stays on the Stopped line"
    page.locator("#text textarea").fill("Short again.")
    set_number(page, "#segment-tokens input[type=number]", 120)
    set_number(page, "#diffusion-steps input[type=number]", FAST["diffusion_steps"])
    page.locator("#generate").click()
    page.wait_for_selector("#message .itts-ok, #message .itts-error", timeout=GENERATION_TIMEOUT_MS)
    assert page.locator("#message .itts-ok").count() == 1, page.locator("#message").inner_text()


def test_status_panel_unload_and_load(page) -> None:
    page.locator("#tab-status-button").click()
    panel = page.locator("#status-panel")
    panel.get_by_text("tiny test model").wait_for()
    assert "cpu" in panel.inner_text() and "ready" in panel.inner_text()
    page.locator("#unload-model").click()
    page.wait_for_function("() => document.querySelector('#status-message')?.innerText.includes('unloaded')")
    assert "unloaded" in panel.inner_text()
    shot(page, "7-status-unloaded")
    page.locator("#load-model").click()
    page.wait_for_function("() => document.querySelector('#status-panel')?.innerText.includes('ready')")
