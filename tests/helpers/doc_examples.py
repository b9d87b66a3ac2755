"""The docs' runnable examples, read out of the Markdown and run (tests/e2e/test_doc_examples.py).

Python examples (```python fences): run statement by statement in one namespace per page, with
stdout captured per statement. A statement that calls `print` states its output in a comment: on
its own last line (`print(x)  # This is a test.`) or in the comment lines right after it; a comment
wrapped over several lines reads as one line, and an empty `#` line is a blank line of output.
Comments on statements that print nothing are prose.

curl examples (an indented line starting with `curl `, `\\` continuing it): the answer shown is the
indented `{…}` block right after the command, or, for a stream, the text its deltas "join to".

A fenced block after `<!-- guide-file: … -->` is the calculator guide's (run by
tests/e2e/test_calculator_guide.py); an example after `<!-- example: … -->` is run its own way
(`example: shell`: the indented block as a bash script) or says why it is not run.
"""

from __future__ import annotations

import ast
import contextlib
import http.client
import io
import json
import re
import shlex
import shutil
import subprocess
import tokenize
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SKIP = re.compile(r"<!-- (guide-file: \S+|example: [^>]*) -->\s*$")
PYTHON_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CURL = re.compile(r"(?<=\n\n)    (curl (?:.*\\\n)*.*)$", re.MULTILINE)  # a command opening an indented block
JOINS_TO = re.compile(r'join to ("(?:[^"\\]|\\.)*")')


@dataclass(frozen=True)
class PythonBlock:
    line: int  # of the block's first code line in the page
    source: str


@dataclass(frozen=True)
class Output:
    line: int  # in the page
    statement: str
    expected: str | None  # None: it prints but states no output


@dataclass(frozen=True)
class CurlExample:
    line: int
    command: str
    answer: dict[str, Any] | None  # the JSON shown
    joined: str | None  # the text a stream's deltas join to


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def skipped(text: str, offset: int) -> bool:
    """Whether the example starting at `offset` is marked (the marker on the line before it)."""
    return bool(SKIP.search(text[:offset]))


def python_blocks(page: str) -> list[PythonBlock]:
    return [PythonBlock(line_of(page, m.start(1)), m.group(1)) for m in PYTHON_FENCE.finditer(page) if not skipped(page, m.start())]


def unwrap(lines: list[str]) -> str:
    """Comment lines (without `#`) as the output they state: wrapped lines join with a space, an
    empty line is a blank line."""
    return "\n\n".join(" ".join(p.split("\n")) for p in "\n".join(lines).split("\n\n"))


def normal(output: str) -> str:
    """Printed output compared as the comments state it: one trailing newline dropped, single line
    breaks read as spaces (comments wrap), blank lines kept."""
    output = output.removesuffix("\n")
    return re.sub(r"(?<!\n)\n(?!\n)", " ", output)


