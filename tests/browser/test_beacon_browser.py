"""An ATS page on another origin embeds failtrack-beacon.js; a recruiter's view is recorded."""

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from failures.models import RecruitingEvent
from integrations.beacon import tracking_keys_forget
from integrations.ingest import deliveries_process_pending
from integrations.models import InboundDelivery
from integrations.services import tracking_key_create
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ATS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Acme ATS - application app-1</title>
<style>
  body {{ font-family: sans-serif; margin: 2rem; background: #f4f6f8; }}
  .card {{ background: white; border-radius: 6px; padding: 1.5rem; max-width: 40rem;
           box-shadow: 0 1px 3px rgba(0,0,0,.15); }}
  .stage {{ display: inline-block; background: #dde7f5; padding: .2rem .6rem; border-radius: 4px; }}
  #tracking {{ color: #555; font-size: .9rem; margin-top: 1rem; }}
</style></head>
<body>
  <div class="card">
    <h1>Application app-1</h1>
    <p>Candidate <code>cand-7</code> for job <code>job-9</code> (Platform engineer)</p>
    <p>Stage: <span class="stage">Phone Screen</span></p>
    <button>Advance</button> <button>Reject</button>
    <p id="tracking">failtrack beacon: loading...</p>
  </div>
  <script src="{script}" data-token="{token}" data-application-id="app-1" data-job-id="job-9"
          data-actor-id="user-42" data-actor-role="recruiter"></script>
  <script>
    document.getElementById("tracking").textContent =
      window.failtrack ? "failtrack beacon: reporting to " + window.failtrack.endpoint
                       : "failtrack beacon: not loaded";
  </script>
</body></html>
"""


@pytest.fixture
def ats_site() -> Iterator[Callable[[str], str]]:
    """A tiny web server on its own origin; set(html) serves a page and returns its URL."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"

    def serve(html: str, path: str = "/applications/app-1") -> str:
        pages[path] = html.encode()
        return origin + path

    serve.origin = origin  # type: ignore[attr-defined]
    yield serve
    server.shutdown()
    server.server_close()


def _page_with_key(live_server, ats_site, connection, allowed: str) -> str:
    _, token = tracking_key_create(actor=None, connection=connection, allowed_origins=[allowed])
    tracking_keys_forget()
    script = f"{live_server.url}/static/integrations/failtrack-beacon.js"
    return ats_site(ATS_PAGE.format(script=script, token=token))


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_recruiter_view_on_the_ats_page_is_recorded(
    live_server, page, screenshot, ats_site, connection, org, superuser
):
    # Given an ATS page on its own origin, embedding our script with a key for that origin
    url = _page_with_key(live_server, ats_site, connection, allowed=ats_site.origin)
    script_requests: list[str] = []
    page.on(
        "request",
        lambda r: script_requests.append(r.url) if r.url.endswith("beacon.js") else None,
    )

    # When a recruiter opens the application, looks at it for a moment and leaves
    page.goto(url)
    page.wait_for_function("window.failtrack !== undefined")
    assert "reporting to" in page.inner_text("#tracking")
    page.wait_for_timeout(400)
    screenshot(page, "beacon-ats-page")
    page.goto("about:blank")  # pagehide: the view is reported with sendBeacon

    # Then the script came from our live server, and the view is stored and recorded
    assert script_requests == [f"{live_server.url}/static/integrations/failtrack-beacon.js"]
    assert _wait_for(lambda: InboundDelivery.objects.exists()), "no beacon arrived"
    delivery = InboundDelivery.objects.get()
    assert delivery.headers["origin"] == ats_site.origin
    deliveries_process_pending()
    event = RecruitingEvent.objects.get()
    assert event.organization == org and event.kind == "application.viewed"
    assert event.payload["actor"] == {"id": "user-42", "role": "recruiter"}
    details = event.payload["details"]
    assert details["application_id"] == "app-1" and details["job_id"] == "job-9"
    assert details["origin"] == ats_site.origin
    assert details["duration_ms"] >= 300

    # and an operator sees it in the event log of the admin
    page.goto(f"{live_server.url}/admin/login/?next=/admin/failures/recruitingevent/")
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert "application.viewed" in page.inner_text("#result_list")
    screenshot(page, "beacon-event-recorded")


def test_a_page_on_an_origin_the_key_does_not_allow_is_refused(
    live_server, page, ats_site, connection
):
    # Given a key that allows only the real ATS origin, embedded on some other site
    url = _page_with_key(live_server, ats_site, connection, allowed="https://ats.example.com")
    page.goto(url)
    page.wait_for_function("window.failtrack !== undefined")

    # When the view is reported
    with page.expect_response(lambda r: "/api/v1/beacon/" in r.url) as answer:
        assert page.evaluate("window.failtrack.end()") is True

    # Then the beacon is refused and nothing is stored
    assert answer.value.status == 403
    assert InboundDelivery.objects.count() == 0


def test_hiding_the_tab_reports_the_view_and_coming_back_starts_another(
    live_server, page, ats_site, connection
):
    url = _page_with_key(live_server, ats_site, connection, allowed=ats_site.origin)
    page.goto(url)
    page.wait_for_function("window.failtrack !== undefined")
    set_visibility = """state => {
        Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""

    # When the recruiter switches to another tab, comes back, then the page reports again
    with page.expect_response(lambda r: "/api/v1/beacon/" in r.url) as first:
        page.evaluate(set_visibility, "hidden")
    page.evaluate(set_visibility, "visible")
    with page.expect_response(lambda r: "/api/v1/beacon/" in r.url) as second:
        assert page.evaluate("window.failtrack.end()") is True

    # Then two views of the same application are stored, each once
    assert (first.value.status, second.value.status) == (202, 202)
    deliveries_process_pending()
    events = RecruitingEvent.objects.filter(kind="application.viewed")
    assert events.count() == 2
    assert {e.payload["details"]["application_id"] for e in events} == {"app-1"}
    # and nothing is left to report once the view has ended
    assert page.evaluate("window.failtrack.end()") is False
