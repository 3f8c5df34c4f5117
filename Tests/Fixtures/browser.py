"""Drives headless Chromium through the DevTools protocol for the web view's tests.

    python3 browser.py SCENARIO.json

The scenario is a list of steps, run in order; the results (one per step that yields one) are printed
as one JSON object on stdout, and the exit status is 1 when a step failed (its error in "error").

Steps:
  {"goto": URL}                            navigate and wait for the load (or the in-document navigation)
  {"eval": JS, "as": NAME}                 evaluate an expression (promises awaited); result under NAME
  {"wait": JS, "timeout": S, "as": NAME}   poll an expression every 50 ms until truthy; seconds taken under NAME
  {"touch": PATH}                          create a file (tells the test a point was reached)
  {"await_file": PATH, "timeout": S}       wait until a file exists (the test did its part)
  {"screenshot": PATH}                     write a PNG of the page
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        wanted = self.next_id
        self.ws.send(json.dumps({"id": wanted, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, names, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") in names:
                    del self.events[: i + 1]
                    return e
            self.ws.settimeout(max(0.05, deadline - time.time()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
            finally:
                self.ws.settimeout(30)
        raise TimeoutError(f"none of {names} within {timeout}s")

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description') or result['exceptionDetails']}")
        return result.get("result", {}).get("value")


def launch():
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not binary:
        raise SystemExit("chromium is not installed")
    profile = tempfile.mkdtemp(prefix="browser-")
    process = subprocess.Popen([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--ignore-certificate-errors", "--remote-debugging-port=0", "--remote-allow-origins=*",
                                "--window-size=1400,1000", f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    port = None
    while time.time() < deadline and port is None:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            raise SystemExit(f"chromium exited with {process.returncode}")
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            port = int(m.group(1))
    if port is None:
        raise SystemExit("chromium did not open its DevTools port")
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
    page = next(t for t in targets if t.get("type") == "page")
    return process, profile, Page(page["webSocketDebuggerUrl"])


def run(steps):
    process, profile, page = launch()
    results = {}
    try:
        page.call("Page.enable")
        page.call("Runtime.enable")
        for step in steps:
            if "goto" in step:
                page.events.clear()
                page.call("Page.navigate", url=step["goto"])
                # A URL that differs only in its fragment navigates within the document (no load event).
                page.wait_event(("Page.loadEventFired", "Page.navigatedWithinDocument"), step.get("timeout", 20))
            elif "eval" in step:
                results[step.get("as", "eval")] = page.evaluate(step["eval"])
            elif "wait" in step:
                start = time.time()
                timeout = step.get("timeout", 10)
                while True:
                    try:
                        # A DOM node comes back as {} by value: test truthiness in the page.
                        if page.evaluate(f"!!({step['wait']})"):
                            break
                    except RuntimeError:
                        pass
                    if time.time() - start > timeout:
                        raise TimeoutError(f"not true within {timeout}s: {step['wait']}")
                    time.sleep(0.05)
                if "as" in step:
                    results[step["as"]] = round(time.time() - start, 3)
            elif "touch" in step:
                open(step["touch"], "w").close()
            elif "await_file" in step:
                deadline = time.time() + step.get("timeout", 30)
                while not os.path.exists(step["await_file"]):
                    if time.time() > deadline:
                        raise TimeoutError(f"{step['await_file']} did not appear")
                    time.sleep(0.02)
            elif "screenshot" in step:
                data = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
                os.makedirs(os.path.dirname(step["screenshot"]) or ".", exist_ok=True)
                with open(step["screenshot"], "wb") as f:
                    f.write(base64.b64decode(data))
        return results, None
    except Exception as e:  # noqa: BLE001
        try:
            results["page"] = page.evaluate("location.href + ' | ' + (document.body ? document.body.innerText.slice(0, 600) : '')")
        except Exception:  # noqa: BLE001
            pass
        return results, f"{type(e).__name__}: {e}"
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        scenario = json.load(f)
    out, error = run(scenario)
    if error:
        out["error"] = error
    print(json.dumps(out))
    sys.exit(1 if error else 0)
