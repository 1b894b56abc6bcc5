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
       ./run.sh test [pytest args]   run the tests (starts a local broker if none answers);
                                     ./run.sh test tests/core: the pure core's, in seconds
       ./run.sh lint                 ruff and mypy (strict on the core), as CI runs them
       ./run.sh bench                the benchmark harness: results in docs/PERFORMANCE.md
       ./run.sh plot [--granularity G] [--input F]   unique users per window as a PNG (results/)
       ./run.sh query FROM TO        unique users of any range, from the stored sketches (docs/QUERIES.md)
       ./run.sh serve                a live page of the counts on http://127.0.0.1:8080/ (docs/QUERIES.md)
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
  want=$(cat requirements.txt native/*.c native/*.h native/setup.py native/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing requirements.txt into $VENV ..." >&2
    "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt \
      || die "pip could not install requirements.txt"
    echo "$want" > "$stamp"
  fi
}

# Ctrl-C (or TERM): the scripts stop (the consumers commit what is acknowledged), one line, exit 130.
stopped_by_user() {
  local pid waited=0
  kill -INT "$producer_pid" 2>/dev/null || true  # its own Ctrl-C path: the blocks on their way get 5 s
  while kill -0 "$producer_pid" 2>/dev/null && [ "$waited" -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -TERM "$producer_pid" 2>/dev/null || true  # still there after 10 s: the Ctrl-C came while it started
  kill -TERM "${consumer_pids[@]}" 2>/dev/null || true  # they may be gone already (set -e would end run.sh here)
  for pid in "$producer_pid" "${consumer_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" 2>/dev/null || true; done
  done
  echo "run.sh: interrupted; the consumer committed what was acknowledged. ./run.sh starts over" >&2
  exit 130
}

# The whole job: broker, topics, sample, then producer and CONSUMERS consumers side by side, so counts
# stream out while the data loads. The consumers drain (SIGUSR1) once the producer is done.
run_all() {
  ensure_venv
  local t0=$SECONDS sample status=0 count instance pid producer_pid=""
  "$PY" -m uniqcount.devtools.brokerctl ensure
  "$PY" -m uniqcount.devtools.brokerctl topics
  sample=$("$PY" -m uniqcount.devtools.sample)
  count=$("$PY" -m uniqcount.runtime.config CONSUMERS)
  instance=$("$PY" -m uniqcount.runtime.config INSTANCE_ID)
  consumer_pids=()
  if [ "$count" -eq 1 ]; then
    "$PY" consumer.py &
    consumer_pids+=($!)
  else
    echo "run.sh: $count consumers in one group, started alike (each takes a transactional id of its own);" \
      "each counts some of the $("$PY" -m uniqcount.runtime.config TOPIC_PARTITIONS) partition(s) of the input, one merges" >&2
    for i in $(seq 0 $((count - 1))); do
      if [ -n "$instance" ]; then  # a name given in the settings: one per process
        INSTANCE_ID="$instance-$i" "$PY" consumer.py --quiet &
      else
        "$PY" consumer.py --quiet &
      fi
      consumer_pids+=($!)
    done
  fi
  interrupted=0
  trap 'interrupted=1; kill -TERM "${consumer_pids[@]}" 2>/dev/null || true' INT TERM
  # A background job of this (non-interactive) shell, the producer starts with SIGINT ignored, so a
  # Ctrl-C while Python starts up cannot end in a traceback; its first line then takes SIGINT over.
  # A trap ends the wait at once (it would wait for a foreground command to end).
  "$PY" producer.py --input "$sample" &
  producer_pid=$!
  wait "$producer_pid" || status=$?
  [ "$interrupted" -eq 0 ] && [ "$status" -ne 130 ] || stopped_by_user
  if [ "$status" -ne 0 ]; then
    kill -TERM "${consumer_pids[@]}" 2>/dev/null || true; wait "${consumer_pids[@]}" || true
    die "the producer failed (exit $status)"
  fi
  kill -USR1 "${consumer_pids[@]}" 2>/dev/null || true  # if one died, wait says how
  for pid in "${consumer_pids[@]}"; do
    wait "$pid" || status=$?
  done
  [ "$interrupted" -eq 0 ] || stopped_by_user
  [ "$status" -eq 0 ] || die "a consumer failed (exit $status)"
  echo "run.sh: done in $((SECONDS - t0)) s. Read the results again with:" >&2
  echo "  ./run.sh kafka-console-consumer --topic events-output --from-beginning --property print.key=true \\" >&2
  echo "      --property key.separator=' ' --isolation-level read_committed    (Ctrl-C stops it)" >&2
}

cmd="${1:-all}"
[ $# -gt 0 ] && shift
case "$cmd" in
  help|-h|--help) usage ;;
  test)
    ensure_venv
    # the whole suite on two processes (pytest-xdist), a file's tests in one: its brokers are its own;
    # then, alone, the secure broker's tests (SASL/TLS handshakes time out when the other process loads
    # the machine, and they share that broker's ACLs)
    if [ "$#" -eq 0 ]; then
      "$PY" -m pytest -n 2 --dist loadfile -m "not serial"
      set -- -m serial
    fi
    exec "$PY" -m pytest "$@" ;;
  lint)
    ensure_venv
    "$PY" -m ruff check .
    exec "$PY" -m mypy ;;
  plot)
    ensure_venv
    exec "$PY" -m uniqcount.cli.plot "$@" ;;
  query)
    ensure_venv
    exec "$PY" -m uniqcount.cli.query "$@" ;;
  serve)
    ensure_venv
    exec "$PY" -m uniqcount.cli.serve "$@" ;;
  bench)
    ensure_venv
    "$PY" -m uniqcount.devtools.brokerctl ensure
    exec "$PY" -m bench "$@" ;;
  broker)
    ensure_venv
    exec "$PY" -m uniqcount.devtools.brokerctl "$@" ;;
  kafka-topics|kafka-console-consumer|kafka-console-producer|kafka-consumer-groups)
    ensure_venv
    exec "$PY" -m uniqcount.devtools.brokerctl tool "$cmd" "$@" ;;
  all)
    run_all ;;
  *)
    usage >&2; exit 2 ;;
esac
