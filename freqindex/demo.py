"""A small, deterministic demo world generated on the spot (no download): a corpus, an eval set with a planted
leak, and per-item results of two made-up models.

The corpus mixes every input format ``freqindex build`` reads (.tsv captions, .jsonl, .jsonl.gz, .jsonl.zst,
.parquet), plants a few malformed records so a first build shows the quarantine at work, and holds
``quiz-pages.jsonl``: pages that copy some eval questions verbatim (the planted leak). Animals are mentioned
with Zipf-like frequencies, so concept frequencies span about two orders of magnitude.

The eval set (``write_demo_eval``) asks word problems about the same animals, one concept per question. Two
models answered them; their per-item correctness is drawn with a seed:

- ``frequency-learner`` does better on questions about animals that are frequent in the corpus (a logistic
  curve in log10 frequency) and nearly always answers a leaked question correctly;
- ``memorizer`` answers leaked questions and guesses the rest; leaks are likelier for frequent animals, so its
  accuracy rises with frequency too, but only through the leak.

Everything depends on the seed alone: the leaked questions are the same whatever the corpus size, so
``freqindex demo-corpus`` and ``write_demo_eval`` agree. ``python -m freqindex.demo --help`` lists the
module's commands (writing the eval set, and the plain-language summary the quickstart prints).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

# (singular, plural), most frequent first: mention weights follow 1 / rank ** ZIPF_EXPONENT
ANIMALS = [
    ("dog", "dogs"),
    ("cat", "cats"),
    ("horse", "horses"),
    ("bird", "birds"),
    ("golden retriever", "golden retrievers"),
    ("cow", "cows"),
    ("tabby cat", "tabby cats"),
    ("border collie", "border collies"),
    ("goldfish", "goldfish"),
    ("sheep", "sheep"),
    ("duck", "ducks"),
    ("rabbit", "rabbits"),
    ("pony", "ponies"),
    ("parrot", "parrots"),
    ("goat", "goats"),
    ("hedgehog", "hedgehogs"),
    ("squirrel", "squirrels"),
    ("owl", "owls"),
    ("ferret", "ferrets"),
    ("otter", "otters"),
    ("llama", "llamas"),
    ("tortoise", "tortoises"),
    ("heron", "herons"),
    ("lynx", "lynxes"),
]
ZIPF_EXPONENT = 1.3
PEOPLE = ["A child", "A man", "A woman", "Two girls", "A boy", "An old man", "A group of people"]
ACTIONS = ["plays with", "runs after", "throws", "watches", "feeds", "walks with", "photographs"]
THINGS = ["a frisbee", "a red ball", "a stick", "the {a}", "a kite", "an umbrella"]
PLACES = ["in the park", "on the beach", "in the snow", "near a lake", "on a busy street", "in a garden"]
TOPICS = ["Dogs", "Cats", "Horses", "Birds", "Parks", "Beaches", "Kites", "Frisbee"]

# eval questions: no fixed run of words is long enough to match another question by itself (numbers and
# names break every template into short pieces)
NAMES = [("Maya", "she"), ("Omar", "he"), ("Lena", "she"), ("Tariq", "he"), ("Sofia", "she"), ("Jonas", "he")]
SITES = ["shelter", "farm", "zoo", "sanctuary", "fair", "vet clinic", "riverside", "ranch"]
TEMPLATES = [
    "{P} counted {n} {pl} at the {site} on Monday and {m} more on Tuesday. How many {pl} did {pr} count?",
    "The {site} has {n} {pl}. Each {sg} needs {m} grams of food a day. How many grams do the {pl} need?",
    "{P} took {n} photos of a {sg} at the {site} and {m} photos of the lake. How many photos did {pr} take?",
    "There were {n} {pl} at the {site}. {P} found homes for {m} of them. How many {pl} are still there?",
    "A {sg} walks {n} meters every morning and {m} meters every evening. How far does it walk in {k} days?",
    "{P} has {n} {pl} and gets {m} more from the {site}, then gives {k} away. How many {pl} are left?",
    "At the {site}, {n} {pl} share {m} kilograms of food equally. How many kilograms does each {sg} get?",
    "A calendar needs {n} pictures of {pl} and {P} already has {m}. How many more pictures does {pr} need?",
]
QUESTIONS_PER_ANIMAL = 16
REFERENCE_DOCS = 4000  # the size at which the models' "true" frequency of an animal is taken
MODELS = {
    "frequency-learner": "more often right on questions about frequent animals; nearly always right on "
    "leaked questions",
    "memorizer": "right on leaked questions, guessing on the rest",
}


def animal_shares() -> list[float]:
    """Each animal's share of all animal mentions in the corpus."""
    w = [1 / (r + 1) ** ZIPF_EXPONENT for r in range(len(ANIMALS))]
    return [x / sum(w) for x in w]


def _pick_animal(rng: random.Random) -> str:
    return rng.choices([a for a, _ in ANIMALS], weights=animal_shares())[0]


