"""The Create and History tabs at 1366x768, in English and in Chinese (issue 13, items 12–14).

One app (the session's shared one, on the tiny model) and two takes in all: the English page
checks what fits on the screen, that the progress bar and the status line agree through a
multi-segment take, and History's columns, Delete and Undo; the Chinese page checks that no
English is left in what it says (voice checks, previews, errors, the take summary), the pinyin
helper and the take's file name. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ..app_server import ARTIFACTS, FAST, SPEAKER, AppServer
from . import test_app_browser
from .test_app_browser import GENERATION_TIMEOUT_MS, set_number

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_app_browser.browser  # the fixture: Debian's chromium under Playwright
WIDTH, HEIGHT = 1366, 768
# Latin words a Chinese message may hold: units, formats, the model's <unk>.
ALLOWED = {"hz", "dbfs", "wav", "flac", "ogg", "mp3", "m4a", "ffmpeg", "unk", "top-p", "top-k", "ms"}


def english_words(text: str, *allowed: str) -> list[str]:
    ok = ALLOWED | {a.lower() for a in allowed}
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9'-]+", text) if w.lower() not in ok]


def open_page(browser, server: AppServer, locale: str):
    context = browser.new_context(locale=locale, viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(server.url)
    expected = "生成" if locale.startswith("zh") else "Generate"
    page.wait_for_function("([sel, text]) => document.querySelector(sel)?.innerText.trim() === text",
                           arg=["#generate", expected])
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-1366-{name}.png"))


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT and box["x"] + box["width"] <= WIDTH


def fast_settings(page) -> None:
    page.locator("#advanced").locator("button").first.click()
    page.locator("#do-sample input").uncheck()
    set_number(page, "#num-beams input[type=number]", FAST["num_beams"])
    set_number(page, "#max-mel-tokens input", FAST["max_mel_tokens"])
    set_number(page, "#diffusion-steps input[type=number]", FAST["diffusion_steps"])


def wait_for_take(page) -> None:
    page.wait_for_selector("#message .itts-ok, #message .itts-error", timeout=GENERATION_TIMEOUT_MS)
    assert page.locator("#message .itts-error").count() == 0, page.locator("#message").inner_text()


def history_rows(page) -> int:
    return page.locator("#history-table .virtual-row").count()


SAMPLE_JS = """() => {
  const m = document.querySelector('#message');
  const st = m?.querySelector('.itts-msg'), pr = m?.querySelector('.progress-level-inner');
  return [st ? st.innerText : '', pr ? pr.innerText : ''];
}"""


def test_english_page_fits_and_progress_agrees_with_the_status(browser, server: AppServer) -> None:
    page = open_page(browser, server, "en-US")
    try:
        # The text box is on the first screen, beside Generate.
        assert in_view(page, "#text textarea") and in_view(page, "#generate")
        shot(page, "en-top")
        page.locator("#voice input[type=file]").set_input_files(str(SPEAKER))
        page.wait_for_selector("#voice-note .itts-ok")
        assert "Voice OK" in page.locator("#voice-note").inner_text()
        fast_settings(page)
        set_number(page, "#segment-tokens input[type=number]", 20)
        page.locator("#text textarea").fill(" ".join(f"Sentence number {n} is here." for n in range(1, 5)))
        page.wait_for_function("() => /[2-9] segment/.test(document.querySelector('#text-preview')?.innerText)",
                               timeout=60_000)
        # Generate stays in view while the settings below the text are scrolled to.
        page.locator("#dur-mode").scroll_into_view_if_needed()
        page.evaluate("() => window.scrollBy(0, 400)")
        assert page.evaluate("() => window.scrollY") > 300 and in_view(page, "#generate")
        shot(page, "en-scrolled")

        page.locator("#generate").click()
        samples = []
        for _ in range(GENERATION_TIMEOUT_MS // 150):
            if page.locator("#message .itts-ok, #message .itts-error").count():
                break
            samples.append(page.evaluate(SAMPLE_JS))
            page.wait_for_timeout(150)
        wait_for_take(page)
        seg = re.compile(r"segment (\d+) of (\d+)", re.IGNORECASE)
        bars, last_pct = 0, -1.0
        for status, bar in samples:
            m, p = seg.search(bar), re.search(r"([\d.]+)\s*%", bar)
            if not (m and p):
                continue
            bars += 1
            n, total, pct = int(m[1]), int(m[2]), float(p[1])
            # The bar never goes back and is not full while the take is made (segments weigh by
            # their share of the text, so a segment's range is not 1/N of the bar)…
            assert last_pct - 0.1 <= pct < 100, (status, bar, last_pct)
            last_pct = pct
            # …and the status line names the same segment, or its neighbour for a moment: Gradio sends
            # the bar (gr.Progress) and the status line (an output of the next yield) as two messages.
            s = seg.search(status)
            if s:
                assert abs(int(s[1]) - n) <= 1 and int(s[2]) == total, (status, bar)
        assert bars, samples[:5]
        assert page.locator("#message .progress-level-inner").count() == 0  # no bar left over the result
        assert "**" not in page.locator("#take-info").inner_text()

        # History: every column in view at 1366 px; Delete can be undone.
        page.locator("#tab-history-button").click()
        page.locator("#history-table [data-testid='cell-0-1']").wait_for()
        table = page.locator("#history-table").bounding_box()
        heads = page.locator("#history-table th")
        for i, name in ((4, "Length"), (5, "Seed")):
            box = heads.nth(i).bounding_box()
            assert name in heads.nth(i).inner_text() and box["width"] >= 40
            assert box["x"] + box["width"] <= min(table["x"] + table["width"], WIDTH) + 1, (name, box, table)
        before = history_rows(page)
        first_text = page.locator("#history-table [data-testid='cell-0-1']").inner_text()
        page.locator("#history-table [data-testid='cell-0-1']").click()
        page.wait_for_function("() => !document.querySelector('#history-delete')?.disabled")
        page.locator("#history-delete").click()
        page.locator("#history-undo").wait_for(state="visible")
        page.wait_for_function("(n) => document.querySelectorAll('#history-table .virtual-row').length === n",
                               arg=before - 1)
        assert "Undo" in page.locator("#history-message").inner_text()
        shot(page, "en-deleted")
        page.locator("#history-undo").click()
        page.wait_for_function("() => document.querySelector('#history-message')?.innerText.includes('back')")
        # The message and the table are two outputs: the table may be drawn a moment later.
        page.wait_for_function("(n) => document.querySelectorAll('#history-table .virtual-row').length === n",
                               arg=before)
        assert page.locator("#history-table [data-testid='cell-0-1']").inner_text() == first_text
        assert not page.locator("#history-undo").is_visible()
    finally:
        page.context.close()

    # "Use these settings again" on a fresh page (no voice yet) describes the voice it brings back.
    page = open_page(browser, server, "en-US")
    try:
        assert "No voice yet" in page.locator("#voice-note").inner_text()
        page.locator("#tab-history-button").click()
        page.locator("#history-table [data-testid='cell-0-1']").click()
        page.wait_for_function("() => !document.querySelector('#history-reuse')?.disabled")
        page.locator("#history-reuse").click()
        page.wait_for_selector("#voice-note .itts-ok, #voice-note .itts-warn")
        assert "No voice yet" not in page.locator("#voice-note").inner_text()
    finally:
        page.context.close()


def _clip(path: Path, seconds: float, level: float) -> Path:
    t = np.arange(int(seconds * 22050)) / 22050
    sf.write(path, level * np.sin(2 * np.pi * 220 * t), 22050, subtype="PCM_16")
    return path


def test_chinese_page_says_everything_in_chinese(browser, server: AppServer, tmp_path: Path) -> None:
    page = open_page(browser, server, "zh-CN")
    try:
        assert in_view(page, "#text textarea") and in_view(page, "#generate")
        # The page is built in English and switches on load; the preview is written again after it.
        page.wait_for_function("() => document.querySelector('#text-preview')?.innerText.includes('模型实际')"
                               " && !document.querySelector('#text-preview .progress-text')")
        for sel in ("#text-preview", "#voice-note"):
            text = page.locator(sel).inner_text()
            assert not english_words(text), (sel, text)
        shot(page, "zh-top")

        # A silent clip is refused in Chinese and never joins Recent voices.
        page.locator("#voice input[type=file]").set_input_files(str(_clip(tmp_path / "hush.wav", 5.0, 0.0)))
        page.wait_for_selector("#voice-note .itts-error")
        assert "静音" in page.locator("#voice-note").inner_text()
        assert "hush" not in page.locator("#recent-voices").inner_text()
        page.locator("#voice input[type=file]").wait_for(state="attached")  # the refused clip left the box
        # A 1-second clip is loaded, not "OK", with a warning in Chinese.
        page.locator("#voice input[type=file]").set_input_files(str(_clip(tmp_path / "short.wav", 1.0, 0.3)))
        page.wait_for_selector("#voice-note .itts-warn")
        note = page.locator("#voice-note").inner_text()
        assert "太短" in note and "音色可用" not in note and not english_words(note), note

        # Invalid pinyin: said once, in Chinese.
        page.locator("#text textarea").fill("重[xx9]要")
        page.wait_for_selector("#pinyin-error")
        preview = page.locator("#text-preview").inner_text()
        assert preview.count("xx9") == 1 and not english_words(preview, "xx9", "hao3"), preview

        # The pinyin helper: real choices only, and it says it adds a reading.
        page.locator("#text textarea").fill("我们不了大重要")
        page.locator("#pinyin-acc").get_by_text("拼音助手").click()
        page.wait_for_function("() => document.querySelector('#pinyin-note')?.innerText.includes('多音字')")
        page.locator("#pinyin-char input").click()
        options = page.get_by_role("option").all_inner_texts()
        assert any(o.startswith("重 ") for o in options), options
        assert not any(o[:1] in "们不了大" for o in options), options
        page.get_by_role("option", name=re.compile("^重 ")).click()
        page.locator("#pinyin-reading label", has_text="chong2").click()
        page.locator("#pinyin-insert").click()
        page.wait_for_function("() => document.querySelector('#text textarea')?.value === '我们不了大重[chong2]要'")
        assert "将读作 chong2" in page.locator("#pinyin-message").inner_text()

        # A value out of range is refused in Chinese, in the status line, with no English pop-up
        # (the 1-second clip stays the voice: usable, with a warning).
        page.locator("#text textarea").fill("我们今天很开心")
        page.get_by_label("精确时长（秒）").check()
        set_number(page, "#target-seconds input", 700)
        page.locator("#generate").click()
        page.wait_for_selector("#message .itts-error")
        message = page.locator("#message").inner_text()
        assert "目标时长" in message and not english_words(message), message
        assert page.locator(".toast-body").count() == 0
        shot(page, "zh-out-of-range")

        # A Chinese take: its summary renders (no ** left) and its file name holds the text.
        set_number(page, "#target-seconds input", 2.0)
        fast_settings(page)
        page.locator("#generate").click()
        page.wait_for_selector("#message .itts-error", state="detached")  # the refusal above is replaced
        wait_for_take(page)
        info = page.locator("#take-info").inner_text()
        assert "**" not in info and "时长" in info and "-wo-men-jin-tian-" in info, info
        shot(page, "zh-take")
    finally:
        page.context.close()
