"""The Dub subtitles and Voices tabs in a real browser, on the tiny model, with an app of its own
(this module kills it mid-job and starts it again).

A creator saves two voices (one with a default emotion), dubs a 5-cue SRT, gets a track whose
cues start at their exact sample positions and last exactly their durations, makes one cue again
with edited text (its player and the rebuilt track get the new take); then the app is killed
while a job runs, started again, and the job finishes with its finished cues untouched. After
the restart the Create tab picks a saved voice with its emotion, and a batch line is made again.
With ``INDEXTTS_UPDATE_README_SCREENSHOT=1`` the README's ``assets/dub.png`` is refreshed.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ..app_server import ARTIFACTS, REPO, SPEAKER, AppServer, start_app
from . import test_app_browser
from .test_app_browser import audio_href, fast_settings, upload_voice

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OTHER = REPO / "tests" / "fixtures" / "golden" / "audio" / "emo_librivox_0920_22k.wav"
JOB_TIMEOUT_MS = 300_000
SR = 22050


def _srt(n: int) -> str:
    cues = []
    for i in range(n):
        start, end = 0.3 + i * 0.9, 0.3 + i * 0.9 + 0.4 + 0.05 * i
        who = ("Anna: ", "Ben: ", "")[i % 3]
        cues.append(f"{i + 1}\n{_ts(start)} --> {_ts(end)}\n{who}Hello, this is line {i + 1}.\n")
    return "\n".join(cues)


def _ts(s: float) -> str:
    ms = round(s * 1000)
    return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"


def _cue_samples(text: str) -> list[tuple[int, int]]:
    import srt

    return [(round(c.start.total_seconds() * SR), round(c.end.total_seconds() * SR)) for c in srt.parse(text)]


def _done(server: AppServer, job: int) -> dict[int, str]:
    """Finished items of a job, read from its database without touching it (the app owns it)."""
    db = server.output_dir / "takes" / "jobs" / "jobs.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT idx, output FROM items WHERE job_id=? AND state='done'", (job,)).fetchall()
    return dict(rows)


browser = test_app_browser.browser  # the fixture: Debian's chromium under Playwright


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dub-app")


def _open(browser, server: AppServer):
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#generate")
    return page


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _pick(page, selector: str, option: str) -> None:
    page.locator(f"{selector} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def _save_voice(page, name: str, clip: Path, emotion: str | None = None) -> None:
    page.locator("#voices-clip input[type=file]").set_input_files(str(clip))
    page.locator("#voices-name input").fill(name)
    if emotion is not None:
        _pick(page, "#voices-emotion", emotion)
    page.locator("#voices-save").click()
    page.wait_for_function("(n) => document.querySelector('#voices-message')?.innerText.includes(n)",
                           arg=f"Saved “{name}”")


def dub_screenshot(page) -> None:
    """The README picture: the Dub tab from the tab bar down, cues and track (small palette PNG)."""
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    raw = ARTIFACTS / "browser-dub.png"
    page.screenshot(path=str(raw), full_page=True)
    full = Image.open(raw).convert("RGB")
    top = round(page.locator("#tabs").bounding_box()["y"] + page.evaluate("() => window.scrollY")) - 8
    part = full.crop((0, max(top, 0), full.width, full.height))
    small = part.resize((1120, round(part.height * 1120 / part.width)), Image.LANCZOS)
    small = small.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(ARTIFACTS / "dub.png", optimize=True)
    if os.environ.get("INDEXTTS_UPDATE_README_SCREENSHOT"):
        small.save(REPO / "assets" / "dub.png", optimize=True)


def _wait_done(page, n: int, prefix: str = "dub") -> None:
    page.wait_for_function("([s, t]) => document.querySelector(s)?.innerText.startsWith(t)",
                           arg=[f"#{prefix}-progress", f"{n} of {n} done"], timeout=JOB_TIMEOUT_MS)


def _wait_audio(page, selector: str, wanted: bytes) -> None:
    """Until the player at ``selector`` holds exactly ``wanted`` (it follows the job by itself)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        link = page.locator(f"{selector} a[download]")
        if link.count() and page.request.get(link.first.get_attribute("href")).body() == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"{selector} never played the new take")


