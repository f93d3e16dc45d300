"""The main job end to end, as the README shows it: `ccpt new demo --defaults`, then train the
default (digits) project for 60 steps on this CPU and check it against its spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ccpt.commands.new import BASE_STEPS, TUNING_STEPS
from tests.conftest import run_ccpt
from tests.project_support import gate_status, next_steps, only_run, run_in_project, run_records
from tests.scaffold_support import git_isolated

PRODUCT_WORDS = {"mug", "bottle", "t-shirt", "sneaker", "backpack", "lamp"}  # the built-in photos' products

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures(git_isolated.__name__)]


def test_the_default_project_learns_on_cpu_and_passes_its_acceptance_gates(tmp_path: Path) -> None:
    made = run_ccpt("new", "demo", "--defaults", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo"

    train = run_in_project(project, "src/runner.py", "train", "--max-steps", "60")
    assert train.returncode == 0, train.stderr[-3000:]
    records = run_records(only_run(project))
    accuracies = [r["accuracy"] for r in records if r["kind"] == "eval"]
    assert len(accuracies) == 3 and accuracies[-1] > accuracies[0]
    assert accuracies[-1] > 0.5  # ten classes: chance is 0.1
    assert records[-1]["kind"] == "final" and records[-1]["step"] == 60

    check = run_in_project(project, "src/runner.py", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    spec = yaml.safe_load((project / "specs" / "task.yaml").read_text())
    items = [item for section in ("constraints", "rewards", "penalties") for item in spec.get(section, [])]
    metrics = [
        item["threshold"]["metric"] for item in items if isinstance(item, dict) and "threshold" in item
    ]
    assert {"accuracy", "macro_f1", "latency_ms", "model_size_mb", "train_val_gap"} <= set(metrics)
    for metric in metrics:
        assert metric in check.stdout
    assert "< 2 min" in check.stdout  # the spec's "under 2 minutes", not 0.0333 hours
    assert "all measured gates pass" in check.stdout

    gates = json.loads(run_in_project(project, "src/runner.py", "check", "--json").stdout)
    assert {g["metric"]: g["status"] for g in gates} == dict.fromkeys(metrics, "pass")


def test_a_finished_run_resumes_to_more_steps_and_evaluates_consistently(tmp_path: Path) -> None:
    assert run_ccpt("new", "demo", "--defaults", "--no-git", cwd=tmp_path).returncode == 0
    project = tmp_path / "demo"
    assert run_in_project(project, "src/runner.py", "train", "--max-steps", "20").returncode == 0
    resumed = run_in_project(project, "src/runner.py", "train", "--resume", "--max-steps", "40")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = run_records(only_run(project))
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == sorted(steps) and steps[-1] == 40 and 20 in steps
    final = [r for r in records if r["kind"] == "final"][-1]
    evaluated = json.loads(run_in_project(project, "src/runner.py", "evaluate", "--json").stdout)
    assert evaluated["accuracy"] == pytest.approx(final["accuracy"])

    # Runs kept elsewhere (--set runs_dir=...) are resumed from there, not from runs/.
    elsewhere = tmp_path / "elsewhere"
    first = ["train", "--max-steps", "10", "--set", f"runs_dir={elsewhere}"]
    assert run_in_project(project, "src/runner.py", *first).returncode == 0
    again = run_in_project(
        project, "src/runner.py", "train", "--resume", "--max-steps", "15", "--set", f"runs_dir={elsewhere}"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    (other_run,) = elsewhere.iterdir()
    last = run_records(other_run)[-1]
    assert last["kind"] == "final" and last["step"] == 15
    assert run_records(only_run(project))[-1]["step"] == 40  # the run under runs/ was left alone


def test_the_ner_project_trains_on_its_generated_notes_and_checks_per_type_gates(tmp_path: Path) -> None:
    """The named-entity-recognition spec end to end with its defaults: its gates on one entity type
    (recall on drug names), on the worst type (precision on any type) and on notes of one patient
    in both splits are measured, not skipped."""
    made = run_ccpt(
        "new", "ner", "--spec", "named-entity-recognition", "--defaults", "--no-git", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    project = tmp_path / "ner"
    train = run_in_project(project, "src/runner.py", "train")
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["entities"] > 1000
    assert {"f1_drug", "recall_dose", "precision_condition", "worst_class_precision"} <= set(final)

    gates = json.loads(run_in_project(project, "src/runner.py", "check", "--json").stdout)
    status = {gate["metric"]: gate_status(gate) for gate in gates}
    passed = ["parameters_m", "f1", "recall_drug", "worst_class_precision", "split_overlap"]
    assert status == dict.fromkeys(passed, "pass") | {"latency_ms": "timed"}, gates
    measured = {gate["metric"]: gate["observed"] for gate in gates}
    assert measured["recall_drug"] == final["recall_drug"] and measured["f1"] == final["f1"]
    assert measured["split_overlap"] == 0  # the built-in notes are split by patient


def test_the_segmentation_project_trains_on_its_scenes_and_checks_its_spec(tmp_path: Path) -> None:
    """The semantic-segmentation spec end to end with its defaults: mIoU and water IoU from the
    held-out scenes, no scene on both sides of the split, and whole scenes labelled per second,
    all measured; GPU memory is not measured on a CPU."""
    made = run_ccpt("new", "seg", "--spec", "semantic-segmentation", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "seg"
    train = run_in_project(project, "src/runner.py", "train")
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["predicted_classes"] == 5
    assert {"iou_building", "iou_road", "iou_vegetation", "iou_water", "iou_other"} <= set(final)

    gates = json.loads(run_in_project(project, "src/runner.py", "check", "--json").stdout)
    status = {gate["metric"]: gate_status(gate) for gate in gates}
    measured = {gate["metric"]: gate["observed"] for gate in gates}
    # The spec's 20 scenes a second: a scene in one pass, back to back on this 2-core CPU `check`
    # measured 33 to 46 a second, 21 on one thread, and under 20 on a CI machine running two test
    # workers; so the test asks only that it was timed and judged.
    assert status == {
        "inference_throughput": "timed",
        "gpu_memory_gb": "not measured",
        "gpu_hours": "pass",
        "miou": "pass",
        "iou_water": "pass",
        "split_overlap": "pass",
    }, gates
    assert measured["miou"] == final["miou"] and measured["split_overlap"] == 0


def test_the_detection_project_finds_people_and_forklifts_and_checks_its_spec(tmp_path: Path) -> None:
    """The object-detection spec end to end with its defaults: mAP@0.5 and person recall on the
    held-out camera sessions, no session on both sides of the split, the time to read a 1280 x 720
    frame (median and 95th percentile) and the model's size, all measured; then a frame posted
    the way a camera would, through `runner.py predict`."""
    made = run_ccpt("new", "det", "--spec", "object-detection", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "det"
    train = run_in_project(project, "src/runner.py", "train")
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["examples"] == 96 and final["boxes"] > 300
    assert {"ap_person", "ap_forklift", "recall_forklift", "precision_person"} <= set(final)

    gates = json.loads(run_in_project(project, "src/runner.py", "check", "--json").stdout)
    status = {(gate["section"], gate["metric"]): gate_status(gate) for gate in gates}
    assert status == {
        ("constraints", "latency_ms"): "timed",
        ("constraints", "model_size_mb"): "pass",
        ("constraints", "gpu_hours"): "pass",
        ("rewards", "map"): "pass",
        ("rewards", "recall_person"): "pass",
        ("penalties", "latency_p95_ms"): "timed",
        ("penalties", "split_overlap"): "pass",
    }, gates
    measured = {gate["metric"]: gate["observed"] for gate in gates}
    assert measured["map"] == final["map"] and measured["recall_person"] == final["recall_person"]
    assert measured["latency_p95_ms"] >= measured["latency_ms"] and measured["split_overlap"] == 0

    # Held-out frames at 720p, as the cameras send them: the people the generator drew are found.
    save_frames = (
        "import json, sys; sys.path.insert(0, 'src'); from PIL import Image; from config import Config;"
        " from data import read_frames; _, val, _, _, _ = read_frames(Config());"
        " [Image.fromarray(val[i][0]).resize((1280, 720)).save(f'frame{i}.png') for i in range(6)];"
        " print(json.dumps([val[i][1] for i in range(6)]))"
    )
    drawn = run_in_project(project, "-c", save_frames)
    assert drawn.returncode == 0, drawn.stderr
    frames = [f"frame{i}.png" for i in range(6)]
    answers = run_in_project(project, "src/runner.py", "predict", "--json", *frames)
    assert answers.returncode == 0, answers.stderr
    people = found = 0
    for truth, line in zip(json.loads(drawn.stdout), answers.stdout.splitlines(), strict=True):
        boxes = [box["box"] for box in json.loads(line)["boxes"] if box["label"] == "person"]
        for label, *corners in truth:
            if label == 0:  # a person, in the 320 x 180 frame's pixels
                people += 1
                found += any(iou([4 * value for value in corners], box) >= 0.5 for box in boxes)
    assert people >= 10 and found >= 0.8 * people, (found, people)


def test_the_captioning_project_describes_held_out_photos_and_checks_its_spec(tmp_path: Path) -> None:
    """The image-captioning spec end to end with its defaults: CIDEr-D and BLEU-4 of the captions
    beam search writes for the held-out photos, the time to caption one and the model's size, all
    measured; then photos captioned through `runner.py predict`, as a catalogue would send them."""
    made = run_ccpt("new", "cap", "--spec", "image-captioning", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "cap"
    train = run_in_project(project, "src/runner.py", "train")
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["examples"] == 480
    assert 0 < final["max_words"] <= 20 and final["distinct_captions"] > 100

    gates = json.loads(run_in_project(project, "src/runner.py", "check", "--json").stdout)
    status = {(gate["section"], gate["metric"]): gate_status(gate) for gate in gates}
    assert status == {
        ("constraints", "latency_ms"): "timed",
        ("constraints", "model_size_mb"): "pass",
        ("rewards", "cider"): "pass",
        ("rewards", "bleu"): "pass",
        ("penalties", "latency_ms"): "timed",
    }, gates
    measured = {gate["metric"]: gate["observed"] for gate in gates}
    assert measured["cider"] == final["cider"] and measured["bleu"] == final["bleu"]

    # Held-out photos at a camera's size: each caption names the product and its colour.
    save_photos = (
        "import json, sys; sys.path.insert(0, 'src'); from PIL import Image; from config import Config;"
        " from data import read_photos; _, val = read_photos(Config());"
        " [Image.fromarray(val[i][0]).resize((640, 640)).save(f'photo{i}.png') for i in range(10)];"
        " print(json.dumps([val[i][1][0] for i in range(10)]))"
    )
    saved = run_in_project(project, "-c", save_photos)
    assert saved.returncode == 0, saved.stderr
    photos = [f"photo{i}.png" for i in range(10)]
    answers = run_in_project(project, "src/runner.py", "predict", "--json", *photos)
    assert answers.returncode == 0, answers.stderr
    right = 0
    for reference, line in zip(json.loads(saved.stdout), answers.stdout.splitlines(), strict=True):
        caption = json.loads(line)["caption"].split()
        colour, product = reference.split()[1], next(w for w in reference.split() if w in PRODUCT_WORDS)
        right += colour in caption and product in caption
    assert right >= 8, answers.stdout


@pytest.mark.timeout(3600)  # the defaults train for longer than the suite's 10 minutes a test
def test_the_chart_question_project_answers_questions_on_held_out_charts_and_checks_its_spec(
    tmp_path: Path,
) -> None:
    """The visual-question-answering spec end to end with its defaults (8 epochs of its 12,000
    charts, 2,400 steps): relaxed accuracy on the held-out charts' questions and on their stacked
    bar charts, and the model's size, all measured; GPU memory is not measured on a CPU. Then
    held-out charts asked a question through `runner.py predict`, as an analyst would ask it."""
    made = run_ccpt(
        "new", "charts", "--spec", "visual-question-answering", "--defaults", "--no-git", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    project = tmp_path / "charts"
    train = run_in_project(project, "src/runner.py", "train", timeout=3600)
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["step"] == 2400 and final["examples"] == 9600
    groups = ["bar", "stacked_bar", "line", "value", "extreme", "compare", "count"]
    figures = {name: final[name] for name in ["accuracy", "exact_match", *(f"accuracy_{g}" for g in groups)]}
    assert figures["accuracy"] >= 0.65 and figures["accuracy_stacked_bar"] >= 0.5, figures
    # Comparisons are learned late (chance, 0.5, until about step 1,200); the defaults learned them
    # to 0.86-0.94 in all six runs of 2,400 steps measured, 0.89 on a 2-core CPU.
    assert figures["accuracy_compare"] >= 0.75, figures

    check = run_in_project(project, "src/runner.py", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    gates = json.loads(check.stdout)
    status = {(gate["section"], gate["metric"]): gate_status(gate) for gate in gates}
    assert status == {
        ("constraints", "gpu_memory_gb"): "not measured",
        ("constraints", "parameters_m"): "pass",
        ("rewards", "accuracy"): "pass",
        ("penalties", "accuracy_stacked_bar"): "pass",
    }, gates
    measured = {gate["metric"]: gate["observed"] for gate in gates}
    assert measured["accuracy"] == final["accuracy"]
    assert measured["accuracy_stacked_bar"] == final["accuracy_stacked_bar"]

    # Held-out bar charts, four times the size the reader reads: how many bars each has.
    save_charts = (
        "import json, sys; sys.path.insert(0, 'src'); from PIL import Image; from config import Config;"
        " from data import read_charts; _, val = read_charts(Config());"
        " bars = [c for c in val if c[1] != 'line'][:10];"
        " [Image.fromarray(c[0]).resize((256, 256), Image.NEAREST).save(f'chart{i}.png')"
        " for i, c in enumerate(bars)];"
        " print(json.dumps([c[2][3].answer for c in bars]))"
    )
    saved = run_in_project(project, "-c", save_charts)
    assert saved.returncode == 0, saved.stderr
    charts = [f"chart{i}.png" for i in range(10)]
    question = ["--question", "How many bars are there?"]
    answers = run_in_project(project, "src/runner.py", "predict", "--json", *question, *charts)
    assert answers.returncode == 0, answers.stderr
    lines = [json.loads(line) for line in answers.stdout.splitlines()]
    assert [line["input"] for line in lines] == charts
    right = sum(line["answer"] == count for line, count in zip(lines, json.loads(saved.stdout), strict=True))
    assert right >= 8, answers.stdout


@pytest.mark.timeout(3600)  # the defaults train for longer than the suite's 10 minutes a test
def test_the_pretraining_project_learns_features_a_linear_probe_reads_and_checks_its_spec(
    tmp_path: Path,
) -> None:
    """The vision-pretraining spec end to end with its defaults (54 epochs of its 4,800 training
    shapes, 1,998 steps of masked-autoencoder pre-training, no label read): the reconstruction
    falls, and a linear probe on the frozen features names the held-out shapes far above chance
    (0.2), where the same probe read 0.31 of them after 250 steps. Then shapes drawn from another
    seed than the data's (in neither split) go through `runner.py predict`: restored, and named by
    the probe the run fitted."""
    made = run_ccpt("new", "shapes", "--spec", "vision-pretraining", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "shapes"
    train = run_in_project(project, "src/runner.py", "train", timeout=3600)
    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = only_run(project)
    records = run_records(run_dir)
    evaluations = [record for record in records if record["kind"] == "eval"]
    final = records[-1]
    assert final["kind"] == "final" and final["step"] == 1998 and final["labelled_examples"] == 1200
    assert final["eval_loss"] < 0.6 * evaluations[0]["eval_loss"], evaluations
    # Measured: 0.31 of the shapes after 250 steps, 0.74 after 1,998 on a 2-core CPU; 0.66-0.73
    # with three seeds on an H200 in fp32.
    assert final["accuracy"] >= 0.6 and final["accuracy"] >= evaluations[0]["accuracy"] + 0.2, evaluations
    assert (run_dir / "probe.pt").is_file()  # fitted once, after training

    check = run_in_project(project, "src/runner.py", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    gates = json.loads(check.stdout)
    status = {(gate["section"], gate["metric"]): gate_status(gate) for gate in gates}
    assert status == {
        ("constraints", "gpu_hours"): "pass",
        ("constraints", "gpu_memory_gb"): "not measured",
        ("rewards", "accuracy"): "pass",
    }, gates
    assert {gate["metric"]: gate["observed"] for gate in gates}["accuracy"] == final["accuracy"]

    save_shapes = (
        "import json, sys; sys.path.insert(0, 'src'); import numpy as np; from PIL import Image;"
        " from data import SHAPES, shape_image; rng = np.random.default_rng(99); drawn = [shape_image(rng)"
        " for _ in range(20)]; [Image.fromarray(p).save(f'shape{i}.png') for i, (p, _) in enumerate(drawn)];"
        " print(json.dumps([SHAPES[label] for _, label in drawn]))"
    )
    saved = run_in_project(project, "-c", save_shapes)
    assert saved.returncode == 0, saved.stderr
    images = [f"shape{i}.png" for i in range(20)]
    answers = run_in_project(project, "src/runner.py", "predict", "--json", *images)
    assert answers.returncode == 0, answers.stderr
    lines = [json.loads(line) for line in answers.stdout.splitlines()]
    assert [line["input"] for line in lines] == images
    right = sum(line["label"] == shape for line, shape in zip(lines, json.loads(saved.stdout), strict=True))
    assert right >= 11, answers.stdout  # chance: 4 of 20
    errors = [line["reconstruction_error"] for line in lines]
    assert sum(errors) / len(errors) < 2 * final["eval_loss"], errors


@pytest.mark.timeout(3600)  # the defaults train for longer than the suite's 10 minutes a test
def test_the_domain_adaptation_project_learns_contracts_without_forgetting_and_checks_its_spec(
    tmp_path: Path,
) -> None:
    """The domain-adaptation spec end to end with its defaults: the original encoder is pre-trained
    on the standard library's docstrings (3,000 steps, once, then cached), and adapted for 1,496
    steps to the built-in contract clauses with half as many general paragraphs replayed. Measured
    against where it started: perplexity on the held-out clauses falls from the thousands to under
    the spec's 6, the general benchmark's masked-token accuracy holds (the spec's penalty: a drop of
    more than 0.02), and the clause probe names the kinds. Then clauses drawn from another seed, a
    word of each masked, go through `runner.py predict`."""
    made = run_ccpt("new", "contracts", "--spec", "domain-adaptation", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "contracts"
    train = run_in_project(project, "src/runner.py", "train", timeout=3600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert len(list((project / ".cache" / "encoders").iterdir())) == 1  # the original, for the next run
    run_dir = only_run(project)
    records = run_records(run_dir)
    start = records[0]
    final = records[-1]
    assert start["kind"] == "eval" and start["step"] == 0
    assert final["kind"] == "final" and final["step"] == 1496 and final["labelled_examples"] == 1000
    assert final["perplexity_before"] == start["perplexity"] > 100
    assert final["perplexity"] < 6
    assert final["accuracy_drop"] == pytest.approx(start["general_accuracy"] - final["general_accuracy"])
    assert final["accuracy_drop"] <= 0.02 and final["macro_f1"] >= 0.85
    assert (run_dir / "probe.pt").is_file()  # fitted once, after training

    check = run_in_project(project, "src/runner.py", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    gates = json.loads(check.stdout)
    status = {(gate["section"], gate["metric"]): gate_status(gate) for gate in gates}
    assert status == {
        ("constraints", "gpu_hours"): "pass",
        ("constraints", "gpu_memory_gb"): "not measured",
        ("rewards", "perplexity"): "pass",
        ("rewards", "macro_f1"): "pass",
        ("penalties", "accuracy_drop"): "pass",
    }, gates

    new_clauses = """
