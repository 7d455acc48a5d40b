#!/usr/bin/env bash
# Build an index on Amazon EMR (7.x, YARN, instance-profile credentials): create a cluster whose nodes run
# infra/emr/bootstrap.sh, then add one step that runs `freqindex build` on the primary node with
# --master yarn. Executors read their input chunks from S3 and upload finished shards there; nothing goes
# through HDFS. s3fs takes its credentials from the EC2 instance profile (EMR_EC2_DefaultRole needs read on
# the corpus and read/write on the index prefix).
#
#   BUCKET=my-bucket INPUT=s3://my-bucket/dumps/2026-11/ OUTPUT=s3://my-bucket/indexes/dump-2026-11 \
#   bash infra/emr/run-build.sh
set -euo pipefail
: "${BUCKET:?bucket holding bootstrap.sh and logs}" "${INPUT:?corpus URL}" "${OUTPUT:?index URL}"
CORES=${CORES:-4}            # core nodes
TYPE=${TYPE:-m6i.2xlarge}    # 8 vCPU, 32 GiB

cluster=$(aws emr create-cluster \
  --name freqindex-build \
  --release-label emr-7.5.0 \
  --applications Name=Hadoop \
  --use-default-roles \
  --log-uri "s3://$BUCKET/freqindex/emr-logs/" \
  --instance-groups "InstanceGroupType=MASTER,InstanceCount=1,InstanceType=$TYPE" \
                    "InstanceGroupType=CORE,InstanceCount=$CORES,InstanceType=$TYPE" \
  --bootstrap-actions "Path=s3://$BUCKET/freqindex/bootstrap.sh,Name=freqindex" \
  --auto-terminate \
  --steps "Type=CUSTOM_JAR,Name=freqindex-build,ActionOnFailure=TERMINATE_CLUSTER,Jar=command-runner.jar,Args=[bash,-c,HADOOP_CONF_DIR=/etc/hadoop/conf /opt/freqindex/bin/freqindex build $INPUT -o $OUTPUT --master yarn --conf spark.pyspark.python=/opt/freqindex/bin/python --conf spark.executor.instances=$((CORES * 2)) --conf spark.executor.cores=4 --conf spark.executor.memory=10g --conf spark.executor.memoryOverhead=4g]" \
  --query ClusterId --output text)
echo "cluster $cluster: follow with  aws emr describe-cluster --cluster-id $cluster"
echo "then query from anywhere:       freqindex count $OUTPUT \" dog \"   (or freqindex pull $OUTPUT idx)"
