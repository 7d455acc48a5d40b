#!/usr/bin/env bash
# Start or stop a real Spark standalone cluster (one master, one or more workers) on 127.0.0.1, using the
# spark-class launcher that the pyspark package ships. No separate Spark download is needed.
#
#   infra/spark-standalone.sh start [MASTER_PORT] [WORKER_CORES] [WORKER_MEMORY] [WORKERS]   # prints spark://127.0.0.1:PORT
#   infra/spark-standalone.sh stop
#   infra/spark-standalone.sh status
#
# State (pids, logs) lives in $FREQINDEX_CLUSTER_DIR (default: ./.spark-standalone). Every worker has a work
# directory (SPARK_WORKER_DIR) and a scratch directory (SPARK_LOCAL_DIRS) of its own, as on machines that
# share no filesystem: worker 1 work/ and local/, worker N>1 work-N/ and local-N/ (pid file worker[-N].pid).
# Executors run the same Python as this script's `python3` unless PYSPARK_PYTHON is set; a freqindex build
# asks for its own interpreter, or for the one named by --conf spark.pyspark.python, per application.
set -euo pipefail

cmd=${1:-}
state=${FREQINDEX_CLUSTER_DIR:-$PWD/.spark-standalone}
py=${PYSPARK_PYTHON:-$(command -v python3)}
spark_home=$("$py" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME="$spark_home"
export PYSPARK_PYTHON="$py"
export SPARK_LOCAL_IP=127.0.0.1
export SPARK_NO_DAEMONIZE=1

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_for_log() {  # file pattern seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2; tail -20 "$1" >&2; return 1
}

case "$cmd" in
  start)
    port=${2:-$(free_port)}
    cores=${3:-2}
    mem=${4:-2g}
    workers=${5:-1}
    mkdir -p "$state/work"
    [ -f "$state/master.pid" ] && kill -0 "$(cat "$state/master.pid")" 2>/dev/null && { echo "already running: $(cat "$state/url")"; exit 0; }
    "$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host 127.0.0.1 --port "$port" --webui-port "$(free_port)" >"$state/master.log" 2>&1 &
    echo $! >"$state/master.pid"
    wait_for_log "$state/master.log" "I have been elected leader" 90
    for i in $(seq 1 "$workers"); do
      sfx=$([ "$i" = 1 ] && echo "" || echo "-$i")
      mkdir -p "$state/work$sfx" "$state/local$sfx"
      SPARK_WORKER_DIR="$state/work$sfx" SPARK_LOCAL_DIRS="$state/local$sfx" \
      "$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker \
        --host 127.0.0.1 --cores "$cores" --memory "$mem" --webui-port "$(free_port)" \
        --work-dir "$state/work$sfx" "spark://127.0.0.1:$port" >"$state/worker$sfx.log" 2>&1 &
      echo $! >"$state/worker$sfx.pid"
    done
    for i in $(seq 1 "$workers"); do
      sfx=$([ "$i" = 1 ] && echo "" || echo "-$i")
      wait_for_log "$state/worker$sfx.log" "Successfully registered with master" 90
    done
    echo "spark://127.0.0.1:$port" | tee "$state/url"
    ;;
  stop)
    for pidfile in "$state"/worker*.pid "$state/master.pid"; do
      if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
      fi
    done
    rm -f "$state/url"
    echo "stopped"
    ;;
  status)
    for pidfile in "$state/master.pid" "$state"/worker*.pid; do
      role=$(basename "$pidfile" .pid)
      if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$role: running"; else echo "$role: stopped"; fi
    done
    [ -f "$state/url" ] && cat "$state/url" || true
    ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
