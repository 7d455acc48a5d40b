"""Spark's failures reduced to the one line that names the cause (texts as Spark 4 words them)."""

from jobs.spark import spark_failure_cause

TASK_PYTHON_MISSING = """py4j.protocol.Py4JJavaError: An error occurred while calling o47.collectToPython.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed 1 times
java.io.IOException: Cannot run program "/opt/env/bin/python": error=2, No such file or directory
\tat java.base/java.lang.ProcessBuilder.start(ProcessBuilder.java:1143)
Caused by: java.io.IOException: error=2, No such file or directory
\t... 28 more
"""

TASK_RAISED = """org.apache.spark.api.python.PythonException: Traceback (most recent call last):
  File "/x/freqindex/suffix/stage.py", line 140, in write_shard
    ds.write(tokens)
OSError: [Errno 28] No space left on device
\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(PythonRunner.scala:624)
\t... 20 more
"""

START_FAILED = """WARNING: Using incubator modules: jdk.incubator.vector
Exception in thread "main" org.apache.spark.SparkException: Master must either be yarn or start with spark, k8s, or local
\tat org.apache.spark.deploy.SparkSubmit.error(SparkSubmit.scala:1068)
"""


def test_the_cause_never_a_stack_frame():
    assert spark_failure_cause(TASK_PYTHON_MISSING).startswith(
        "the executors cannot start Python /opt/env/bin/python (No such file or directory): point "
        "spark.pyspark.python (--conf) or PYSPARK_PYTHON at an interpreter"
    )
    assert spark_failure_cause(TASK_RAISED) == "OSError: [Errno 28] No space left on device"
    assert (
        spark_failure_cause(START_FAILED) == "Master must either be yarn or start with spark, k8s, or local"
    )
    assert spark_failure_cause("WARNING: Using incubator modules", guess=False) is None
