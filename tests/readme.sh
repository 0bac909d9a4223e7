#!/usr/bin/env bash
# The README's quick start, run as written: every ```sh block that follows a `<!-- quickstart -->`
# line is taken from README.md (so the two cannot drift) and run with `set -euo pipefail` against a
# dev server this script starts, on a free loopback port instead of 3000 (the one change made to
# the text), with the credentials it prints. Each block must exit 0: every curl in them uses
# --fail-with-body, so an answer of 4xx or 5xx fails the run. The tour runs twice, since it says
# it can be pasted again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tests/dev-server.sh"
work=$(mktemp -d)
trap 'stop_dev_server; rm -rf "$work"' EXIT
start_dev_server "$work/server.log" DEV_CREDENTIALS_FILE="$work/dev-credentials.json"
# The export lines the README tells the reader to paste.
grep '^export ' "$work/server.log" >"$work/credentials.sh"
python3 - "$root/README.md" "$work" "$port" <<'PY'
import pathlib, re, sys
readme, work, port = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2]), sys.argv[3]
blocks = re.findall(r"<!-- quickstart -->\n```sh\n(.*?)```", readme, re.S)
if len(blocks) < 2:
    sys.exit(f"README.md has {len(blocks)} quickstart blocks, expected the quick start and the tour")
for i, block in enumerate(blocks):
    text = block.replace("127.0.0.1:3000", f"127.0.0.1:{port}").replace("localhost:3000", f"127.0.0.1:{port}")
    (work / f"block{i}.sh").write_text("set -euo pipefail\nsource \"$1\"\n" + text)
print(len(blocks))
PY
status=0
for block in "$work"/block*.sh; do
  for round in 1 2; do
    if ! bash "$block" "$work/credentials.sh" >"$work/out" 2>&1; then
      echo "README quickstart $(basename "$block") failed (round $round):" >&2
      cat "$block" "$work/out" >&2
      status=1
    fi
  done
done
[ "$status" = 0 ] && echo "README quickstart: every block ran as written, twice"
exit "$status"