import glob, json, sys
sys.path.insert(0, "src")
import numpy as np
from transformers import AutoTokenizer
from data import CLAUSES, contract_clause
from predictor import mask_a_word

tokenizer = AutoTokenizer.from_pretrained(glob.glob("runs/*/tokenizer")[0])
rng = np.random.default_rng(99)  # the built-in clauses are drawn with 2026
drawn = [(kind, contract_clause(kind, rng)) for kind in list(CLAUSES) * 3]
found = []
for index, (kind, text) in enumerate(drawn):
    masked = mask_a_word(text, index, lambda word: len(tokenizer.tokenize(word)), 60)
    word = next(w for w, m in zip(text.split(), masked.split()) if w != m).strip(".,;:()")
    found.append((kind, masked, word))
print(json.dumps(found))
"""
    saved = run_in_project(project, "-c", new_clauses)
    assert saved.returncode == 0, saved.stderr
    clauses = json.loads(saved.stdout)
    texts = [text for _, text, _ in clauses]
    answers = run_in_project(project, "src/runner.py", "predict", "--json", *texts)
    assert answers.returncode == 0, answers.stderr
    lines = [json.loads(line) for line in answers.stdout.splitlines()]
    assert [line["text"] for line in lines] == texts
    restored = sum(
        line["masks"][0]["top"][0]["token"] == word.lower()
        for line, (_, _, word) in zip(lines, clauses, strict=True)
    )
    kinds = sum(line["label"] == kind for line, (kind, _, _) in zip(lines, clauses, strict=True))
    assert restored >= 12 and kinds >= 22, answers.stdout


def test_the_invoice_project_extracts_fields_from_every_page_and_flags_bad_totals(tmp_path: Path) -> None:
    """The document-understanding spec end to end with its defaults: the layout tagger trains on the
    built-in invoices and meets the spec's field F1 and totals exact match on the held-out vendors'
    invoices; `check` times a page well under the 2 s the spec allows. Then validation invoices go
    through `runner.py predict` as OCR'd JSON files: a multi-page one gets line items from every
    page, and one whose totals do not add up is flagged."""
    spec = ["--spec", "document-understanding", "--defaults", "--no-git"]
    made = run_ccpt("new", "invoices", *spec, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "invoices"
    train = run_in_project(project, "src/runner.py", "train", timeout=1800)
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["f1"] >= 0.9 and final["exact_match"] >= 0.95, final
    assert final["multipage_item_recall"] >= 0.95 and final["unflagged_mismatches"] <= 0.05, final

    check = run_in_project(project, "src/runner.py", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    gates = {(gate["section"], gate["metric"]): gate for gate in json.loads(check.stdout)}
    assert {key: gate_status(gate) for key, gate in gates.items()} == {
        ("constraints", "latency_ms"): "timed",
        ("rewards", "f1"): "pass",
        ("rewards", "exact_match"): "pass",
    }, gates

    chosen = """
