#!/usr/bin/env bash
# Build an index on Kubernetes in cluster mode: the driver and the executors are pods of the image built
# from infra/docker/Dockerfile; they read the corpus from and write the index to object storage, and share
# no volume. Run from any machine with kubectl access and Spark (the pyspark wheel's spark-submit will do):
#
#   IMAGE=registry.example.org/freqindex:0.1.0 CONFIG=s3://my-bucket/configs/build.toml \
#   K8S_API=https://kube-api.example.org:6443 NAMESPACE=freqindex bash infra/k8s/spark-submit.sh
#
# Credentials: the pods read AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the secret `s3-credentials`
# (kubectl create secret generic s3-credentials --from-literal=access-key=... --from-literal=secret-key=...),
# or, on EKS, drop the two secretKeyRef lines per role and give the `spark` service account an IAM role
# (IRSA): s3fs finds web-identity credentials by itself. GCS: mount a key file and set
# GOOGLE_APPLICATION_CREDENTIALS, or use Workload Identity.
set -euo pipefail
: "${IMAGE:?the freqindex image}" "${CONFIG:?the build config (a URL the driver pod can read)}"
: "${K8S_API:?the Kubernetes API server URL}"
NAMESPACE=${NAMESPACE:-freqindex}
EXECUTORS=${EXECUTORS:-8}
SPARK_SUBMIT=${SPARK_SUBMIT:-spark-submit}

exec "$SPARK_SUBMIT" \
  --master "k8s://$K8S_API" \
  --deploy-mode cluster \
  --name freqindex-build \
  --conf spark.kubernetes.namespace="$NAMESPACE" \
  --conf spark.kubernetes.container.image="$IMAGE" \
  --conf spark.kubernetes.authenticate.driver.serviceAccountName=spark \
  --conf spark.pyspark.python=/usr/local/bin/python3 \
  --conf spark.pyspark.driver.python=/usr/local/bin/python3 \
  --conf spark.executor.instances="$EXECUTORS" \
  --conf spark.executor.cores=4 \
  --conf spark.executor.memory=8g \
  --conf spark.executor.memoryOverhead=8g \
  --conf spark.driver.memory=4g \
  --conf spark.kubernetes.driver.secretKeyRef.AWS_ACCESS_KEY_ID=s3-credentials:access-key \
  --conf spark.kubernetes.driver.secretKeyRef.AWS_SECRET_ACCESS_KEY=s3-credentials:secret-key \
  --conf spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID=s3-credentials:access-key \
  --conf spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY=s3-credentials:secret-key \
  local:///opt/freqindex-jobs/build_index.py --config "$CONFIG"
