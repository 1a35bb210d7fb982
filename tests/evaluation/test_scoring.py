"""score_task: generated answers judged by the text metrics, and the likelihood-ranked ``choice`` metric."""

import pytest
import torch

from app.core.enums import METRICS
from tests.evaluation.teaching import TAUGHT
from worker.evaluation import score_task
from worker.evaluation.scoring import rank_labels

QA = [{"prompt": p, "completion": c} for p, c in TAUGHT.items() if p.startswith("Q:")]
FRUIT = [{"prompt": "Is an apple a fruit?\n", "completion": " yes"},
         {"prompt": "Is a brick a fruit?\n", "completion": " no"}]


def test_exact_match_is_one_on_taught_answers_and_zero_on_an_untrained_model(taught_causal, tiny_causal):
    result = score_task(*taught_causal, QA, batch_size=4)
    assert result["score"] == 1.0 and result["n"] == len(QA) and result["seconds"] >= 0
    assert score_task(*tiny_causal, QA)["score"] == 0.0


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_a_job_may_ask_for_is_scored(taught_causal, metric):
    assert score_task(*taught_causal, FRUIT, metric=metric, max_new_tokens=4)["n"] == len(FRUIT)


def test_wrong_references_score_zero(taught_causal):
    wrong = [{"prompt": r["prompt"], "completion": " Paris."} for r in QA]
    assert score_task(*taught_causal, wrong, metric="exact_match")["score"] == 0.0


@pytest.mark.parametrize(("metric", "reference", "expected"),
                         [("contains", "flour", 1.0), ("contains", "sugar", 0.0),
                          # "mix flour water and yeast" vs "flour and yeast": LCS 3, P = 3/5, R = 1, F = 0.75
                          ("rouge_l", "flour and yeast", 0.75)])
def test_contains_and_rouge_l_on_a_generated_answer(taught_causal, metric, reference, expected):
    record = {"prompt": "Q: How do I bake bread?\nA:", "completion": reference}
    # max_new_tokens: room for the whole answer, longer than the default bound from this short reference
    assert score_task(*taught_causal, [record], metric=metric, max_new_tokens=40)["score"] == pytest.approx(expected)


def test_choice_ranks_the_taught_label_first(taught_causal):
    assert rank_labels(*taught_causal, [r["prompt"] for r in FRUIT], [" no", " yes"]) == [" yes", " no"]
    assert score_task(*taught_causal, FRUIT, metric="choice")["score"] == 1.0
    # The same prompts with the answers swapped must score 0: the ranking follows the model.
    swapped = [{"prompt": r["prompt"], "completion": c} for r, c in zip(FRUIT, [" no", " yes"], strict=True)]
    assert score_task(*taught_causal, swapped, metric="choice")["score"] == 0.0


def test_choice_on_t5_picks_the_label_the_model_finds_likeliest(tiny_t5):
    model, tokenizer = tiny_t5
    prompt, labels = "Is it red?", ["yes", "no", "maybe"]

    def summed_log_likelihood(label):  # computed independently, through the model's own loss
        target = tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoder = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            loss = model(input_ids=encoder, labels=torch.tensor([target])).loss
        return -loss.item() * len(target)

    expected = max(labels, key=summed_log_likelihood)
    assert rank_labels(model, tokenizer, [prompt], labels) == [expected]


def test_bad_metric_and_labels_are_rejected(taught_causal):
    with pytest.raises(ValueError, match="unknown metric"):
        score_task(*taught_causal, FRUIT, metric="bleu")
    with pytest.raises(ValueError, match="not among the labels"):
        score_task(*taught_causal, FRUIT, metric="choice", labels=[" yes", " maybe"])


def test_each_example_behind_a_score_is_kept_with_its_answer(taught_causal):
    chat = {"messages": [{"role": "system", "content": "Answer in one word."},
                         {"role": "user", "content": "Fruit?"}, {"role": "assistant", "content": "apple"}]}
    result = score_task(*taught_causal, [QA[0], chat], batch_size=4)
    first, second = result["examples"]
    assert (first["prompt"], first["system"], first["reference"]) == (QA[0]["prompt"], None, QA[0]["completion"])
    assert (second["prompt"], second["system"], second["reference"]) == ("Fruit?", "Answer in one word.", "apple")
    assert result["score"] == (first["score"] + second["score"]) / 2 and isinstance(first["answer"], str)
