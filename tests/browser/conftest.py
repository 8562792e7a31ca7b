"""The browser tests' harness: the real `villagelink run` stack and Debian's Chromium.

One stack per test session, shared by every file here (under the Makefile's `--dist loadfile`
they all go to one xdist worker: tests/conftest.py): `villagelink run` on
free ports with its own var directory, the demo region seeded small, the console built by
`make console` (a no-op while its build is current). The `browser` fixture (tests/conftest.py:
the Keycloak tests use it too) is Debian's Chromium driven by Playwright's sync API. Every
test here is marked `browser` (through the `browser_stack` fixture, tests/conftest.py).

Helpers: `login` signs in through the development issuer's page, `check_accessible` runs
axe-core in the page and fails on serious or critical violations, `shot` keeps a full-page
screenshot under test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ..processes import Platform, free_ports, run_environment, running

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# Enough people for every screen to have rows, few enough to seed in seconds.
RESIDENTS_PER_VILLAGE = "30"
# How long a page may take to show what a test waits for (a cold build's first load
# included).
UI_TIMEOUT_MS = 15_000
expect.set_options(timeout=UI_TIMEOUT_MS)


# The first test of a session waits for the console's build (when its sources changed) and
# for `villagelink run` to seed and serve, a Keycloak-backed one for Keycloak too.
SETUP_TIMEOUT_S = 900


@pytest.hookimpl(trylast=True)  # after tests/conftest.py has marked them `browser`
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests get the time their stack's start may take, unless they say otherwise."""
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SETUP_TIMEOUT_S))


@dataclass
class Stack:
    """A running `villagelink run` and where a browser reaches it."""

    platform: Platform
    url: str

    @property
    def console(self) -> str:
        return f"{self.url}/console/"


def build_console() -> None:
    """`make console`: npm ci and vite build when the console's sources changed, else nothing."""
    built = subprocess.run(
        ["make", "--no-print-directory", "console"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, f"make console failed:\n{built.stdout}\n{built.stderr}"


def stack_url(ports: dict[str, int]) -> str:
    return f"http://127.0.0.1:{ports['http']}"


def start_stack(var_dir: Path, ports: dict[str, int], **environment: str) -> Iterator[Stack]:
    """`villagelink run` on `ports` until the session ends, then Ctrl-C as a person stops it."""
    env = run_environment(var_dir, ports)
    env.update(DEMO_RESIDENTS_PER_VILLAGE=RESIDENTS_PER_VILLAGE, **environment)
    with running(env) as platform:
        yield Stack(platform, stack_url(ports))
        platform.interrupt()


@pytest.fixture(scope="session")
def browser_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The `make run` stack with the development issuer, for every browser test."""
    build_console()
    yield from start_stack(tmp_path_factory.mktemp("browser-var"), free_ports())


def new_context(browser: Browser, stack: Stack, *, phone: bool, **options) -> BrowserContext:
    """A fresh browser profile (no cookies, no storage) as a village person's would be;
    `options` are Playwright's other context options."""
    context = browser.new_context(
        **options,
        base_url=stack.url,
        viewport=PHONE if phone else DESKTOP,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context


@contextmanager
def opened(browser: Browser, stack: Stack, *, phone: bool, **options) -> Iterator[Page]:
    """A page in a fresh context; at the end, fails if the page's Content-Security-Policy
    refused anything it tried (a script, a connection, an image): the policy must fit the
    console as it is, not be switched off for the tests."""
    context = new_context(browser, stack, phone=phone, **options)
    refused: list[str] = []
    context.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        yield context.new_page()
    finally:
        context.close()
    assert not refused, "refused by the Content-Security-Policy:\n" + "\n".join(refused)


@pytest.fixture
def desktop(browser: Browser, browser_stack: Stack) -> Iterator[Page]:
    """A 1440x900 desktop page, as a village admin or coordinator sees the console."""
    with opened(browser, browser_stack, phone=False) as page:
        yield page


@pytest.fixture
def phone(browser: Browser, browser_stack: Stack) -> Iterator[Page]:
    """A 390x844 phone page with touch, as a grid worker or resident holds it."""
    with opened(browser, browser_stack, phone=True) as page:
        yield page


def login(page: Page, username: str, password: str, app: str = "console") -> None:
    """Sign in through the development issuer's page: open the app (the console, or `h5`
    the residents' app), which sends the browser there, fill in 用户名 and 密码, and wait
    to be back in the app."""
    if "/protocol/openid-connect/auth" not in page.url:
        page.goto(f"/{app}/")
        page.wait_for_url(re.compile(r"/protocol/openid-connect/auth"))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(rf"/{app}/(?!callback)"))


SETTLED = """async () => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve))
  for (let round = 0; round < 5; round++) {
    await frame()
    await frame()
    const running = document.getAnimations().filter(
      (animation) => animation.effect?.getComputedTiming().iterations !== Infinity,
    )
    if (!running.length) return
    await Promise.race([
      Promise.allSettled(running.map((animation) => animation.finished)),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ])
  }
}"""


def check_accessible(page: Page) -> None:
    """axe-core on the page as it is now; fails listing every serious or critical violation."""
    assert AXE.exists(), f"{AXE} is missing: axe-core is a devDependency of console/"
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: a <script> tag would be refused by the
        # page's own Content-Security-Policy, which the tests keep on.
        page.evaluate(AXE.read_text())
    # A dialog fading in, a tag zooming in or a popup closing is half-transparent for a
    # moment: axe then measures the contrast of a frame nobody reads. Wait for every CSS
    # transition and animation running now to end (bounded: an endless spinner must not
    # hang the test), then check the page as it stays. Each round first lets two frames pass:
    # Vue starts a leave transition on the frame after the click, and removes what left (a
    # picker closed with destroy-on-close) only after the transition's end; between those
    # moments no animation runs, yet the old element is still there.
    page.evaluate(SETTLED)
    results = page.evaluate("async () => await window.axe.run(document)")
    serious = [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    found = "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']}\n"
        + "\n".join(f"    {node['target']}: {node['failureSummary']}" for node in v["nodes"])
        for v in serious
    )
    assert not serious, f"accessibility violations on {page.url}:\n{found}"


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact: test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # As the user sees the screen once it is still, as axe checks it: a menu opened by
    # the last click is otherwise caught halfway through its 0.3 s unfolding, its items
    # over the next one.
    page.evaluate(SETTLED)
    page.screenshot(path=str(path), full_page=True)
    return path
