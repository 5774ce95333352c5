#!/usr/bin/env bash
# Apache Kafka 4.x in KRaft mode (one combined broker + controller) on 127.0.0.1:19092, run from
# jars resolved from Maven Central with mvn (deploy/local/kafka/pom.xml) on the machine's JDK.
# Usage: kafka.sh install|start|stop|status
COMPONENT=kafka
source "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
KAFKA_DATA=$DATA/kafka
CONFIG=$KAFKA_DATA/server.properties
KAFKA_LOG=$LOG_DIR/kafka.log
PID_FILE=$RUN_DIR/kafka.pid

install() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  if [[ -f $LIBS/.complete ]]; then return 0; fi
  log "resolving Kafka $KAFKA_VERSION and its runtime dependencies with mvn"
  rm -rf "$LIBS"; mkdir -p "$LIBS"
  mvn -q -B -f "$HERE/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$LIBS" >"$LOG_DIR/kafka-mvn.log" 2>&1 \
    || { tail -n 40 "$LOG_DIR/kafka-mvn.log" >&2; die "mvn could not resolve Kafka"; }
  touch "$LIBS/.complete"
}

ready() { port_open "$KAFKA_HOST" "$KAFKA_PORT" && grep -q "Kafka Server started" "$KAFKA_LOG" 2>/dev/null; }

start() {
  install
  if pid_alive "$PID_FILE" && port_open "$KAFKA_HOST" "$KAFKA_PORT"; then log "already running on $KAFKA_HOST:$KAFKA_PORT"; return 0; fi
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then die "$KAFKA_HOST:$KAFKA_PORT is taken by another process"; fi
  mkdir -p "$KAFKA_DATA/log"
  sed -e "s#@KAFKA_HOST@#$KAFKA_HOST#g" -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
      -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@KAFKA_DATA@#$KAFKA_DATA/log#g" \
      "$HERE/kafka/server.properties.in" >"$CONFIG"
  local cp="$LIBS/*"
  if [[ ! -f $KAFKA_DATA/log/meta.properties ]]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    log "formatting storage (cluster $cluster_id)"
    java -cp "$cp" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.yaml" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$CONFIG" >"$LOG_DIR/kafka-format.log" 2>&1 \
      || { cat "$LOG_DIR/kafka-format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  log "starting on $KAFKA_HOST:$KAFKA_PORT"
  : >"$KAFKA_LOG"
  # Its own session (setsid): the broker must not die with the process group that started it —
  # a test that restarts Kafka (the flag service's outage test), a shell whose job is killed.
  setsid nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$HERE/kafka/log4j2.yaml" \
    -cp "$cp" kafka.Kafka "$CONFIG" >>"$KAFKA_LOG" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  wait_until 90 "$KAFKA_LOG" "Kafka" ready || { stop_pidfile "$PID_FILE" kafka; exit 1; }
  log "ready: $KAFKA_HOST:$KAFKA_PORT"
}

stop() { stop_pidfile "$PID_FILE" kafka; }

status() { if pid_alive "$PID_FILE" && port_open "$KAFKA_HOST" "$KAFKA_PORT"; then echo "kafka: running on $KAFKA_HOST:$KAFKA_PORT"; else echo "kafka: stopped"; return 1; fi; }

case ${1:-} in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
