"""The web chat in a real browser (Debian's headless Chromium through selenium): answers, cards, inert abstracts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tests.conftest import ROOT, free_port, missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(autouse=True)
def _needs_chromium():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        missing("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")

MARK = "window.__pwned=1;alert(1)"
HOSTILE = {
    "title": f'Quokka <script>{MARK}</script><img src=x onerror="{MARK}"> Zebra Transformers',
    "authors": ["Eve <b>Mallory</b>", "Trudy Intruder"],
    "abstract": (
        "We introduce the quokka zebra transformer, a model that recognises zebras from quokka-eye views. "
        f'It contains <img src=x onerror="{MARK}"> and <script>{MARK}</script> tags. '
        f"Read more at [click me](javascript:{MARK}) or https://evil.example/steal and www.evil.example today. "
        "As shown in prior work [7], quokka zebra transformers reach 99.9% accuracy on the zebra benchmark. "
        "Also **bold** and `code` and $$x^2$$ stay plain text, as does ![img](https://evil.example/x.png)."
    ),
    "arxiv_id": "2401.00001",
    "date": "2024-01-02",
}
UKNOW = "How many nodes and triplets does the UKnow knowledge graph contain?"


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def url(seeded, tmp_path):
    from ui.app import build_app, launch_options

    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    assert seeded.ingest(hostile, progress=False).added == 1
    demo = build_app(seeded)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def assert_nothing_injected(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - raises when no alert() ran
    assert driver.execute_script("return window.__pwned") is None
    assert driver.find_elements(By.CSS_SELECTOR, "img[src='x'], a[href^='javascript'], img[src*='evil']") == []
    hrefs = {a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#chatbot a, #paper-detail a")}
    assert all(h.startswith("https://arxiv.org/abs/") for h in hrefs), hrefs


def test_chat_in_a_browser(browser, url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)

    def cards() -> list:
        return browser.find_elements(By.CSS_SELECTOR, "#chatbot .rag-card")

    def answered(count: int) -> None:
        wait.until(lambda d: len(cards()) >= count and not d.find_elements(By.CSS_SELECTOR, "#chatbot .rag-streaming"))

    browser.get(url)
    examples = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chatbot button.example"))
    assert "What FID did SMaRt reach on ImageNet 64x64?" in [e.text for e in examples]
    next(e for e in examples if "SMaRt" in e.text).click()  # an example question on first load
    answered(1)
    answer = browser.find_elements(By.CSS_SELECTOR, "#chatbot .rag-answer")[-1]
    assert "improve FID from 8.87 to 7.11" in answer.text
    assert any("FID from 8.87 to 7.11" in m.text for m in answer.find_elements(By.CSS_SELECTOR, ".rag-card mark"))

    box = browser.find_element(By.CSS_SELECTOR, "#question textarea")
    box.send_keys(UKNOW, Keys.ENTER)
    answered(2)
    answer = browser.find_elements(By.CSS_SELECTOR, "#chatbot .rag-answer")[-1]
    assert "1,388,568 nodes" in answer.text and "[1]" in answer.find_element(By.CSS_SELECTOR, ".rag-ref").text
    card = answer.find_element(By.CSS_SELECTOR, ".rag-card")
    link = card.find_element(By.CSS_SELECTOR, "a.rag-arxiv")
    assert link.get_attribute("href") == "https://arxiv.org/abs/2302.06891" and link.text == "arXiv:2302.06891"
    browser.save_screenshot(str(tmp_path / "chat.png"))
    assert (tmp_path / "chat.png").stat().st_size > 10_000
    if os.environ.get("RAG_UPDATE_SCREENSHOT"):  # refresh the README's picture on purpose, never as a side effect
        shutil.copyfile(tmp_path / "chat.png", ROOT / "docs" / "screenshot.png")

    # A hostile abstract renders as text: no alert, no injected element, no link but arXiv's.
    box.send_keys("What accuracy do quokka zebra transformers reach?", Keys.ENTER)
    answered(3)
    answer = browser.find_elements(By.CSS_SELECTOR, "#chatbot .rag-answer")[-1]
    assert "<script>" in answer.text and "[click me](javascript:" in answer.text
    assert len(answer.find_elements(By.CSS_SELECTOR, ".rag-card")) == 1  # the abstract's "[7]" is not a citation
    assert_nothing_injected(browser)
    browser.save_screenshot(str(tmp_path / "hostile.png"))

    # Reloading shows the conversation again, each answer with its own sources.
    browser.refresh()
    wait.until(lambda d: len(cards()) == 3)
    assert_nothing_injected(browser)

    # A new conversation keeps this one in the list; picking it there reopens it, sources and all.
    browser.find_element(By.CSS_SELECTOR, "#new-conversation").click()
    wait.until(lambda d: not cards())
    listed = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#conversations label"))
    assert len(listed) == 1 and listed[0].text.startswith("What FID did SMaRt reach on ImageNet 64x64? · ")
    listed[0].click()
    wait.until(lambda d: len(cards()) == 3)
    assert browser.find_element(By.CSS_SELECTOR, "#download-conversation").is_displayed()
    # A hostile first question titles its conversation as text.
    browser.find_element(By.CSS_SELECTOR, "#new-conversation").click()
    wait.until(lambda d: not cards())
    browser.find_element(By.CSS_SELECTOR, "#question textarea").send_keys(
        f'Quokka zebra accuracy <img src=x onerror="{MARK}">?', Keys.ENTER)
    listed = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#conversations label")[1:] and
                        d.find_elements(By.CSS_SELECTOR, "#conversations label"))
    assert listed[0].text.startswith("Quokka zebra accuracy <img src=x onerror=")
    assert_nothing_injected(browser)
    browser.save_screenshot(str(tmp_path / "conversations.png"))

    # Papers tab: search, select the hostile paper, see its record and provenance as text.
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Papers')]").click()
    query = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#paper-query textarea"))
    query.send_keys("quokka zebra", Keys.ENTER)
    first = wait.until(lambda d: [c for c in d.find_elements(By.CSS_SELECTOR, "#papers [data-testid='cell-0-0']")
                                  if "Quokka" in c.text])
    first[0].click()
    detail = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#paper-detail .rag-paper"))[0]
    assert "hostile.jsonl:1" in detail.text and HOSTILE["title"] in detail.text
    assert_nothing_injected(browser)
    browser.save_screenshot(str(tmp_path / "papers.png"))
