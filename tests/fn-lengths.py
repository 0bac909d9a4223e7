#!/usr/bin/env python3
"""`make test`'s function-length check: no non-test function in shared/src is over 60 lines.

A function's length is from its `fn` line to its closing brace, as rustfmt lays it out. Test code
is left out: `tests.rs` and `proptests.rs` files, and a file's `#[cfg(test)] mod tests` tail.
Prints the longest functions; exits 1 when one is over the limit.
"""
import os
import re
import sys

LIMIT = 60
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "src")
FN = re.compile(r"^\s*(pub(\([^)]*\))? )?(async )?(const )?(unsafe )?fn ([a-z_0-9]+)")


def lengths(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]") and i + 1 < len(lines) and lines[i + 1].startswith("mod tests"):
            lines = lines[:i]
            break
    for i, line in enumerate(lines):
        match = FN.match(line)
        if not match:
            continue
        j = i
        while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
            j += 1
        if j >= len(lines) or "{" not in lines[j]:
            continue  # a declaration without a body (a trait's)
        indent = len(line) - len(line.lstrip())
        k = j if lines[j].rstrip().endswith("}") and lines[j].count("{") == lines[j].count("}") else j + 1
        while k < len(lines) and not (lines[k].startswith(" " * indent + "}") and len(lines[k]) - len(lines[k].lstrip()) == indent):
            k += 1
        yield k - i + 1, match.group(6)


def main():
    found = []
    for directory, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".rs") and name not in ("tests.rs", "proptests.rs"):
                path = os.path.join(directory, name)
                found += [(n, os.path.relpath(path, ROOT), f) for n, f in lengths(path)]
    found.sort(reverse=True)
    over = [f for f in found if f[0] > LIMIT]
    print(f"{len(found)} functions in shared/src; the longest: " + ", ".join(f"{f} ({p}) {n}" for n, p, f in found[:3]))
    for n, path, function in over:
        print(f"over {LIMIT} lines: {path}: {function}, {n} lines", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
