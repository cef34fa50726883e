"""W1 attribution analysis: scores from the engine's attributions, chat spans, statistics, heatmap."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tiny import tiny_lm
from tunescope.analyses import attribution, get
from tunescope.analyses import instruction_score as score
from tunescope.analyses.attribution import (compare_instruction_scores, followed_vs_unfollowed,
                                            model_input)
from tunescope.data.instructions import instruction_mask
from tunescope.data.types import InstructionPrompt
from tunescope.engine.attribution import gradient_x_input
from tunescope.engine.generation import generate_greedy
from tunescope.errors import TunescopeError
from tunescope.report.heatmap import token_heatmap
from tunescope.result import Result

TEXT = "Summarize the text below in one line.\nInput: The sea is blue. The sky is blue too."
PROMPTS = [
    InstructionPrompt("p1", TEXT, ((0, 37),), source="a", category="writing"),
    InstructionPrompt("p2", "Translate the following sentence into French: I like apples.",
                      ((0, 46),), source="b", category="translation"),
]


def test_scores_follow_from_the_engine_attributions(tmp_path):
    lm = tiny_lm("gemma3")
    cfg = get("attribution").make_config(max_new_tokens=5, b=3)
    res = attribution(lm, PROMPTS, cfg)
    table = res.tables["per_prompt"]
    for prompt, row in zip(PROMPTS, table.itertuples()):
        enc = lm.tokenizer(prompt.text, return_offsets_mapping=True)
        gen = generate_greedy(lm, [prompt.text], 5)[0]
        raw = gradient_x_input(lm, enc["input_ids"], gen.token_ids).numpy()[1:]  # BOS dropped
        mask = np.array(instruction_mask(prompt, enc["offset_mapping"]))[1:]
        expected = score.score_from_attributions(raw, mask, b=3)
        assert row.instruction_score == pytest.approx(expected, abs=1e-9)
        assert row.n_prompt_tokens == len(enc["input_ids"]) - 1
        assert row.n_instruction_tokens == mask.sum() > 0
    density = res.tables["token_density"]
    assert density.groupby("id")["density"].max().tolist() == pytest.approx([1.0, 1.0])
    levels = res.tables["levels"]
    assert levels["level"].between(1, 10).all()
    assert res.summary["prompt_format"] == "raw"
    assert set(res.tables["by_source"]["source"]) == {"a", "b"}
    assert Result.load(res.save(tmp_path / "w1")) == res


def test_chat_mode_moves_spans_with_the_text():
    lm = tiny_lm("llama", chat=True)
    shown = model_input(lm, PROMPTS[0], chat=True)
    assert shown.text.startswith("<|user|>\n") and shown.text.endswith("<|assistant|>\n")
    assert shown.instruction == PROMPTS[0].instruction
    raw = attribution(lm, PROMPTS[:1], get("attribution").make_config(max_new_tokens=3))
    chat = attribution(lm, PROMPTS[:1], get("attribution").make_config(max_new_tokens=3, chat=True))
    assert (raw.tables["per_prompt"]["n_instruction_tokens"].item()
            == chat.tables["per_prompt"]["n_instruction_tokens"].item())
    assert chat.summary["prompt_format"] == "chat"


def test_chat_template_that_writes_bos_is_attributed_with_one_bos():
    """Gemma's chat template starts with <bos> and its tokenizer adds one: generation and
    attribution both read one BOS (and leave it out), with the spans where the text puts them."""
    lm = tiny_lm("llama", chat=True)
    lm.tokenizer.chat_template = "{{ bos_token }}" + lm.tokenizer.chat_template
    res = attribution(lm, PROMPTS[:1], get("attribution").make_config(max_new_tokens=3, chat=True))
    shown = model_input(lm, PROMPTS[0], chat=True)
    enc = lm.tokenizer(shown.text, return_offsets_mapping=True)
    assert enc["input_ids"][:2] == [1, 1]
    row = res.tables["per_prompt"].iloc[0]
    assert row["n_prompt_tokens"] == len(enc["input_ids"]) - 2          # both BOS left out
    mask = instruction_mask(shown, enc["offset_mapping"])
    assert row["n_instruction_tokens"] == sum(mask) > 0
    tokens = res.tables["token_density"]["token"].tolist()
    assert "<bos>" not in tokens


def test_statistics_against_scipy():
    base = pd.DataFrame({"id": list("abcdef"), "source": ["x"] * 3 + ["y"] * 3,
                         "instruction_score": [0.1, 0.2, 0.3, 0.5, 0.4, 0.6]})
    tuned = base.assign(instruction_score=[0.4, 0.5, 0.7, 0.6, 0.9, 0.8])
    table = compare_instruction_scores(base, tuned).set_index("source")
    ref = stats.ttest_ind([0.1, 0.2, 0.3], [0.4, 0.5, 0.7], equal_var=False, alternative="less")
    assert table.loc["x", "p_base_less"] == pytest.approx(ref.pvalue)
    assert table.loc["all", "base_n"] == 6 and table.loc["y", "tuned_mean"] == pytest.approx(0.7666666)
    rated = followed_vs_unfollowed(tuned, {"a": True, "b": True, "c": False, "d": False, "e": True})
    row = rated.set_index("source").loc["all"]
    assert (row["followed_n"], row["unfollowed_n"]) == (3, 2)
    assert row["followed_mean"] == pytest.approx((0.4 + 0.5 + 0.9) / 3)


def test_heatmap_escapes_text():
    html = token_heatmap(["<script>alert(1)</script>", '"><img onerror=x>', "ok\n"],
                         [1.0, float("nan"), 0.5], [True, False, False])
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&quot;&gt;&lt;img" in html
    assert "rgba(214, 39, 40, 1.000)" in html and "rgba(214, 39, 40, 0.000)" in html
    assert "<br>" in html
    with pytest.raises(ValueError):
        token_heatmap(["a"], [1.0, 2.0])


def test_errors():
    with pytest.raises(TunescopeError, match="no instruction prompts"):
        attribution(tiny_lm("gpt2"), [])
