"""The generated question-answering project end to end: retrieval, then reading, against reading
the right passage.

Takes a project rendered with `ccpt new --spec question-answering` and trained (its latest run, or
--run). For every held-out question it asks the project's Predictor twice: as `runner.py predict`
does with no passage (BM25 picks a section of all the manuals, the reader reads it), and once
given the question's own passage and its title (the reader alone: what the run's exact_match
scores). Reports the exact match of each, how often retrieval's first section is the right one
for the questions that have an answer, and the median time of a question end to end.

    python benchmarks/qa_retrieval.py --project DIR [--run NAME] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def measure(project: Path, run: str) -> dict[str, float]:
    sys.path.insert(0, str(project / "src"))
    from config import Config, find_run
    from predictor import Predictor

    predictor = Predictor(find_run(Config().runs_path(), run, need_model=True), device="cpu")
    questions = predictor.questions
    end_to_end = reader_alone = first_section_right = 0
    timings = []
    for question in questions:
        start = time.perf_counter()
        found = predictor.predict(question.question)
        timings.append((time.perf_counter() - start) * 1000)
        end_to_end += found["answer"] == question.answer
        if question.answer:
            first_section_right += found["title"] == question.title
        right = predictor.read(question.question, [(question.title, question.context)])
        reader_alone += right["answer"] == question.answer
    answerable = sum(1 for question in questions if question.answer)
    return {
        "questions": len(questions),
        "exact_match_end_to_end": end_to_end / len(questions),
        "exact_match_right_passage": reader_alone / len(questions),
        "retrieval_top1_answerable": first_section_right / max(answerable, 1),
        "ms_per_question": statistics.median(timings),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, required=True, help="a trained question-answering project")
    parser.add_argument("--run", default="", help="run name (default: the latest with a model)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure(args.project.resolve(), args.run)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"held-out questions: {results['questions']}")
    print(f"exact match, retrieval then reading: {results['exact_match_end_to_end']:.3f}")
    print(f"exact match, reading the right passage: {results['exact_match_right_passage']:.3f}")
    top1 = results["retrieval_top1_answerable"]
    print(f"retrieval's first section right (answerable questions): {top1:.3f}")
    print(f"median time of a question, end to end: {results['ms_per_question']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
