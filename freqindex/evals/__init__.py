"""Eval-side inputs: eval sets, per-item model results, and the tabular loader they (and vocabularies) share."""

from freqindex.evals.items import EvalItem, eval_name, load_eval
from freqindex.evals.results import load_results
from freqindex.evals.tables import load_rows, read_jsonl_objects

__all__ = ["EvalItem", "eval_name", "load_eval", "load_results", "load_rows", "read_jsonl_objects"]
