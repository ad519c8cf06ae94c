"""Accessibility checks in Chromium: axe-core's WCAG 2.1 A/AA rules on a page with every
expander and tab opened, the Tab presses to a control, sideways scroll, touch-target sizes.

axe-core comes inside the `axe-playwright-python` wheel (requirements-dev.txt), injected into
the page: nothing is fetched. Not for: starting the server or the browser (tests.helpers.browser).
"""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

from tests.helpers.browser import wait_idle

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
_AXE = Axe()


CLOSED = '[data-testid="stExpander"] details:not([open]) > summary:visible'  # in the tab shown now
# The same in the page's own terms: every closed expander that can be seen, clicked at once.
OPEN_SEEN_JS = """() => {
    const closed = [...document.querySelectorAll('[data-testid="stExpander"] details:not([open]) > summary')]
        .filter(s => s.checkVisibility());
    closed.forEach(s => s.click());
    return closed.length;
}"""
# An expander or a tab opens with a short animation (its content fading in): axe, looking mid-way,
# reads the text's colour blended with the page's (a contrast it never has: seen once, #...b9 on
# white). axe looks when every animation that ends has ended.
SETTLED_JS = """() => document.getAnimations().every(
    a => a.playState !== 'running' || a.effect.getComputedTiming().iterations === Infinity)"""


def open_everything(page) -> None:
    """Open every closed expander that can be seen (in the tab shown now), a level at a time (one
    may hold another): one click each, all of a level in one call (one Playwright click each,
    with its own wait, took a minute of the module's six). Fails when one stays closed: a check
    said to cover every expander must have opened it."""
    for _ in range(10):
        if page.evaluate(OPEN_SEEN_JS):
            wait_idle(page)
        elif page.locator(CLOSED).count():  # drawn since (a busy box draws a page in waves): look again
            page.wait_for_timeout(500)
        else:
            break
    left = page.locator(CLOSED).all_inner_texts()
    assert not left, f"expanders still closed: {left}"


def failing_nodes(page) -> list[str]:
    """axe's failing nodes (WCAG 2.1 A/AA) on the page as it is, one line each: rule, impact, what."""
    page.wait_for_function(SETTLED_JS)
    response = _AXE.run(page, options=AXE_OPTIONS).response
    return [
        f"{v['id']} ({v['impact']}): {n['html'][:160]} -- {(n['any'] or n['all'] or n['none'] or [{'message': ''}])[0]['message']}"
        for v in response["violations"]
        for n in v["nodes"]
    ]


def failing_nodes_everywhere(page) -> list[str]:
    """axe on the page with every expander open, in each of its tabs; and the options that the
    page's pills and segmented controls hide (which axe does not see)."""
    open_everything(page)
    found = failing_nodes(page) + hidden_options(page)
    tabs = page.locator('[data-testid="stMain"] [role="tab"]')
    for i in range(tabs.count()):
        tabs.nth(i).click()
        wait_idle(page)
        open_everything(page)
        found += [f"tab {i + 1}: {line}" for line in failing_nodes(page) + hidden_options(page)]
    return found


# Options of a pills row or a segmented control (a button group) drawn outside the box that shows
# them: Streamlit keeps a group placed straight in a column on one row that scrolls sideways, and
# page 4's last two strategies were out of sight at 1280 px (and on a projector) until scrolled to.
HIDDEN_OPTIONS_JS = """() => {
    const out = [];
    for (const group of document.querySelectorAll('[data-testid="stMain"] [data-testid="stButtonGroup"]')) {
        if (!group.checkVisibility()) continue;
        for (const b of group.querySelectorAll('button')) {
            if (b.closest('[data-testid="stTooltipIcon"]')) continue;  // the label's help
            const r = b.getBoundingClientRect();
            for (let box = b.parentElement; box && box !== group.parentElement; box = box.parentElement) {
                if (getComputedStyle(box).overflowX === 'visible') continue;
                const o = box.getBoundingClientRect();
                if (r.left < o.left - 1 || r.right > o.right + 1) { out.push(b.innerText.trim().slice(0, 40)); break; }
            }
        }
    }
    return out;
}"""


def hidden_options(page) -> list[str]:
    """'option out of sight: <its text>' for each option of a visible button group outside its row's box."""
    return [f"option out of sight: {text}" for text in page.evaluate(HIDDEN_OPTIONS_JS)]


SIDEWAYS_JS = """() => {
    const boxes = [document.documentElement, document.body,
        ...document.querySelectorAll('[data-testid="stApp"], [data-testid="stAppViewContainer"], [data-testid="stMain"], .stMainBlockContainer')];
    return Math.max(0, ...boxes.map(b => b.scrollWidth - b.clientWidth));
}"""


def sideways_px(page) -> int:
    """How far the page can be scrolled sideways (0: it fits the screen's width)."""
    return page.evaluate(SIDEWAYS_JS)


