"""How often the judge model agrees with human labels (a labelled corpus of question, answer, rubric, label).

    python bench/bench_judge.py --judge-model DIR_OR_HUB_ID [--device cuda] [--corpus fixtures/judge/labelled.jsonl]
    python bench/bench_judge.py --judge-model NAME --judge-base-url http://127.0.0.1:8000/v1 [--api-key-env OPENAI_API_KEY]
    python bench/bench_judge.py --judge-model NAME --judge-base-url URL --judge-endpoint completions --judge-tokenizer HUB_ID

Each corpus line is {"id", "question", "answer", "rubric", "label": true|false}. The judge is asked
exactly as the `judge` check asks it (same prompt, greedy), and the script prints the agreement
(judge verdict == label), the confusion counts, and how many replies had no VERDICT line. Without
--judge-model it says so and exits 2: there is nothing to measure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shisa_spec.generation.judging import Judge, JudgeItem, JudgeOptions  # noqa: E402
from shisa_spec.spec.checks.judge import parse_reply  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "fixtures" / "judge" / "labelled.jsonl"))
    ap.add_argument("--judge-model", default=None)
    ap.add_argument("--judge-base-url", default=None)
    ap.add_argument("--judge-tokenizer", default=None)
    ap.add_argument("--judge-endpoint", default="chat", choices=["chat", "completions"])
    ap.add_argument("--api-key-env", default=None)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    if not a.judge_model:
        print("no judge configured (--judge-model): nothing to measure", file=sys.stderr)
        return 2
    rows = [json.loads(l) for l in Path(a.corpus).read_text(encoding="utf-8").splitlines() if l.strip()]
    judge = Judge(JudgeOptions(a.judge_model, a.judge_base_url, a.judge_tokenizer, a.api_key_env, a.device, endpoint=a.judge_endpoint))
    items = [JudgeItem(r["id"], "judge", r["question"], r["answer"], r["rubric"]) for r in rows]
    replies = judge.ask(items)
    tp = tn = fp = fn = unparsed = 0
    for r in rows:
        passed, _ = parse_reply(replies[(r["id"], "judge")]["reply"])
        if passed is None:
            unparsed += 1
            passed = False  # the check fails an unparseable reply
        if passed and r["label"]:
            tp += 1
        elif passed:
            fp += 1
        elif r["label"]:
            fn += 1
        else:
            tn += 1
    n = len(rows)
    print(f"judge {a.judge_model}{' at ' + a.judge_base_url if a.judge_base_url else ''} on {a.corpus}: {n} labelled answers")
    print(f"agreement {(tp + tn) / n:.3f} ({tp + tn}/{n}); passed-and-labelled-pass {tp}, failed-and-labelled-fail {tn}, "
          f"false pass {fp}, false fail {fn}; replies without a VERDICT line {unparsed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
