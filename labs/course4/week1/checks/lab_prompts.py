# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_prompts
# MAGIC
# MAGIC Run by the lab's last cell. The parser is compared with `jsonschema` on replies chosen
# MAGIC to be tricky; the success rate is recomputed from the labels, and the model is asked
# MAGIC again with the learner's prompt to confirm the predictions are its answers.

# COMMAND ----------

lab = Lab("course4/week1/lab_prompts")


@lab.check(
    "Task 1: the system prompt names both fields",
    "a str that says JSON only and names product_line and error_code",
)
def _():
    if is_blank(SYSTEM_PROMPT):
        raise BlankNotFilledError("a FILL_IN is still there")
    assert isinstance(SYSTEM_PROMPT, str), f"SYSTEM_PROMPT is a {type(SYSTEM_PROMPT).__name__}"
    for field in ("product_line", "error_code"):
        assert field in SYSTEM_PROMPT, f"the system prompt does not name {field}"


@lab.check(
    "Task 2: system, worked examples, then the message; no labelled message leaked",
    "[{'role': 'system', ...}, {'role': 'user', ...}, {'role': 'assistant', 'content': "
    "json.dumps(fields)}, ..., {'role': 'user', 'content': text}]",
)
def _():
    probe = "Kestrel Clear C9 shows E41, ünïcode ✓"
    messages = build_messages(probe)
    if is_blank(messages):
        raise BlankNotFilledError("a FILL_IN is still there")
    assert isinstance(messages, list), f"build_messages returned a {type(messages).__name__}"
    assert all(isinstance(m, dict) and set(m) == {"role", "content"} for m in messages), (
        "each message is a dict with exactly 'role' and 'content'"
    )
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}, "start with the system"
    assert messages[-1] == {"role": "user", "content": probe}, "end with the message itself"
    demos = messages[1:-1]
    assert len(demos) >= 4, f"{len(demos) // 2} worked examples; give at least two"
    assert len(demos) % 2 == 0, "worked examples come as user/assistant pairs"
    for user, answer in zip(demos[::2], demos[1::2], strict=True):
        assert user["role"] == "user", "each example starts with a user turn"
        assert answer["role"] == "assistant", "each example's answer is an assistant turn"
        jsonschema.validate(json.loads(answer["content"]), SCHEMA)
    texts = {m["content"] for m in demos}
    leaked = [item["text"] for item in labelled if item["text"] in texts]
    assert not leaked, f"{len(leaked)} labelled message(s) used as examples"


@lab.check(
    "Task 3: parse_reply keeps exactly the schema-valid objects",
    "find '{', add the '}' back, json.loads, jsonschema.validate; None on any failure",
)
def _():
    cases = [
        '{"product_line": "Sweep", "error_code": "E01"',
        'Sure! {"product_line": "Clear", "error_code": "E41"',
        '{"product_line": "W4 Pro", "error_code": "E34"',
        '{"product_line": "Watch", "error_code": "34"',
        '{"product_line": "Watch"',
        '{"product_line": "Watch", "error_code": "E34", "note": "ünïcode"',
        '{"product_line": "Watch", "error_code": ',
        "I cannot help with that.",
        "",
        '{"product_line": null, "error_code": "E01"',
    ]
    for reply in cases:
        try:
            want = json.loads(reply[reply.index("{") :] + "}")
            jsonschema.validate(want, SCHEMA)
        except (ValueError, jsonschema.ValidationError):
            want = None
        got = parse_reply(reply)
        if got is FILL_IN:  # None is a right answer here, so not is_blank
            raise BlankNotFilledError("a FILL_IN is still there")
        assert got == want, f"parse_reply({reply!r}) gave {got!r}, expected {want!r}"


@lab.check(
    "Task 4: the success rate is measured on the labelled set and meets the target",
    "predictions in labelled's order; success_rate = share equal to item['label']; "
    "better examples (cover every product line) raise it",
)
def _():
    if is_blank(predictions) or is_blank(success_rate):
        raise BlankNotFilledError("a FILL_IN is still there")
    assert len(predictions) == len(labelled), (
        f"{len(predictions)} predictions for {len(labelled)} labelled messages"
    )
    right = sum(p == item["label"] for p, item in zip(predictions, labelled, strict=True))
    measured = right / len(labelled)
    assert abs(success_rate - measured) < 1e-9, (
        f"success_rate is {success_rate!r}, but {right} of {len(labelled)} predictions are right"
    )
    # The predictions must be the model's answers to the learner's prompt (greedy: repeatable).
    for item, p in list(zip(labelled, predictions, strict=True))[:1]:
        again = parse_reply(ask(build_messages(item["text"])))
        assert again == p, "the predictions are not the model's answers to build_messages"
    print(f"      measured: {right}/{len(labelled)} fully right = {measured:.0%}")
    assert measured >= TARGET, f"{measured:.0%} fully right, the target is {TARGET:.0%}"


lab.summary()