SMALL_TARGETS_JS = """(least) => {
    const found = [];
    for (const el of document.querySelectorAll('[data-testid="stMain"] :is(button, [role="tab"], summary, a[href])')) {
        const r = el.getBoundingClientRect();
        if (!r.width || !r.height) continue;  // not drawn (a closed expander's content)
        // Streamlit's and Plotly's own: a chart's toolbar, a heading's "Link to heading" (shown on hover only)
        if (el.closest('.js-plotly-plot, [data-testid="stElementToolbar"], [data-testid="stHeaderActionElements"]')) continue;
        if (el.closest('[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"]')) continue;  // a link inside a sentence (WCAG 2.5.5's inline exception)
        if (r.height < least) found.push(`${Math.round(r.height)} px: ${(el.innerText || el.getAttribute('aria-label') || el.tagName).slice(0, 40)}`);
    }
    return found;
}"""


def small_targets(page, least: int = 44) -> list[str]:
    """The app's controls shorter than `least` px (touch targets)."""
    return page.evaluate(SMALL_TARGETS_JS, least)


FOCUS_JS = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return {key: '', visible: false, text: ''};
    let key = '';
    for (let p = el; p && p.classList; p = p.parentElement)
        for (const c of p.classList) if (!key && c.startsWith('st-key-')) key = c;
    const r = el.getBoundingClientRect();
    let visible = r.width > 0 && r.height > 0;
    for (let p = el; p && p.nodeType === 1 && visible; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (s.visibility === 'hidden' || s.display === 'none' || parseFloat(s.opacity) === 0) visible = false;
    }
    const style = getComputedStyle(el);  // the focus ring: an outline of 2 px or more, or a box-shadow ring
    const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== 'none';
    return {key, visible, ring, text: (el.innerText || el.getAttribute('aria-label') || el.tagName).slice(0, 60)};
}"""


def focused(page) -> dict:
    """The focused element: its Streamlit key class (st-key-...), whether it can be seen, whether
    its focus ring shows, its text."""
    return page.evaluate(FOCUS_JS)


def tabs_to(page, key: str, most: int = 150, trail: list | None = None) -> tuple[int, list[str]]:
    """Press Tab from where the focus is until the control with Streamlit key class `key` has
    it: (presses, the stops on the way that could not be seen, or whose focus ring could not,
    the target's own included). (most + 1, ...) if never.
    `trail`, when given, collects every stop's text (for a failure's message)."""
    invisible = []
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        now = focused(page)
        if trail is not None:
            trail.append(now["key"] or now["text"][:30])
        if now["text"] in ("", "BODY"):  # (the browser's own stop after the page's last)
            continue
        if not now["visible"]:
            invisible.append(now["text"])
        elif not now["ring"]:
            invisible.append(f"no focus ring: {now['text']}")
        if now["key"] == key:
            return presses, invisible
    return most + 1, invisible


def from_the_top(page, key: str) -> None:
    """Wait until the control with key class `key` is drawn, then put the browser's focus
    starting point back at the top of the document, as a fresh page load has it (a focus a
    late redraw moved, or Chromium's remembered starting point, would count from elsewhere)."""
    page.locator(f".{key}").first.wait_for()
    # The sidebar's timer re-runs its fragment 3 s after the page is up (and draws the hidden chart
    # that loads Plotly): let that pass first, as a learner reading the page would, so a redraw
    # does not land mid-count (a count of 40-52 instead of 15 was seen twice in a full module run).
    page.wait_for_timeout(3_500)
    page.evaluate(
        """() => { const b = document.body; b.setAttribute('tabindex', '-1'); b.focus();
                   b.removeAttribute('tabindex'); window.scrollTo(0, 0); }"""
    )


def tabs_from_the_top(page, key: str, most: int, trail: list | None = None) -> tuple[int, list[str]]:
    """`from_the_top`, then `tabs_to(key)`; once more when that took over `most` presses or passed
    a stop that could not be seen. On a busy box a fragment's redraw can land mid-count and move
    the focus back (seen: 40-52 presses instead of 15, now and then, in full runs); a page whose
    order is really long or hidden fails both counts. Returns the better of the two."""
    counts = []
    for _try in range(2):
        from_the_top(page, key)
        presses, invisible = tabs_to(page, key, trail=trail)
        counts.append((presses, invisible))
        if presses <= most and not invisible:
            break
    return min(counts, key=lambda c: (bool(c[1]), c[0]))


# Every sentence put in the page's live regions, in order (studio.page_frame.PAGE_JS makes them).
LISTEN_JS = """() => {
    window.__said = [];
    for (const id of ['tls-live', 'tls-alert']) {
        const region = document.getElementById(id);
        new MutationObserver(() => { if (region.textContent) window.__said.push(id + ': ' + region.textContent); })
            .observe(region, {childList: true, characterData: true, subtree: true});
    }
    window.__focusKeys = [];
    document.addEventListener('focusin', (e) => {
        for (let p = e.target; p && p.classList; p = p.parentElement)
            for (const c of p.classList) if (c.startsWith('st-key-')) { window.__focusKeys.push(c); return; }
    }, true);
}"""


def listen(page) -> None:
    """Collect what the page's live regions say from now on (`window.__said`), once the page
    frame has put both regions in the page: they come with its script, which can land after the
    page's text on a busy box (seen once in a fresh clone's run: no region to observe yet)."""
    page.wait_for_function("() => document.getElementById('tls-live') && document.getElementById('tls-alert')")
    page.evaluate(LISTEN_JS)
