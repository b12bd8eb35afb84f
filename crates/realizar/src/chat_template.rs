//! Chat templates: how a conversation becomes the one string an instruction-tuned model
//! was trained on.
//!
//! A GGUF model carries its template as Jinja source (`tokenizer.chat_template`).
//! Hugging Face `transformers` renders it with Python's jinja2 and llama.cpp with its own
//! Jinja engine; both use `trim_blocks` and `lstrip_blocks` (a block tag eats its line's
//! newline and leading indentation), pass `messages`, `add_generation_prompt`,
//! `bos_token` and `eos_token`, and offer `raise_exception(msg)` and a `tojson` filter
//! that writes JSON the way Python's `json.dumps` does. This module renders it with
//! minijinja under the same settings (plus Python string methods such as `.strip()`), so
//! the prompt is byte for byte the one those renderers produce (tested against jinja2).

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The roles a chat request may use.
pub const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: content.to_owned(),
        }
    }
}

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template. `Send + Sync`: one per model, shared by all requests.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compile `source`; `bos_token` and `eos_token` are the texts the template may
    /// refer to. A template that does not parse is an error here, not at the first
    /// request.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| Error::InvalidInput(format!("chat template does not compile: {e:#}")))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The prompt for `messages`; `add_generation_prompt` appends the header of the
    /// assistant's next turn. Refuses an empty conversation and roles outside
    /// [`ROLES`], and reports an error the template raises.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        validate_messages(messages)?;
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::InvalidInput(format!("chat template: {e}")))?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidOperation => Error::InvalidInput(format!(
                    "the chat template refused the conversation: {}",
                    e.detail().unwrap_or("no reason given")
                )),
                _ => Error::InvalidInput(format!("chat template failed: {e:#}")),
            })
    }
}

/// Empty conversations and unknown roles are the caller's mistake.
pub fn validate_messages(messages: &[ChatMessage]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::InvalidInput("messages must not be empty".into()));
    }
    for (i, m) in messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(Error::InvalidInput(format!(
                "messages[{i}].role is {:?}; expected one of {}",
                m.role,
                ROLES.join(", ")
            )));
        }
    }
    Ok(())
}

fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False, indent=...,
/// sort_keys=...)`, so `", "` and `": "` separators without an indent, and no HTML
/// escaping (minijinja's own `tojson` escapes `<` for HTML, which a prompt must not).
#[allow(
    clippy::needless_pass_by_value,
    reason = "minijinja hands a filter its keyword arguments by value"
)]
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let mut out = String::new();
    write_python_json(&json, indent, sort_keys.unwrap_or(false), 0, &mut out);
    Ok(Value::from_safe_string(out))
}

fn write_python_json(
    v: &serde_json::Value,
    indent: Option<usize>,
    sort_keys: bool,
    depth: usize,
    out: &mut String,
) {
    use serde_json::Value as J;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    // json.dumps: ", " between items without an indent, "," plus a newline with one.
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_python_json(item, indent, sort_keys, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        J::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&J::String(k.clone()).to_string());
                out.push_str(": ");
                write_python_json(item, indent, sort_keys, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
