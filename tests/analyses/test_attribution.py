"""W1 attribution analysis: scores from the engine's attributions, chat spans, statistics, heatmap."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tiny import tiny_lm

from tunescope.analyses import attribution, get
from tunescope.analyses.attribution import attribute, model_input, score_prompt
from tunescope.analyses.helpers import instruction_score as score
from tunescope.compare.attribution import (
    compare_instruction_scores,
    followed_vs_unfollowed,
)
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


def test_the_steps_called_one_by_one_give_the_analysis_tables():
    """attribute -> score_prompt, called separately, reproduce the analysis: the raw matrices
    are the engine's gradient x input (BOS row dropped), the scores and densities the table's."""
    lm = tiny_lm("llama")
    cfg = get("attribution").make_config(max_new_tokens=4, b=2)
    items = attribute(lm, PROMPTS, cfg)
    res = attribution(lm, PROMPTS, cfg)
    for item, row in zip(items, res.tables["per_prompt"].itertuples()):
        enc = lm.tokenizer(item.prompt.text)
        expected = gradient_x_input(lm, enc["input_ids"], item.response_ids).numpy()[1:]
        np.testing.assert_array_equal(item.raw, expected)
        assert item.raw.shape == (len(item.tokens), len(item.response_ids)) == (
            row.n_prompt_tokens, row.n_response_tokens)
        scored = score_prompt(item, cfg)
        assert scored.score == row.instruction_score
        shown = res.tables["token_density"].query("id == @item.prompt.id")["density"]
        np.testing.assert_array_equal(scored.density, shown.to_numpy())
    with pytest.raises(TunescopeError, match="no instruction prompts"):
        attribute(lm, [], cfg)


def test_chat_mode_moves_spans_with_the_text():
    lm = tiny_lm("llama", chat=True)
    shown = model_input(lm, PROMPTS[0], chat=True)
    assert shown.text.startswith("<|user|>\n") and shown.text.endswith("<|assistant|>\n")
    assert shown.instruction == PROMPTS[0].instruction
    raw = attribution(lm, PROMPTS[:1], get("attribution").make_config(max_new_tokens=3,
                                                                       chat="raw"))
    chat = attribution(lm, PROMPTS[:1], get("attribution").make_config(max_new_tokens=3, chat=True))
    assert (raw.tables["per_prompt"]["n_instruction_tokens"].item()
            == chat.tables["per_prompt"]["n_instruction_tokens"].item())
    assert chat.summary["prompt_format"] == "chat" and raw.summary["prompt_format"] == "raw"


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


# --- empty responses, chat formats, configs -------------------------------------------------------

def test_empty_responses_score_zero_and_are_counted(monkeypatch):
    """The model stops at once on p2 (generation replaced): by the study's rule its score is
    0.0, not NaN, and the Result counts it; p1 is scored as without the replacement."""
    import sys
    module = sys.modules["tunescope.analyses.attribution"]     # the name is the function's
    lm = tiny_lm("llama")
    cfg = get("attribution").make_config(max_new_tokens=4)
    full = attribution(lm, PROMPTS, cfg).tables["per_prompt"]

    def generate(lm_, texts, *args, **kwargs):
        gens = generate_greedy(lm_, texts, *args, **kwargs)
        return [gens[0], dataclasses.replace(gens[1], text="", token_ids=())]
    monkeypatch.setattr(module, "generate_greedy", generate)
    res = attribution(lm, PROMPTS, cfg)
    table = res.tables["per_prompt"]
    assert table["instruction_score"].tolist() == [full["instruction_score"][0], 0.0]
    assert table["empty_response"].tolist() == [False, True]
    assert table["n_response_tokens"].tolist() == [4, 0]
    assert res.summary["n_empty_responses"] == 1
    assert res.summary["mean_instruction_score"] == pytest.approx(full["instruction_score"][0] / 2)
    assert res.summary["mean_score_b"] == 0.0
    density = res.tables["token_density"]
    assert (density.loc[density["id"] == "p2", "density"] == 0.0).all()
    assert not (res.tables["levels"]["id"] == "p2").any()


def test_zero_scores_count_in_the_statistics():
    """0.0 rows (empty responses) are scores like any other in the Welch tests and the
    comparison; only NaN (results of older versions) is left out."""
    from tunescope.compare import compare_results
    b = [0.0, 0.0, 0.3, 0.25]
    t = [0.4, 0.5, 0.0, 0.6]
    base = pd.DataFrame({"id": list("abcd"), "source": "x", "instruction_score": b,
                         "empty_response": [True, True, False, False]})
    tuned = base.assign(instruction_score=t, empty_response=[False, False, True, False])
    ref = stats.ttest_ind(b, t, equal_var=False, alternative="less")
    row = compare_instruction_scores(base, tuned).set_index("source").loc["all"]
    assert (row["base_n"], row["tuned_n"]) == (4, 4)
    assert row["base_mean"] == pytest.approx(0.1375) and row["p_base_less"] == pytest.approx(ref.pvalue)
    rated = followed_vs_unfollowed(tuned, {"a": True, "b": True, "c": False, "d": False})
    f = rated.set_index("source").loc["all"]
    assert (f["followed_n"], f["unfollowed_n"]) == (2, 2)
    assert f["unfollowed_mean"] == pytest.approx(0.3)
    table = compare_results(Result("attribution", {"per_prompt": base}, {}, {}),
                            Result("attribution", {"per_prompt": tuned}, {}, {}), n_boot=50, seed=0)
    r = table.set_index("key").loc[""]
    assert r["p_value"] == pytest.approx(ref.pvalue) and (r["n_base"], r["n_tuned"]) == (4, 4)
    assert r["difference"] == pytest.approx(np.mean(t) - np.mean(b))
    assert "empty responses scored 0: base 2/4, tuned 1/4" in r["note"]


def test_auto_generates_from_the_chat_template_where_the_model_has_one():
    chat_lm, raw_lm = tiny_lm("llama", chat=True), tiny_lm("llama")
    cfg = get("attribution").make_config(max_new_tokens=5)
    assert cfg.chat == "auto"
    for lm, chat in ((chat_lm, True), (raw_lm, False)):
        res = attribution(lm, PROMPTS, cfg)
        texts = [lm.format_prompt(p.text, chat=chat) for p in PROMPTS]
        assert texts[0].startswith("<|user|>") == chat
        expected = generate_greedy(lm, texts, 5)
        table = res.tables["per_prompt"]
        assert table["response"].tolist() == [g.text for g in expected]
        assert table["n_response_tokens"].tolist() == [len(g.token_ids) for g in expected]
        assert table["n_prompt_tokens"].tolist() == [len(g.prompt_ids) - 1 for g in expected]
        assert res.summary["prompt_format"] == ("chat" if chat else "raw")
        assert set(table["prompt_format"]) == {res.summary["prompt_format"]}
    with pytest.raises(TunescopeError, match="no chat template"):
        attribution(raw_lm, PROMPTS, get("attribution").make_config(chat="chat"))


def test_chat_config_takes_strings_and_the_old_booleans():
    a = get("attribution")
    assert [a.make_config(chat=v).chat for v in (True, False, "auto", "chat", "raw", "RAW")] == [
        "chat", "raw", "auto", "chat", "raw", "raw"]
    with pytest.raises(ValueError, match="chat must be one of auto, chat, raw"):
        a.make_config(chat="yes")
    from tunescope.study.analysis_entries import config_dict, make_config
    from tunescope.study.spec import from_yaml
    for value, want in (("true", "chat"), ("false", "raw"), ("auto", "auto"), ("raw", "raw")):
        spec = from_yaml(f"base: gemma-3-270m\nanalyses:\n  attribution: {{chat: {value}}}\n")
        assert spec.analyses["attribution"].chat == want
        again = make_config("attribution", config_dict(spec.analyses["attribution"]), 0)
        assert again == spec.analyses["attribution"]
    with pytest.raises(TunescopeError, match="chat must be one of"):
        from_yaml("base: gemma-3-270m\nanalyses:\n  attribution: {chat: yes please}\n")
    from tunescope.study.default_study import default_raw
    assert default_raw()[0]["analyses"]["attribution"]["chat"] == "auto"


def test_model_input_finds_a_trimmed_user_message():
    """Gemma's template trims the message: the spans are clipped to the trimmed text and still
    cover the same characters."""
    lm = tiny_lm("llama", chat=True)
    lm.tokenizer.chat_template = ("{% for m in messages %}<u>{{ m['content'] | trim }}</u>"
                                  "{% endfor %}<a>")
    prompt = InstructionPrompt("p", "  Write a poem.\nInput: the sea  \n", ((0, 15),))
    shown = model_input(lm, prompt, chat=True)
    assert shown.text == "<u>Write a poem.\nInput: the sea</u><a>"
    assert [shown.text[a:b] for a, b in shown.instruction_spans] == ["Write a poem."]


def test_report_notes_empty_responses_and_the_prompt_format():
    from tunescope.report.sections.attribution import attribution as section
    from tunescope.report.sections.base import Context

    def res(scores, empty, form):
        ids = [f"p{i}" for i in range(len(scores))]
        per_prompt = pd.DataFrame({"id": ids, "source": "s", "category": "c",
                                   "n_prompt_tokens": 2, "n_instruction_tokens": 1,
                                   "n_response_tokens": [0 if e else 3 for e in empty],
                                   "instruction_score": scores, "empty_response": empty,
                                   "prompt_format": form,
                                   "response": ["" if e else "fine" for e in empty]})
        density = pd.DataFrame({"id": np.repeat(ids, 2), "position": [0, 1] * len(ids),
                                "token": ["a", "b"] * len(ids), "density": 0.5,
                                "instruction": [True, False] * len(ids)})
        return Result("attribution", {"per_prompt": per_prompt, "token_density": density},
                      {"prompt_format": form, "n_empty_responses": int(sum(empty))}, {})

    results = {"base": res([0.2, 0.3, 0.1], [False, False, False], "raw"),
               "tuned": res([0.0, 0.5, 0.0], [True, False, True], "chat")}
    html = "".join(section(Context("attribution", results, [], pd.DataFrame(),
                                   {"base": "#111111", "tuned": "#222222"})))
    assert ('<p class="warning">tuned: prompts shown through its chat template; 2 of 3 responses '
            'empty (the model stopped at once), each scored 0 as in the study.</p>') in html
    assert '<p class="note">base: prompts shown as raw text; no empty response.</p>' in html
    assert html.count("(empty: the model stopped at once; scored 0)") == 2
    assert "<th>empty_response</th>" in html and "<th>prompt_format</th>" in html