import json, sys
sys.path.insert(0, "src")
from data import builtin_invoices, builtin_split
from extraction import extract

val = builtin_split(builtin_invoices())[1]
def fields(invoice):
    return extract(invoice.pages, [page.tags for page in invoice.pages])
long = next(i for i in val if len(i.pages) == 3)
bad = next(i for i in val if fields(i)["flags"] and len(i.pages) == 1)
for name, invoice in (("long", long), ("bad", bad)):
    pages = [{"words": p.words, "boxes": [list(b) for b in p.boxes]} for p in invoice.pages]
    with open(name + ".json", "w") as out:
        json.dump({"pages": pages}, out)
print(json.dumps({"long": fields(long), "bad": fields(bad)}))
"""
    written = run_in_project(project, "-c", chosen)
    assert written.returncode == 0, written.stderr
    truth = json.loads(written.stdout)
    answers = run_in_project(project, "src/runner.py", "predict", "--json", "long.json", "bad.json")
    assert answers.returncode == 0, answers.stderr
    long, bad = (json.loads(line) for line in answers.stdout.splitlines())
    assert {item["page"] for item in long["line_items"]} == {1, 2, 3}
    assert long["line_items"] == truth["long"]["line_items"] and long["total"] == truth["long"]["total"]
    assert bad["flags"] and bad["total"] == truth["bad"]["total"], bad

    # Scans of ten validation invoices, read by tesseract: the OCR'd words and boxes go through the
    # same model (measured: the right total from 29 of 30 scans).
    scans = run_in_project(project, "src/data.py", "scans", "10", "--scans")
    assert scans.returncode == 0, scans.stderr
    tiffs = sorted(str(path.relative_to(project)) for path in (project / "scans").glob("*.tif"))
    read = run_in_project(
        project, "src/runner.py", "predict", "--json", *tiffs, *[t[:-4] + ".json" for t in tiffs]
    )
    assert read.returncode == 0, read.stderr
    answers = [json.loads(line) for line in read.stdout.splitlines()]
    from_scans, from_json = answers[:10], answers[10:]
    assert sum(s["total"] == j["total"] for s, j in zip(from_scans, from_json, strict=True)) >= 8, answers


def iou(first: list[float], second: list[float]) -> float:
    width = max(min(first[2], second[2]) - max(first[0], second[0]), 0)
    height = max(min(first[3], second[3]) - max(first[1], second[1]), 0)
    overlap = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return overlap / (area - overlap)


def test_the_question_answering_project_reads_its_manuals_and_checks_its_spec(tmp_path: Path) -> None:
    """The question-answering spec end to end with its defaults: exact match and F1 over the
    held-out devices' questions (some without an answer), the time to answer one, retrieval
    included, and the model's size, all measured."""
    made = run_ccpt("new", "qa", "--spec", "question-answering", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "qa"
    train = run_in_project(project, "src/runner.py", "train")
    assert train.returncode == 0, train.stderr[-3000:]
    final = run_records(only_run(project))[-1]
    assert final["kind"] == "final" and final["examples"] == 840
    assert 0.5 < final["no_answer_accuracy"] <= 1 and 0 < final["abstentions"] < 0.5

    gates = json.loads(run_in_project(project, "src/runner.py", "check", "--json").stdout)
    status = {gate["metric"]: gate_status(gate) for gate in gates}
    passed = ["model_size_mb", "exact_match", "f1"]
    assert status == dict.fromkeys(passed, "pass") | {"latency_ms": "timed"}, gates
    measured = {gate["metric"]: gate["observed"] for gate in gates}
    assert measured["exact_match"] == final["exact_match"] and measured["f1"] == final["f1"]

    question = "How long is the warranty of the Solace S78 label printer?"  # a held-out device
    answer = run_in_project(project, "src/runner.py", "predict", "--json", question)
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["title"] == "Solace S78 label printer: Warranty"  # retrieval found its section
    assert result["abstained"] or result["context"][result["start"] : result["end"]] == result["answer"]


def test_the_lora_project_follows_its_own_next_steps_to_a_fine_tuned_run_its_gates_measure(
    tmp_path: Path,
) -> None:
    """The lora-fine-tuning spec judges a model fine-tuned from another: `ccpt new` says to train a
    base run, then LoRA adapters on it, and following those steps gives a run whose trained share,
    win rate against the base and forgetting `check` measures, all within the spec's limits."""
    made = run_ccpt("new", "lora", "--spec", "lora-fine-tuning", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "lora"
    steps = [step for step in next_steps(made.stdout) if "src/runner.py" in step]
    assert steps == [
        "python src/runner.py train --max-steps 60 --run-name base",
        "python src/runner.py train --max-steps 60 --set init_from=base --set lora_rank=1",
        "python src/runner.py check",
    ]
    for step in steps[:2]:
        trained = run_in_project(project, *step.split()[1:])
        assert trained.returncode == 0, trained.stderr[-3000:]
    check = run_in_project(project, "src/runner.py", "check", "--json")
    status = {gate["metric"]: gate["status"] for gate in json.loads(check.stdout)}
    assert status["trainable_params_fraction"] == "pass", check.stdout  # rank 1: under 1% of the tiny GPT
    assert status["win_rate"] == "pass" and status["accuracy_drop"] == "pass", check.stdout


@pytest.mark.timeout(3600)  # 1,500 steps in all: longer than the suite's 10 minutes a test
def test_the_instruction_project_tunes_a_base_to_answer_in_its_chat_template_and_checks_its_spec(
    tmp_path: Path,
) -> None:
    """The instruction-tuning spec: `ccpt new` says to train a base on the plain text, then tune it
    on the instruction data (requests made from the standard library's functions, in the chat
    template, the loss on the answers only). Following those steps gives a run that answers the
    held-out instructions with the ROUGE-L the spec asks, beats its base on them, never trained
    on a validation instruction, and took no loss on an instruction's tokens. Then a function of
    no file at all is asked about through `runner.py predict`."""
    made = run_ccpt("new", "chat", "--spec", "instruction-tuning", "--defaults", "--no-git", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "chat"
    steps = [step for step in next_steps(made.stdout) if "src/runner.py train" in step]
    assert steps == [
        f"python src/runner.py train --max-steps {BASE_STEPS} --run-name base --set dataset=builtin"
        " --set tokenizer=bpe --set vocab_size=4096",
        f"python src/runner.py train --max-steps {TUNING_STEPS} --set init_from=base",
    ]
    for step in steps:
        trained = run_in_project(project, *step.split()[1:], timeout=3000)
        assert trained.returncode == 0, trained.stderr[-3000:]

    check = run_in_project(project, "src/runner.py", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    gates = {gate["metric"]: gate for gate in json.loads(check.stdout)}
    assert {metric: gate["status"] for metric, gate in gates.items()} == {
        "parameters_m": "pass",
        "gpu_hours": "pass",
        "rouge_l": "pass",
        "win_rate": "pass",
        "split_overlap": "pass",
        "prompt_loss_tokens": "pass",
    }, gates
    assert gates["prompt_loss_tokens"]["observed"] == 0  # the loss is on the answers alone

    asked = [
        "List the parameters of def resize(image, width, height=None)",
        "List the parameters of def close(self)",
    ]
    answers = run_in_project(project, "src/runner.py", "predict", "--json", "--temperature", "0", *asked)
    assert answers.returncode == 0, answers.stderr
    resize, close = [json.loads(line) for line in answers.stdout.splitlines()]
    assert resize["well_formed"] and close["well_formed"], (resize, close)
    # Names copied from the signature, not made up; a method of self alone takes nothing.
    named = set(resize["completion"].split(", "))
    assert named and named <= {"image", "width", "height"}, resize
    assert close["completion"] == "none", close
