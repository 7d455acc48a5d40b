#!/usr/bin/env bash
# EMR bootstrap action (every node): Python 3.11 and freqindex with the s3 extra in /opt/freqindex. The build
# then runs its own Spark (the pyspark wheel's, version 4) on the cluster's YARN and Java 17 (the default of
# EMR 7.x); EMR's own Spark is not used. Upload next to the corpus:
#   aws s3 cp infra/emr/bootstrap.sh s3://my-bucket/freqindex/bootstrap.sh
# FREQINDEX_SPEC may name a wheel on S3 instead of the package index (see run-build.sh).
set -euo pipefail
spec=${1:-freqindex[s3]}
sudo dnf install -y python3.11 python3.11-pip
sudo python3.11 -m venv /opt/freqindex
case "$spec" in
  s3://*) aws s3 cp "$spec" /tmp/ && spec="/tmp/$(basename "$spec")[s3]" ;;
esac
sudo /opt/freqindex/bin/pip install --no-cache-dir "$spec"
