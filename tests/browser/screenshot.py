"""Take the README's screenshot of the demo page mid-answer: ``docs/assets/demo.png``.

Run from the repository root: ``python tests/browser/screenshot.py`` (needs chromium and
playwright, like the browser tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parent))

from _demo import running_demo
from conftest import CHROMIUM_ARGS, _chromium

OUT = Path(__file__).resolve().parents[2] / "docs" / "assets" / "demo.png"


def main() -> None:
    executable = _chromium()
    if executable is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    with running_demo("--delay", "0.04") as demo, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 860, "height": 760}, device_scale_factor=1)
        page.goto(demo.url)
        page.fill("#prompt", "What is the weather in Paris?")
        page.click("#send")
        page.wait_for_function("window.llmsseDemo.turns.at(-1)?.finished === true")
        page.fill("#prompt", "Show me some code")
        page.click("#send")
        # Mid-answer: the code block is open and the cursor is blinking after the last word.
        page.wait_for_function("window.llmsseDemo.turns.at(-1)?.text.includes('AsyncOpenAI()')")
        page.screenshot(path=str(OUT))
        browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