def test_dub_five_cues_two_voices_regenerate_then_survive_a_kill(browser, workdir, tiny_model_dir, tmp_path):
    server = start_app(tiny_model_dir, workdir)
    try:
        page = _open(browser, server)
        upload_voice(page)  # the default voice, for the cues that name no speaker
        fast_settings(page)
        _tab(page, "Voices")
        _save_voice(page, "Anna", SPEAKER)
        _save_voice(page, "Ben", OTHER, "Sad")

        _tab(page, "Dub subtitles")
        text = _srt(5)
        subs = tmp_path / "scene.srt"
        subs.write_text(text, encoding="utf-8")
        page.locator("#dub-file input[type=file]").set_input_files(str(subs))
        page.locator("#dub-start").click()
        page.wait_for_selector("#dub-message .itts-ok, #dub-message .itts-warn, #dub-message .itts-error")
        assert page.locator("#dub-message .itts-error").count() == 0, page.locator("#dub-message").inner_text()
        _wait_done(page, 5)
        rows = page.locator("#dub-table .virtual-row")
        assert rows.count() == 5 and "Ben" in rows.nth(1).inner_text()

        page.locator("#dub-build").click()
        page.wait_for_selector("#dub-dl-track", state="visible")
        assert page.locator("#dub-message .itts-ok").count() == 1, page.locator("#dub-message").inner_text()
        track, sr = sf.read(io.BytesIO(page.request.get(audio_href(page, "#dub-track")).body()), dtype="int16")
        cues = _cue_samples(text)
        assert sr == SR and len(track) == cues[-1][1]
        made = _done(server, 1)
        silent = np.ones(len(track), bool)
        for i, (start, end) in enumerate(cues):
            take = sf.read(made[i], dtype="int16")[0]
            assert len(take) == end - start and (track[start:end] == take).all()
            silent[start:end] = False
        assert not track[silent].any()

        # Click cue 2, edit its line, make it again: only that take changes.
        before = {i: Path(p).read_bytes() for i, p in made.items()}
        page.locator("#dub-table [data-testid='cell-1-4']").click()
        page.wait_for_function("() => !document.querySelector('#dub-regen')?.disabled")
        page.locator("#dub-cue-text textarea").fill("Goodbye, line two.")
        page.locator("#dub-regen").click()
        page.wait_for_function("() => document.querySelector('#dub-table')?.innerText.includes('Goodbye, line two.')",
                               timeout=JOB_TIMEOUT_MS)
        _wait_done(page, 5)
        after = {i: Path(p).read_bytes() for i, p in _done(server, 1).items()}
        assert after[1] != before[1] and all(after[i] == before[i] for i in (0, 2, 3, 4))
        _wait_audio(page, "#dub-cue-audio", after[1])  # the cue's player follows without a click
        # The track built before held the old take: it is taken away, and built again it has the new one.
        assert page.locator("#dub-dl-track").is_hidden()
        page.locator("#dub-build").click()
        page.wait_for_selector("#dub-dl-track", state="visible")
        track, sr = sf.read(io.BytesIO(page.request.get(audio_href(page, "#dub-track")).body()), dtype="int16")
        assert (track[cues[1][0]:cues[1][1]] == sf.read(io.BytesIO(after[1]), dtype="int16")[0]).all()
        dub_screenshot(page)

        # A longer job; kill the app once two cues are made.
        long = tmp_path / "long.srt"
        long.write_text(_srt(12), encoding="utf-8")
        page.locator("#dub-file input[type=file]").set_input_files(str(long))
        page.locator("#dub-start").click()
        deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
        while len(_done(server, 2)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        server.process.kill()
        server.process.wait(timeout=10)
        page.context.close()
        kept = {i: Path(p).read_bytes() for i, p in _done(server, 2).items()}
        assert 2 <= len(kept) < 12
    finally:
        server.stop()

    server = start_app(tiny_model_dir, workdir)  # same output folder: the job resumes by itself
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
        while len(_done(server, 2)) < 12 and time.monotonic() < deadline:
            time.sleep(0.5)
        done = _done(server, 2)
        assert len(done) == 12
        assert {i: Path(done[i]).read_bytes() for i in kept} == kept
        page = _open(browser, server)
        _tab(page, "Dub subtitles")
        _pick(page, "#dub-job", "#2 long")
        _wait_done(page, 12)

        # The Create tab picks a saved voice from the library: its clip and its default emotion.
        _tab(page, "Create")
        _pick(page, "#saved-voice", "Ben")
        page.wait_for_function("() => document.querySelector('#emo-note')?.innerText.includes('“Ben”')")
        assert page.locator("#emo-label input").input_value() == "Sad"
        assert page.locator("#voice-note .itts-ok, #voice-note .itts-warn").count() == 1

        # A batch line made again with edited text; the ZIP's manifest carries the edit.
        _tab(page, "Batch")
        lines = tmp_path / "lines.txt"
        lines.write_text("First line.\nSecond line.\n", encoding="utf-8")
        page.locator("#batch-file input[type=file]").set_input_files(str(lines))
        page.locator("#batch-start").click()
        _wait_done(page, 2, "batch")
        page.locator("#batch-table [data-testid='cell-1-2']").click()
        page.wait_for_function("() => !document.querySelector('#batch-regen')?.disabled")
        assert page.locator("#batch-line-text textarea").input_value() == "Second line."
        page.locator("#batch-line-text textarea").fill("Second line, edited.")
        page.locator("#batch-regen").click()
        page.wait_for_function("() => document.querySelector('#batch-table')?.innerText.includes('line, edited')",
                               timeout=JOB_TIMEOUT_MS)
        _wait_done(page, 2, "batch")
        _wait_audio(page, "#batch-audio", Path(_done(server, 3)[1]).read_bytes())
        page.locator("#batch-build").click()
        page.wait_for_selector("#batch-dl", state="visible")
        with page.expect_download() as dl:
            page.locator("#batch-dl").click()
        with zipfile.ZipFile(dl.value.path()) as z:
            manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode())))
        assert [m["text"] for m in manifest] == ["First line.", "Second line, edited."]
        page.context.close()
    finally:
        server.stop()