def _caption(rng: random.Random) -> str:
    a = _pick_animal(rng)
    thing = rng.choice(THINGS).format(a=a)
    if rng.random() < 0.5:
        return f"{rng.choice(PEOPLE)} {rng.choice(ACTIONS)} {thing} {rng.choice(PLACES)}."
    return f"A {a} {rng.choice(['jumps for', 'carries', 'chases', 'sniffs'])} {thing} {rng.choice(PLACES)}."


def _article(rng: random.Random, k: int) -> str:
    topic = rng.choice(TOPICS)
    sents = [f"{topic} are a common subject of photographs."]
    for _ in range(rng.randint(3, 12)):
        sents.append(_caption(rng))
    if k % 50 == 0:
        sents.append("The quick brown fox jumps over the lazy dog.")
    return " ".join(sents)


def _windows(text: str, n: int = 50) -> set[str]:
    """Every n-character piece of the text as the index stores it (simple normalization, padded)."""
    from freqindex.text.normalize import get_normalizer

    s = f" {get_normalizer('simple').document(text)} "
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def demo_eval(seed: int = 0) -> list[dict]:
    """The eval questions with their concept, whether they leaked, and the two models' correctness.

    Leaks are drawn more often for frequent animals (from about 5% to 40% of an animal's questions); a
    question that is not leaked never shares a 50-character piece with a leaked one, so the contamination
    check can only flag the leaked ones."""
    rng = random.Random(seed * 7919 + 1)
    shares = animal_shares()
    rows = []
    for (sg, pl), share in zip(ANIMALS, shares):
        true_log_freq = math.log10(1 + REFERENCE_DOCS * share)
        p_leak = min(0.4, max(0.05, 0.2 * (true_log_freq - 1.0)))
        for _ in range(QUESTIONS_PER_ANIMAL):
            rows.append(
                {"concept": sg, "sg": sg, "pl": pl, "lf": true_log_freq, "leak": rng.random() < p_leak}
            )
    leaked_windows: set[str] = set()
    for r in rows:  # leaked questions first, so the others can be kept clear of them
        r["question"] = _question(rng, r["sg"], r["pl"])
    for r in rows:
        if r["leak"]:
            leaked_windows |= _windows(r["question"])
    for r in rows:
        while not r["leak"] and _windows(r["question"]) & leaked_windows:
            r["question"] = _question(rng, r["sg"], r["pl"])
    order = list(range(len(rows)))
    rng.shuffle(order)
    out = []
    for k, i in enumerate(order):
        r = rows[i]
        p_learner = 0.95 if r["leak"] else 1 / (1 + math.exp(-(-2.6 + 1.6 * r["lf"])))
        p_memorizer = 0.9 if r["leak"] else 0.2
        out.append(
            {
                "id": f"q{k:03d}",
                "question": r["question"],
                "concept": r["concept"],
                "leaked": r["leak"],
                "correct": {
                    "frequency-learner": rng.random() < p_learner,
                    "memorizer": rng.random() < p_memorizer,
                },
            }
        )
    return out


def _question(rng: random.Random, sg: str, pl: str) -> str:
    name, pronoun = rng.choice(NAMES)
    n = rng.randint(6, 60)
    text = rng.choice(TEMPLATES).format(
        P=name,
        pr=pronoun,
        sg=sg,
        pl=pl,
        site=rng.choice(SITES),
        n=n,
        m=rng.randint(2, n - 1),
        k=rng.randint(2, 9),
    )
    return text[0].upper() + text[1:]


