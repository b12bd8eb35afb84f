//! Renderings compared with Python jinja2 as transformers runs it: the expected strings
//! in tests/python/fixtures/chat_template_cases.json come from
//! tests/python/chat_template_reference.py (and test_realizar_chat_template.py checks the
//! fixture still equals jinja2's output).

use super::*;

#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    messages: Vec<ChatMessage>,
    add_generation_prompt: bool,
    bos_token: String,
    eos_token: String,
    expected: Option<String>,
    error: Option<String>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/fixtures/chat_template_cases.json"
    );
    let text = std::fs::read_to_string(path).expect("chat template fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn renders_exactly_as_jinja2() {
    let cases = cases();
    assert!(cases.len() >= 40);
    for c in cases {
        let t = ChatTemplate::new(&c.template, &c.bos_token, &c.eos_token).unwrap();
        let got = t.render(&c.messages, c.add_generation_prompt);
        match (&c.expected, &c.error) {
            (Some(want), None) => assert_eq!(got.unwrap(), *want, "{}", c.name),
            (None, Some(msg)) => {
                let e = got.expect_err(&c.name).to_string();
                assert!(e.contains(msg.as_str()), "{}: {e}", c.name);
            }
            _ => panic!("{}: a case has either expected or error", c.name),
        }
    }
}

#[test]
fn refuses_bad_conversations_and_templates() {
    let t =
        ChatTemplate::new("{% for m in messages %}{{ m.content }}{% endfor %}", "", "").unwrap();
    let e = t.render(&[], true).unwrap_err().to_string();
    assert!(e.contains("must not be empty"), "{e}");
    let e = t
        .render(
            &[
                ChatMessage::new("user", "a"),
                ChatMessage::new("robot", "b"),
            ],
            true,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("messages[1].role is \"robot\""), "{e}");
    let e = ChatTemplate::new("{% for m in messages %}", "", "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not compile"), "{e}");
}