def outputs(block: PythonBlock) -> list[tuple[ast.stmt, Output]]:
    """Each top-level statement of the block with the output it states (if it prints)."""
    tree = ast.parse(block.source)
    comments: dict[int, str] = {}
    full_line: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(block.source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.removeprefix("#").removeprefix(" ")
            if not token.line[: token.start[1]].strip():
                full_line.add(token.start[0])
    found = []
    for i, stmt in enumerate(tree.body):
        prints = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print" for n in ast.walk(stmt))
        end = stmt.end_lineno or stmt.lineno
        expected: str | None = None
        if end in comments and end not in full_line:
            expected = comments[end]
        else:
            stop = tree.body[i + 1].lineno if i + 1 < len(tree.body) else len(block.source.splitlines()) + 1
            after = [comments[n] for n in range(end + 1, stop) if n in full_line]
            expected = unwrap(after) if after else None
        if prints:
            found.append((stmt, Output(block.line + stmt.lineno - 1, ast.get_source_segment(block.source, stmt) or "", expected)))
        else:
            found.append((stmt, Output(block.line + stmt.lineno - 1, "", None)))
    return found


# The SDKs whose clients an example opens and leaves open (as users write them): closed after the
# page, or their sockets are collected later, as a ResourceWarning in whichever test runs then.
SDK_MODULES = frozenset({"openai", "tritonclient", "anthropic", "ollama", "cohere"})


def run_python(blocks: list[PythonBlock], replace: dict[str, str]) -> list[tuple[Output, str]]:
    """Run the blocks in order in one namespace (a page's examples build on each other); every
    printing statement with what it printed."""
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    printed: list[tuple[Output, str]] = []
    try:
        for block in blocks:
            source = block.source
            for old, new in replace.items():
                source = source.replace(old, new)
            for stmt, output in outputs(PythonBlock(block.line, source)):
                buffer = io.StringIO()
                with contextlib.redirect_stdout(buffer):
                    exec(compile(ast.Module([stmt], []), f"<doc line {output.line}>", "exec"), namespace)
                if output.statement:
                    printed.append((output, buffer.getvalue()))
    finally:
        for value in namespace.values():  # the SDK clients the examples opened
            if type(value).__module__.split(".")[0] not in SDK_MODULES:
                continue
            if callable(getattr(value, "close", None)):
                value.close()
            elif callable(getattr(value, "__exit__", None)):  # cohere's clients close only as context managers
                value.__exit__(None, None, None)
    return printed


def curl_examples(page: str) -> list[CurlExample]:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page)  # fenced code is not prose
    found = []
    for m in CURL.finditer(text):
        if skipped(text, m.start()):
            continue
        rest = text[m.end() :].lstrip("\n")
        answer = joined = None
        if rest.startswith("    {"):
            shown = re.match(r"(?:    .*\n)+", rest)
            assert shown is not None
            answer = json.loads(shown.group(0))
        elif j := JOINS_TO.search(rest.split("\n\n", 1)[0]):
            joined = json.loads(j.group(1))
        found.append(CurlExample(line_of(text, m.start()), m.group(1), answer, joined))
    return found


def run_curl(command: str, base_url: str) -> str:
    """The command's answer body: with the real `curl` when it is installed, else the command's
    URL, headers and body sent with http.client."""
    netloc = urlsplit(base_url).netloc
    command = command.replace("http://localhost:8000", base_url).replace("localhost:8000", netloc)
    args = shlex.split(command.replace("\\\n", " "))
    if shutil.which("curl"):
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout
    headers: dict[str, str] = {}
    body: str | None = None
    url = ""
    words = iter(args[1:])
    for word in words:
        if word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(words)
        elif not word.startswith("-"):
            url = word if "://" in word else "http://" + word
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=120)
    try:
        connection.request("POST" if body is not None else "GET", parts.path, body, headers)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def streamed_text(body: str) -> str:
    """The content deltas of an SSE answer, joined; the stream must end with `data: [DONE]`."""
    events = [line.removeprefix("data: ") for line in body.splitlines() if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", body[-200:]
    return "".join(c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e)["choices"])


IGNORED = frozenset({"id", "created", "b64_json"})  # differ per request (images: shown elided; bytes checked in tests/e2e/test_images.py)


def differences(shown: Any, actual: Any, path: str = "") -> list[str]:
    """Where the answer differs from the one shown (same keys, same values; `id`, `created` ignored)."""
    if isinstance(shown, dict) and isinstance(actual, dict):
        found = [f"{path}: keys {sorted(shown)} shown, {sorted(actual)} answered"] if shown.keys() != actual.keys() else []
        return found + [d for k in shown.keys() & actual.keys() - IGNORED for d in differences(shown[k], actual[k], f"{path}.{k}")]
    if isinstance(shown, list) and isinstance(actual, list) and len(shown) == len(actual):
        return [d for i, (s, a) in enumerate(zip(shown, actual, strict=True)) for d in differences(s, a, f"{path}[{i}]")]
    return [] if shown == actual else [f"{path}: {shown!r} shown, {actual!r} answered"]
