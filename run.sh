#!/usr/bin/env bash
# uniqcount's one entry point. See README.md, or: ./run.sh help
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY="$VENV/bin/python"

die() { echo "error: $*" >&2; exit 1; }

usage() {
  cat <<'USAGE'
usage: ./run.sh                      run the whole job: broker, sample, producer and consumer
       ./run.sh test [pytest args]   run the tests (starts a local broker if none answers)
       ./run.sh broker start|stop|status|logs [-f]
       ./run.sh kafka-topics|kafka-console-consumer|kafka-console-producer|kafka-consumer-groups [args]
       ./run.sh help
USAGE
}

# The virtualenv, created once and updated whenever requirements.txt changes.
ensure_venv() {
  local python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || die "$python not found: install Python 3.11+"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11+ is needed, $python is $("$python" --version 2>&1)"
  if [ ! -x "$PY" ]; then
    echo "setting up $VENV ..." >&2
    "$python" -m venv "$VENV" || die "could not create $VENV (apt-get install python3-venv?)"
  fi
  local want stamp="$VENV/.requirements.sha256"
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing requirements.txt into $VENV ..." >&2
    "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt \
      || die "pip could not install requirements.txt"
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-all}"
[ $# -gt 0 ] && shift
case "$cmd" in
  help|-h|--help) usage ;;
  test)
    ensure_venv
    exec "$PY" -m pytest "$@" ;;
  broker)
    ensure_venv
    exec "$PY" -m uniqcount.brokerctl "$@" ;;
  kafka-topics|kafka-console-consumer|kafka-console-producer|kafka-consumer-groups)
    ensure_venv
    exec "$PY" -m uniqcount.brokerctl tool "$cmd" "$@" ;;
  all)
    die "the end-to-end job is not built yet" ;;
  *)
    usage >&2; exit 2 ;;
esac
