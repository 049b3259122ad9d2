"""Every page a journey opens is audited while the journey goes on: axe-core (vendored from npm, under
vendor/) for WCAG 2.1 AA, and the document's Content-Security-Policy violations. A journey fails on any
serious or critical axe finding and on any CSP violation, whichever role it signs in as.

How: each browser context gets axe and a small runner as an init script (they are the test's, not the
page's: the page's CSP does not apply to them). The runner checks the document once it has loaded, and
each fragment htmx swaps in, and reports through a binding. A journey may leave a page before its check
ends (the browser runs no script of the old page while a navigation is pending, so the check cannot be
awaited then): at the end of the test, or when the journey closes a context, those pages are opened
again in the same context and checked.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()

# axe's default rules (WCAG 2.0/2.1 A and AA, best practices) plus the one that checks an element's
# accessible name contains its visible text (WCAG 2.5.3), which axe still files as experimental.
AXE_OPTIONS = {"rules": {"label-content-name-mismatch": {"enabled": True}}, "resultTypes": ["violations"]}

RUNNER = """
(() => {
  if (window.top !== window || !/^https?:$/.test(location.protocol)) return;
  const report = window.__auditReport;
  const where = location.pathname + location.search;
  const state = {queue: Promise.resolve()};
  window.__audit = state;
  const check = (target, moment) => {
    const id = Math.random().toString(36).slice(2);
    if (moment === "load") report({kind: "start", id, url: location.href});
    state.queue = state.queue
      .then(() => (target.isConnected === false ? null : axe.run(target, OPTIONS)))
      .then(results => {
        const findings = [];
        for (const violation of (results ? results.violations : [])) {
          if (violation.impact !== "serious" && violation.impact !== "critical") continue;
          findings.push({
            page: where, moment, rule: violation.id, impact: violation.impact, help: violation.help,
            nodes: violation.nodes.slice(0, 4).map(n => n.target.join(" ") + " -- " + (n.failureSummary || "").replace(/\\s+/g, " ")),
          });
        }
        return report({kind: "done", id, findings});
      })
      .catch(error => report({kind: "done", id, findings: [
        {page: where, moment, rule: "axe-error", impact: "critical", help: String(error), nodes: []}]}));
  };
  const describe = node => node && node.tagName
    ? node.tagName.toLowerCase() + (node.id ? "#" + node.id : "") + (node.className && node.className.baseVal === undefined ? "." + String(node.className).trim().split(/\\s+/).join(".") : "")
    : String(node);
  document.addEventListener("securitypolicyviolation", event => report({kind: "csp", violation: {
    page: where, directive: event.violatedDirective, blocked: event.blockedURI, element: describe(event.target),
    sample: event.sample, source: `${event.sourceFile}:${event.lineNumber}`,
  }}));
  window.addEventListener("load", () => check(document, "load"));
  document.addEventListener("htmx:afterSettle", event => check(event.target.isConnected ? event.target : document, "htmx swap"));
})();
""".replace("OPTIONS", json.dumps(AXE_OPTIONS))

SETTLED = "async () => { if (window.__audit) await window.__audit.queue; return Boolean(window.__audit); }"


@dataclass
class Audit:
    """What one test's pages were found to break; `watch` each browser context the test opens."""

    findings: list[dict] = field(default_factory=list)
    csp: list[dict] = field(default_factory=list)
    unchecked: dict = field(default_factory=dict)  # context -> {check id: url} started, not reported
    audited: int = 0

    def watch(self, context) -> None:
        self.unchecked[context] = {}
        context.expose_binding("__auditReport", lambda source, message: self._receive(context, message))
        context.add_init_script(script=AXE_SOURCE + "\n" + RUNNER)
        close = context.close

        def close_after_checking(*args, **kwargs):
            self._check_left_pages(context)
            return close(*args, **kwargs)

        # Tests close the contexts they open themselves (also through page.context, the same object).
        context.close = close_after_checking

    def _receive(self, context, message: dict) -> None:
        pending = self.unchecked.setdefault(context, {})
        if message["kind"] == "start":
            pending[message["id"]] = message["url"]
        elif message["kind"] == "done":
            if pending.pop(message["id"], None) is not None:
                self.audited += 1
            self.findings += message["findings"]
        else:
            self.csp.append(message["violation"])

    def _check_left_pages(self, context) -> None:
        for page in context.pages:  # the pages still open finish their checks first
            with contextlib.suppress(Exception):  # a page navigating away is checked again below
                page.evaluate(SETTLED)
        pending = self.unchecked.pop(context, {})
        urls = sorted(set(pending.values()))
        if not urls:
            return
        self.unchecked[context] = {}
        page = context.new_page()
        for url in urls:
            page.goto(url)
            assert page.evaluate(SETTLED), f"{url} was not audited"
        page.close()
        self.unchecked.pop(context, None)

    def finish(self) -> None:
        for context in list(self.unchecked):
            self._check_left_pages(context)

    def report(self) -> str:
        lines = []
        unique = {json.dumps(finding, sort_keys=True): finding for finding in self.findings}
        for finding in unique.values():
            lines.append(
                f"{finding['page']} ({finding['moment']}): {finding['impact']} {finding['rule']}: {finding['help']}"
            )
            lines += [f"    {node}" for node in finding["nodes"]]
        for violation in self.csp:
            lines.append(
                f"{violation['page']}: CSP {violation['directive']} blocked {violation['blocked']}"
                f" {violation['sample']!r} on {violation['element']} at {violation['source']}"
            )
        return "\n".join(lines)