def write_demo_corpus(
    out: str | Path, n_captions: int = 20_000, n_articles: int = 3_000, seed: int = 0
) -> dict:
    """Write the demo corpus into ``out`` and return what was written (files, documents, planted records)."""
    rng = random.Random(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "captions.tsv", "w", encoding="utf-8") as f:
        for i in range(n_captions):
            f.write(f"img{i // 5:05d}.jpg#{i % 5}\t{_caption(rng)}\n")
    articles = [{"id": f"art-{k:05d}", "text": _article(rng, k)} for k in range(n_articles)]
    third = n_articles // 3
    lines = [json.dumps(a) for a in articles[:third]]
    lines.insert(min(10, len(lines)), '{"id": "broken", "text": "this line is not valid JSON')
    lines.insert(min(20, len(lines)), json.dumps({"id": "empty", "text": ""}))
    (out / "articles-0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gz = "\n".join(json.dumps(a) for a in articles[third : 2 * third]) + "\n"
    (out / "articles-1.jsonl.gz").write_bytes(gzip.compress(gz.encode(), mtime=0))
    zs = "\n".join(json.dumps(a) for a in articles[2 * third :]) + "\n"
    (out / "articles-2.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(zs.encode()))
    n_web = max(1, n_articles // 6)
    rows = [{"id": f"web-{k}", "text": _article(rng, k + 1)} for k in range(n_web)]
    rows.append({"id": "web-null", "text": None})
    pq.write_table(pa.Table.from_pylist(rows), out / "web.parquet")
    leaked = [q for q in demo_eval(seed) if q["leaked"]]
    with open(out / "quiz-pages.jsonl", "w", encoding="utf-8") as f:
        for k, q in enumerate(leaked):  # the planted leak: eval questions copied verbatim
            page = f"Animal quiz, page {k + 1}. Question: {q['question']} Write your answer in the box below."
            f.write(json.dumps({"id": f"quiz-{k + 1}", "text": page}) + "\n")
    return {
        "dir": str(out),
        "files": sorted(p.name for p in out.iterdir()),
        "documents": n_captions + n_articles + n_web + len(leaked),
        "planted_bad_records": 3,
        "planted_leaks": len(leaked),
    }


def write_demo_eval(out: str | Path, seed: int = 0) -> dict:
    """Write the eval set (``questions.jsonl``: id, question, concept), the models' per-item results
    (``results.jsonl``, the long layout: id, model, correct), the concept vocabulary (``concepts.txt``) and
    the truth (``truth.json``: the leaked ids and what each model does) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    qs = demo_eval(seed)
    with open(out / "questions.jsonl", "w", encoding="utf-8") as f:
        for q in qs:
            f.write(json.dumps({"id": q["id"], "question": q["question"], "concept": q["concept"]}) + "\n")
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for model in MODELS:
            for q in qs:
                f.write(json.dumps({"id": q["id"], "model": model, "correct": q["correct"][model]}) + "\n")
    (out / "concepts.txt").write_text("".join(f"{sg}\n" for sg, _ in ANIMALS), encoding="utf-8")
    truth = {"seed": seed, "leaked_ids": [q["id"] for q in qs if q["leaked"]], "models": MODELS}
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return {"dir": str(out), "questions": len(qs), "leaked": len(truth["leaked_ids"]), "models": list(MODELS)}


def summarize(demo_dir: str | Path) -> str:
    """One plain-language paragraph about a finished quickstart run in ``demo_dir`` (index/, eval/,
    contamination/, analysis/), read from the files the commands wrote."""
    d = Path(demo_dir)
    manifest = json.loads((d / "index" / "manifest.json").read_text())
    truth = json.loads((d / "eval" / "truth.json").read_text())
    cont = json.loads((d / "contamination" / "summary.json").read_text())
    items = [
        json.loads(x) for x in (d / "contamination" / "items.jsonl").read_text().splitlines() if x.strip()
    ]
    ana = json.loads((d / "analysis" / "summary.json").read_text())
    leaked = set(truth["leaked_ids"])
    dirty = {r["id"] for r in items if r["bucket"] == "dirty"}
    b = cont["buckets"]
    counts = manifest["counts"]
    sim = ana["settings"]["similarity"]
    sim_words = (
        "nearest-neighbour cosine similarity (all-MiniLM-L6-v2 embeddings)"
        if sim == "neighbors"
        else "verbatim similarity (the share of a question inside its longest exact match)"
    )
    found = (
        "exactly the planted copies"
        if dirty == leaked
        else f"{len(dirty & leaked)} of the {len(leaked)} planted copies and {len(dirty - leaked)} other(s)"
    )
    parts = [
        f"freqindex indexed {counts['documents']:,} generated documents ({counts['quarantined']} planted bad "
        f"records were quarantined, not lost).",
        f"Of {cont['n_items']} eval questions, the contamination check marked {b['dirty']} dirty ({found}: "
        f"{len(leaked)} questions had been copied verbatim into quiz pages of the corpus), "
        f"{b['suspicious']} suspicious and {b['clean']} clean.",
        f"Joining concept frequency, {sim_words} and each model's answers:",
    ]
    verdict_words = {
        "frequency_effect_persists": "its accuracy rises with how often the question's animal appears in the "
        "corpus, and the rise survives controlling for similarity, so it looks learned",
        "explained_by_similarity": "its accuracy also rises with frequency, but the rise disappears once "
        "similarity to the corpus is controlled: it reflects copies of the questions, not learning",
        "no_frequency_effect": "its accuracy does not rise with frequency",
        "inconclusive": "the data cannot tell frequency from similarity",
    }
    for model, m in ana["models"].items():
        f = m["frequency"]
        ci = f.get("ci") or [float("nan"), float("nan")]
        parts.append(
            f"{model} (accuracy {m['accuracy']:.0%}; log-odds slope {f['slope']:.2f} [{ci[0]:.2f}, "
            f"{ci[1]:.2f}] per tenfold frequency): {verdict_words.get(m['verdict'], m['verdict'])}."
        )
    parts.append(f"The whole story, with figures, is in {d / 'analysis' / 'report.html'}.")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m freqindex.demo", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="write the eval set, the models' results, the vocabulary and the truth")
    e.add_argument("out")
    e.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("summary", help="print the plain-language summary of a finished quickstart run")
    s.add_argument("demo_dir")
    a = ap.parse_args(argv)
    if a.cmd == "eval":
        info = write_demo_eval(a.out, a.seed)
        print(
            f"wrote {info['questions']} questions ({info['leaked']} of them also planted verbatim in the demo "
            f"corpus) and the results of {len(info['models'])} models to {info['dir']}"
        )
    else:
        print(summarize(a.demo_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
